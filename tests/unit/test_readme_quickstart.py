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
    ci_installs = [
        line.strip().replace(" --quiet", "")
        for line in ci.splitlines()
        if line.strip().startswith("pip ")
    ]
    lowest = install.replace("pip install", 'pip install --constraint "$workdir/lowest.txt"')
    assert ci_installs == [install, lowest]
    runs = [line.strip() for line in ci.splitlines() if line.strip().startswith("run_pytest ")]
    assert len(runs) == 3, runs
    assert all(run.startswith("run_pytest -n auto ") for run in runs), runs


def test_ci_runs_the_suite_in_two_random_orders() -> None:
    """H5: the main suite runs twice, each with its own pytest-randomly seed."""
    ci = (ROOT / ".ci" / "run").read_text()
    runs = [line.strip() for line in ci.splitlines() if line.strip().startswith("run_pytest ")]
    assert runs[0] == 'run_pytest -n auto -p randomly --randomly-seed="$first_seed"'
    assert runs[1] == 'run_pytest -n auto -p randomly --randomly-seed="$second_seed"'
    assert "random.sample(range(1, 2**32), 2)" in ci  # two distinct seeds


def test_every_pytest_run_in_ci_counts_exit_5_as_a_failure() -> None:
    """pytest's exit status 5 (no tests collected) fails CI in each of its pytest runs."""
    ci = (ROOT / ".ci" / "run").read_text()
    bare = [line.strip() for line in ci.splitlines() if re.match(r"\s*pytest\b", line)]
    assert bare == ['pytest "$@" || status=$?'], "call pytest only through run_pytest"
    assert '"$status" -eq 5' in ci, ".ci/run must treat pytest exit 5 (no tests) as failure"
