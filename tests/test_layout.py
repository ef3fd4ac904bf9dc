"""The layout's rules, checked on the source: which packages may import the web framework, and
that no package imports in a cycle (see "How the code is laid out" in the README)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.fixtures.database import ROOT

PACKAGE = ROOT / "src" / "callingbox_server"
WEB = ("fastapi", "starlette")
# The composition root: it wires every router into the app, so it imports everything by design.
COMPOSITION_ROOT = "callingbox_server.api.app"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _package(module: str) -> str | None:
    """The unit the no-cycle rule is about: ``api``, ``core``, ``worker``, ``cli``, or one
    domain (``domains.agents``)."""
    parts = module.split(".")
    if parts[0] != "callingbox_server" or len(parts) < 2:
        return None
    if parts[1] == "domains":
        return ".".join(parts[1:3]) if len(parts) > 2 else None
    return parts[1]


SOURCES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


class TestWebFramework:
    def test_only_the_edge_and_routers_import_it(self) -> None:
        offenders = sorted(
            module
            for module, path in SOURCES.items()
            if not module.startswith("callingbox_server.api")
            and not module.endswith(".router")
            and any(name.split(".")[0] in WEB for name in _imports(path))
        )
        assert offenders == []

    def test_the_check_sees_the_routers(self) -> None:
        routers = [module for module in SOURCES if module.endswith(".router")]
        assert "callingbox_server.domains.agents.router" in routers
        assert any(
            name.startswith("fastapi")
            for name in _imports(SOURCES["callingbox_server.domains.agents.router"])
        )


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in SOURCES.items():
        source = _package(module)
        if source is None or module == COMPOSITION_ROOT:
            continue
        for name in _imports(path):
            target = _package(name)
            if target is not None and target != source:
                graph[source].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


class TestPackageCycles:
    def test_no_package_imports_in_a_cycle(self) -> None:
        assert _cycle(_package_graph()) is None

    def test_core_imports_no_domain_api_or_worker(self) -> None:
        assert _package_graph()["core"] <= {"core"}

    def test_the_cycle_check_finds_a_cycle(self) -> None:
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
        assert _cycle(graph) == ["a", "b", "c", "a"]

    def test_the_domains_are_layered(self) -> None:
        graph = _package_graph()
        assert "domains.bindings" in graph["domains.agents"]
        assert "domains.bindings" in graph["domains.numbers"]
        assert not {"domains.agents", "domains.numbers"} & graph["domains.bindings"]
