"""The rules free text must follow, checked by the server and published as OpenAPI patterns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

# Text rules are regular expressions made of character classes only, which mean the same in Python
# and in JSON Schema's ECMA-262 dialect: the OpenAPI document then states exactly what the server
# checks, and property-based tests generate only text the server accepts. C0 controls, DEL and C1
# controls are refused everywhere (PostgreSQL cannot even store NUL); multi-line text may hold tabs
# and line breaks.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
# What str.isspace() calls whitespace, less the control characters already refused.
_SPACE = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Unicode's Default_Ignorable_Code_Point characters (zero-width spaces and joiners, the BOM,
# bidi controls, variation selectors, Hangul fillers, ...): invisible when rendered. Those of the
# Basic Multilingual Plane only, as the ECMA-262 dialect has no escape beyond it without flags.
_INVISIBLE = (
    r"\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
)
SINGLE_LINE_PATTERN = rf"^[^{_CONTROL}]*$"
MULTI_LINE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
# Not blank: at least one character that is neither whitespace nor invisible.
NOT_BLANK_PATTERN = rf"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}{_INVISIBLE}][^{_CONTROL}]*$"


@dataclass(frozen=True, slots=True)
class TextRule:
    """A regular expression a string must match, checked here and published as its ``pattern``."""

    pattern: str
    message: str
    # The pattern the document states instead, when it says more than this check does and the
    # service refuses the rest with a message of its own.
    published: str | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        compiled = re.compile(self.pattern)

        def check(value: str) -> str:
            if not compiled.fullmatch(value):
                raise ValueError(self.message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.published or self.pattern
        return json_schema


# Rules to put after a StringConstraints, so that length errors still speak of characters.
SINGLE_LINE = TextRule(SINGLE_LINE_PATTERN, "must not contain control characters")
MULTI_LINE = TextRule(
    MULTI_LINE_PATTERN, "must not contain control characters other than tab and line breaks"
)
# After SINGLE_LINE, whose message it keeps for control characters; its pattern implies that one.
NOT_BLANK = TextRule(NOT_BLANK_PATTERN, "must not be blank")
