"""Touches to the OpenAPI document FastAPI generates."""

from __future__ import annotations

from typing import Any


def restore_example_nulls(document: dict[str, Any]) -> None:
    """Put back the nulls FastAPI drops from examples (it renders the document without None).

    Only what the schema itself allows back: a required property that may be null and is missing
    from an example was a null there (an agent's ``archived_at``, a number's ``inbound_agent_id``).
    """
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def nullable(schema: dict[str, Any]) -> bool:
        branches = [schema, *schema.get("anyOf", [])]
        return any(branch.get("type") == "null" for branch in branches)

    def fill(schema: dict[str, Any], value: Any) -> None:
        schema = resolve(schema)
        for branch in schema.get("anyOf", []):
            if branch.get("type") != "null":
                fill(branch, value)
        if isinstance(value, dict):
            properties = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value and nullable(properties.get(name, {})):
                    value[name] = None
            for name, item in value.items():
                if name in properties:
                    fill(properties[name], item)
        elif isinstance(value, list) and "items" in schema:
            for item in value:
                fill(schema["items"], item)

    for schema in schemas.values():
        for example in schema.get("examples", []):
            fill(schema, example)
    for item in document.get("paths", {}).values():
        for operation in item.values():
            bodies = [operation.get("requestBody", {})]
            bodies += operation.get("responses", {}).values()
            for body in bodies:
                for media in body.get("content", {}).values():
                    schema = media.get("schema", {})
                    if "example" in media:
                        fill(schema, media["example"])
                    for example in media.get("examples", {}).values():
                        fill(schema, example.get("value"))
