"""The core holds no demo: no core module imports ``portside.examples``, and pyproject's
import-linter contract covers every core package; and no module is in an import circle
(issue 14)."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = "portside.examples"


@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("portside", include_external_packages=False)


def _core_top_level() -> set[str]:
    """Every top-level package and module of portside except the examples."""
    found = set()
    for path in (ROOT / "src").iterdir():
        if path.name.startswith(("_", ".")):
            continue
        if (path / "__init__.py").is_file() or path.suffix == ".py":
            found.add(f"portside.{path.stem}")
    return found - {EXAMPLES}


def test_the_contract_covers_every_core_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c.get("forbidden_modules") == [EXAMPLES]
    ]
    assert contract["type"] == "forbidden"
    assert set(contract["source_modules"]) == _core_top_level()


def test_only_the_examples_import_the_examples() -> None:
    graph = _graph()
    importers = {
        importer
        for module in graph.find_descendants(EXAMPLES) | {EXAMPLES}
        for importer in graph.find_modules_that_directly_import(module)
    }
    outside = sorted(m for m in importers if m != EXAMPLES and not m.startswith(EXAMPLES + "."))
    assert outside == [], f"core modules import the examples: {outside}"


def _circles(modules: set[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (import circles) among ``modules``."""
    graph = _graph()
    edges = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in sorted(edges[module]):
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            group = [stack.pop()]
            while group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                circles.append(sorted(group))

    for module in sorted(modules):
        if module not in order:
            visit(module)
    return circles


def test_no_module_of_portside_is_in_an_import_circle() -> None:
    """Not even one behind TYPE_CHECKING (grimp sees those imports too), in any package."""
    graph = _graph()
    assert len(graph.modules) > 150
    assert _circles(set(graph.modules)) == []
