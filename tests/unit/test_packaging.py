"""The distribution layout: `src/` ships as `portside`, editable and wheel alike."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def _declared_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(config["tool"]["setuptools"]["packages"])


def _source_packages() -> set[str]:
    found = set()
    for init in SRC.rglob("__init__.py"):
        parts = init.parent.relative_to(SRC).parts
        found.add(".".join(("portside", *parts)))
    return found


def test_every_source_package_is_declared() -> None:
    """A package directory missing from pyproject would vanish from the wheel."""
    missing = _source_packages() - _declared_packages()
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_declared_packages_exist() -> None:
    stale = _declared_packages() - _source_packages()
    assert not stale, f"pyproject.toml declares packages with no __init__.py: {stale}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("portside-*.whl")
    return built


SHIPPED = {".py", ".sql", ".lua", ".typed", ".json", ".yml", ".html", ".js", ".css"}


def test_wheel_ships_every_source_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        "portside/" + str(path.relative_to(SRC))
        for path in SRC.rglob("*")
        if path.is_file()
        and path.suffix
        in {".py", ".sql", ".lua", ".typed", ".json", ".yml", ".html", ".js", ".css"}
        and "__pycache__" not in path.parts
    }
    assert "portside/py.typed" in names
    assert not wanted - names, f"missing from the wheel: {sorted(wanted - names)}"


def test_wheel_imports_like_the_editable_install(wheel: Path, tmp_path: Path) -> None:
    """Import every module from the unpacked wheel and compare with the editable tree."""
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    modules = sorted(
        ".".join(("portside", *p.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        for p in SRC.rglob("*.py")
        if "__pycache__" not in p.parts and p.name != "__main__.py"
    )
    script = (
        "import importlib, sys, portside\n"
        f"assert portside.__file__.startswith({str(unpacked)!r}), portside.__file__\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed.append(f'{name}: {exc}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    env = {"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script, *modules],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
