"""Every example in README.md and docs/ runs (fake examples here, server ones in integration)."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from types import ModuleType

import pytest

from tests.docs_examples import Block, blocks, doc_files, run_pytest


def _run_tests_defined(namespace: dict[str, object]) -> None:
    for name, value in list(namespace.items()):
        if name.startswith("test_") and inspect.isfunction(value):
            result = value()
            if inspect.iscoroutine(result):
                asyncio.run(result)


def _scripts(path: Path) -> list[Block]:
    return [b for b in blocks(path) if not b.modes & {"no-run", "servers", "pytest"}]


def _test_modules(path: Path) -> list[Block]:
    return [b for b in blocks(path) if "pytest" in b.modes and "servers" not in b.modes]


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_scripts_run(path: Path) -> None:
    namespace = ModuleType(f"doc_{path.stem}").__dict__
    for block in _scripts(path):
        before = {k for k in namespace if k.startswith("test_")}
        try:
            exec(compile(block.code, block.label, "exec"), namespace)
            _run_tests_defined({k: v for k, v in namespace.items() if k not in before})
        except Exception as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"example at {block.label} failed: {exc!r}") from exc


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_pytest_examples_pass(path: Path, tmp_path: Path) -> None:
    for index, block in enumerate(_test_modules(path)):
        module = tmp_path / f"test_doc_{path.stem}_{index}.py"
        module.write_text(block.code)
        result = run_pytest(module)
        assert result.returncode == 0, (
            f"example at {block.label} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
