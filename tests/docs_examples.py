"""Collect the runnable code blocks of README.md and docs/*.md.

Conventions for fenced blocks (the word after the language is the mode):
- ```python            a standalone script: executed; ``test_*`` functions it defines are run.
- ```python pytest     a test module: run with pytest (fake infra only).
- ```python servers    a standalone script that needs real Redis/Postgres (integration only).
- ```python pytest servers   a test module that needs real servers (integration only).
- ```python no-run     an illustration (a fragment or a signature); not executed.
Blocks of one file share a namespace, in order, so a page can build an example step by step.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    modes: frozenset[str]
    code: str

    @property
    def label(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        modes = frozenset(match.group(1).split())
        found.append(Block(path, line, modes, match.group(2)))
    return found


def run_pytest(target: Path) -> subprocess.CompletedProcess[str]:
    """Run pytest on example test modules the way a user's project would (asyncio auto mode)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(target), "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider", "-W", "error", "-o", "asyncio_mode=auto",
         "-o", "asyncio_default_fixture_loop_scope=function"],
        capture_output=True, text=True, cwd=target if target.is_dir() else target.parent,
        timeout=300, check=False,
    )  # fmt: skip
