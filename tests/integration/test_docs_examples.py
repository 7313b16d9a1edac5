"""Every example in README.md and docs/ that needs real servers runs against the harness's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs_examples import blocks, doc_files, run_pytest


def _server_blocks(path: Path, *, pytest_module: bool) -> list[str]:
    return [
        b.code
        for b in blocks(path)
        if "servers" in b.modes
        and ("pytest" in b.modes) == pytest_module
        and "no-run" not in b.modes
    ]


SCRIPT_DOCS = [p for p in doc_files() if _server_blocks(p, pytest_module=False)]
TEST_DOCS = [p for p in doc_files() if _server_blocks(p, pytest_module=True)]


@pytest.mark.parametrize("path", SCRIPT_DOCS, ids=lambda p: p.name)
def test_server_scripts_run(
    path: Path, redis_url: str, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = _server_blocks(path, pytest_module=False)
    monkeypatch.setenv("PORTSIDE_REDIS_URL", redis_url)
    monkeypatch.setenv("PORTSIDE_POSTGRES_DSN", postgres_dsn)
    namespace: dict[str, object] = {"__name__": f"doc_{path.stem}"}
    for code in scripts:
        exec(compile(code, str(path), "exec"), namespace)


@pytest.mark.parametrize("path", TEST_DOCS, ids=lambda p: p.name)
def test_server_test_modules_pass(path: Path, tmp_path: Path) -> None:
    modules = _server_blocks(path, pytest_module=True)
    for index, code in enumerate(modules):
        (tmp_path / f"test_doc_{path.stem.replace('-', '_')}_{index}.py").write_text(code)
    result = run_pytest(tmp_path)
    assert result.returncode == 0, f"{path.name} examples:\n{result.stdout}{result.stderr}"
