"""H4: integration tests never use the in-memory fakes (and this check can fail)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
FORBIDDEN_MODULES = ("portside.adapters.memory", "portside.testing.contracts.memory")
FORBIDDEN_WORDS = ("InMemory", "fake_infra", "MemoryQueueDriver", "MemoryOutboxDriver")
THIRD_PARTY_WORDS = ("InMemorySpanExporter",)
"""Names that contain a forbidden word but are not portside's fakes (OpenTelemetry's exporter
that the trace interop tests read spans from)."""


def _forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_MODULES)


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import, ``from`` import and import by string in ``tree``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))  # importlib.import_module("...") and kin
    return found


def violations(path: Path) -> list[str]:
    """Every use of a fake in one file, as ``path:line: what``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []
    words = text
    for allowed in THIRD_PARTY_WORDS:
        words = words.replace(allowed, "")
    found = [
        f"{path}:{number}: mentions {word}"
        for number, line in enumerate(words.splitlines(), start=1)
        for word in FORBIDDEN_WORDS
        if word in line
    ]
    if path.suffix == ".py":
        found += [
            f"{path}:{number}: imports {module}"
            for number, module in _imports(ast.parse(text, filename=str(path)))
            if _forbidden(module)
        ]
    return found


def scan(root: Path) -> tuple[int, list[str]]:
    """How many files under ``root`` were read, and every violation found in them."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    return len(files), [problem for path in files for problem in violations(path)]


def test_h4_integration_tests_never_use_the_fakes() -> None:
    """H4: nothing under tests/integration imports or names the in-memory fakes."""
    scanned, problems = scan(INTEGRATION)
    assert scanned > 0, f"found no files under {INTEGRATION}"
    assert problems == [], "integration tests must use real servers, not fakes:\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize(
    "source",
    [
        "import portside.adapters.memory\n",
        "import portside.adapters.memory.queue as q\n",
        "from portside.adapters.memory import VirtualClock\n",
        "from portside.adapters.memory.outbox import InMemoryOutbox\n",
        "from portside.adapters import memory\n",
        "import importlib\nq = importlib.import_module('portside.adapters.memory')\n",
        "from portside.testing.contracts.memory import InMemoryQueueDriver\n",
        "async def test_x(fake_infra):\n    pass\n",
        "# swap in an InMemoryQueue here\n",
        "spans = InMemorySpanExporter()\nqueue = InMemoryQueue()\n",
    ],
)
def test_h4_the_check_catches_each_way_of_using_a_fake(tmp_path: Path, source: str) -> None:
    """H4: the scanner fails on an import (plain, from, by string) or a mention of a fake."""
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "test_bad.py").write_text(source)
    scanned, problems = scan(tmp_path)
    assert scanned == 1, f"not caught: {source!r}"
    assert problems, f"not caught: {source!r}"
    assert all("test_bad.py:" in problem for problem in problems)


def test_h4_real_adapters_and_the_contract_suites_are_allowed(tmp_path: Path) -> None:
    (tmp_path / "test_ok.py").write_text(
        "from portside.adapters.bullmq import BullMQQueue\n"
        "from portside.testing.contracts import QueueContract\n"
        "import portside.adapters.memoryless\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "async def test_x(infra, drain_queue):\n    pass\n"
    )
    assert scan(tmp_path) == (1, [])
