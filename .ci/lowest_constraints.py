"""Print a pip constraints file pinning every requirement pyproject.toml declares (the core
dependencies and every extra) to its declared lower bound: ``name>=X`` becomes ``name==X``.

Used by ``.ci/run``'s lowest-versions job: installing with these constraints runs the suites
against the oldest releases portside claims to support, so a lower bound that no longer
works fails CI instead of a user's install. Standard library only (it runs before anything
is installed).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_TOOLS = frozenset(
    {"mypy", "ruff", "import-linter", "asyncpg-stubs", "types-croniter", "build", "setuptools", "wheel"}
)
"""Linters, type stubs and packaging tools: the lowest-versions job runs no lint, so it
leaves them at whatever pip picks."""

_REQUIREMENT = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(?P<spec>[^;]*)")


def lower_bounds(pyproject: Path) -> dict[str, str]:
    """Package name -> declared lower bound, over the dependencies and every extra."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    found: dict[str, str] = {}
    for line in lines:
        match = _REQUIREMENT.match(line)
        if match is None or match["name"] == project["name"] or match["name"] in _TOOLS:
            continue
        for part in match["spec"].split(","):
            part = part.strip()
            if part.startswith(">="):
                found[match["name"].lower()] = part[2:].strip()
    return found


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    for name, version in sorted(lower_bounds(root / "pyproject.toml").items()):
        sys.stdout.write(f"{name}=={version}\n")


if __name__ == "__main__":
    main()
