"""Q12: the adapter runs only with the BullMQ Lua scripts it packs arguments for: the installed
``bullmq`` matches the pins, a release whose scripts differ fails at start-up naming the
version and the supported range, and ``pyproject.toml`` declares that same range."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from portside.adapters.bullmq import BullMQQueue
from portside.adapters.bullmq.transport import script_pins, scripts
from portside.adapters.bullmq.transport.script_pins import (
    PINNED_SCRIPTS,
    SUPPORTED_BULLMQ,
    check_scripts,
    installed_bullmq,
)
from portside.adapters.bullmq.worker.commands import WORKER_SCRIPTS
from portside.ports import ConfigurationError

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Shipped:
    numkeys: int
    sha: str


def shipped_as_pinned() -> dict[str, Shipped]:
    return {name: Shipped(keys, sha) for name, (keys, sha) in PINNED_SCRIPTS.items()}


@pytest.fixture
def fresh_scripts() -> Iterator[None]:
    """Load the scripts again in the test (and again after it, with the real pins)."""
    scripts._all.cache_clear()
    yield
    scripts._all.cache_clear()


def test_q12_the_installed_bullmq_ships_the_pinned_scripts() -> None:
    """Q12: the bullmq installed is in the supported range and its scripts match the pins."""
    assert installed_bullmq() in SpecifierSet(SUPPORTED_BULLMQ)
    scripts.check_bullmq_scripts()
    for name, (numkeys, sha) in PINNED_SCRIPTS.items():
        assert (scripts.script(name).numkeys, scripts.script(name).sha) == (numkeys, sha)


def test_q12_pyproject_declares_the_supported_range() -> None:
    """Q12: the ``bullmq`` extra installs exactly the releases the pins were taken from."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = [Requirement(line) for line in config["project"]["optional-dependencies"]["bullmq"]]
    bullmq = next(req for req in declared if req.name == "bullmq")
    assert bullmq.specifier == SpecifierSet(SUPPORTED_BULLMQ)


def test_q12_matching_scripts_pass() -> None:
    """Q12: scripts with the pinned keys and sources pass (extra scripts are ignored)."""
    found = shipped_as_pinned()
    found["someNewScript"] = Shipped(3, "0" * 40)
    check_scripts(found, "3.4.4")


@pytest.mark.parametrize(
    ("change", "told"),
    [
        (lambda found: found.update(moveToActive=Shipped(12, "0" * 40)), "takes 12 keys"),
        (lambda found: found.update(moveToFinished=Shipped(14, "f" * 40)), "other source"),
        (lambda found: found.pop("retryJob"), "retryJob is missing"),
    ],
    ids=["key-count", "source", "missing"],
)
def test_q12_other_scripts_fail_naming_the_version_and_the_range(change: object, told: str) -> None:
    """Q12: a changed key count, a changed source or a missing script fails with a
    ConfigurationError that names the script, the installed version and the range to install."""
    found = shipped_as_pinned()
    change(found)  # type: ignore[operator]
    with pytest.raises(ConfigurationError) as raised:
        check_scripts(found, "9.9.9")
    message = str(raised.value)
    assert told in message
    assert "bullmq 9.9.9" in message
    assert SUPPORTED_BULLMQ in message
    assert raised.value.fix is not None
    assert f"pip install 'bullmq{SUPPORTED_BULLMQ}'" in raised.value.fix


@pytest.mark.usefixtures("fresh_scripts")
def test_q12_an_adapter_refuses_to_start_with_other_scripts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Q12: BullMQQueue() fails at construction, before any Redis call, when the installed
    scripts are not the pinned ones."""
    pins = dict(PINNED_SCRIPTS)
    pins["moveToFinished"] = (14, "f" * 40)
    monkeypatch.setattr(scripts, "PINNED_SCRIPTS", pins)
    monkeypatch.setattr(script_pins, "PINNED_SCRIPTS", pins)
    with pytest.raises(ConfigurationError, match=r"moveToFinished has other source"):
        BullMQQueue("redis://127.0.0.1:1/0")


def test_q12_only_pinned_bullmq_scripts_can_be_called() -> None:
    """Q12: a BullMQ script nobody pinned is not available to the code (it would be called
    with arguments nobody checked); the worker's scripts all resolve."""
    assert "isMaxed" not in PINNED_SCRIPTS
    with pytest.raises(KeyError):
        scripts.script("isMaxed")
    for name in WORKER_SCRIPTS:
        assert scripts.script(name).name == name
