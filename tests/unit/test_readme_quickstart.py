"""The README quickstart stays two commands, and .ci/run performs exactly those."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [m.strip() for m in re.findall(r"```bash\n(.*?)```", section, re.DOTALL)]


def test_quickstart_is_exactly_two_commands() -> None:
    commands = _quickstart_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands), commands
    assert commands[1] == "pytest -n auto"


def test_ci_installs_as_the_readme_says_and_runs_its_test_command() -> None:
    install = next(
        part.strip() for part in _quickstart_commands()[0].split("&&") if "pip install" in part
    )
    ci = (ROOT / ".ci" / "run").read_text()
    ci_installs = [line.strip() for line in ci.splitlines() if line.strip().startswith("pip ")]
    assert [c.replace(" --quiet", "") for c in ci_installs] == [install]
    assert re.search(r"^pytest -n auto$", ci, re.MULTILINE)
    assert '"$status" -eq 5' in ci, ".ci/run must treat pytest exit 5 (no tests) as failure"
