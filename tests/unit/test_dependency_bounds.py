"""Dependencies that cannot drift: every requirement has a lower bound (which CI's
lowest-versions job installs, running this file too), the libraries whose internals or wire
formats portside depends on have a tested upper bound, and the versions installed lie inside
the declared ranges."""

from __future__ import annotations

import importlib.util
import runpy
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"

UPPER_BOUNDED = ("bullmq", "redis", "hiredis", "asyncpg", "fastapi", "testcontainers", "pydantic")
"""Libraries whose private attributes, Lua scripts or major-version changes the code meets."""


def declared() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(extra)
    return [req for req in map(Requirement, lines) if req.name != project["name"]]


def test_every_requirement_has_a_lower_bound() -> None:
    """A requirement without ``>=`` would let pip pick any ancient release."""
    unbounded = [
        str(req) for req in declared() if not any(s.operator == ">=" for s in req.specifier)
    ]
    assert not unbounded


@pytest.mark.parametrize("name", UPPER_BOUNDED)
def test_libraries_portside_reaches_into_have_an_upper_bound(name: str) -> None:
    """The next major (or, for 0.x, minor) release is not installed until it was tested."""
    (req,) = [req for req in declared() if req.name == name]
    assert any(spec.operator == "<" for spec in req.specifier), str(req)


@pytest.mark.parametrize("req", declared(), ids=str)
def test_installed_versions_lie_inside_the_declared_ranges(req: Requirement) -> None:
    """What this run tests is what pyproject.toml allows (newest in the main job, lowest in
    the lowest-versions job)."""
    try:
        installed = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{req.name} is not installed here")
    assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed}"


def test_lowest_constraints_pin_every_lower_bound() -> None:
    """``.ci/lowest_constraints.py`` turns each ``>=X`` into ``==X`` (tools excepted)."""
    script = runpy.run_path(str(ROOT / ".ci" / "lowest_constraints.py"))
    pins: dict[str, str] = script["lower_bounds"](PYPROJECT)
    assert pins["redis"] == "6.2"
    assert pins["bullmq"] == "3.4.3"
    assert pins["testcontainers"] == "4.15"
    assert "mypy" not in pins
    for req in declared():
        lower = next((s.version for s in req.specifier if s.operator == ">="), None)
        if req.name in pins:
            assert pins[req.name] == lower


def test_testcontainers_has_the_modules_the_container_provider_imports() -> None:
    """The ``testcontainers`` lower bound ships ``testcontainers.community.{redis,postgres}``
    (4.15 moved the modules there; the lowest-versions job checks the lower bound itself)."""
    for module in ("testcontainers.community.redis", "testcontainers.community.postgres"):
        assert importlib.util.find_spec(module) is not None, module
