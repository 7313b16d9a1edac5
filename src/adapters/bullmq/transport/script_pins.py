"""The BullMQ Lua scripts the adapter was written for, checked against the installed package.

The adapter loads BullMQ's Lua scripts from the ``bullmq`` Python package but packs their
keys and arguments itself (``producer.py``, ``worker/commands.py``, ``control.py``,
``manage.py``). A script whose keys or arguments changed in another release would be called
with the wrong ones, and could corrupt a queue instead of failing. So every script the
adapter calls is pinned here by its number of keys and the SHA1 of its source, as shipped by
the releases in ``SUPPORTED_BULLMQ`` (the range of the ``bullmq`` extra in
``pyproject.toml``; its scripts are identical in 3.4.3 and 3.4.4, and 3.4.2 differs in
the four add*Job scripts). Anything else fails at start-up with ``ConfigurationError``.

Moving to a new bullmq release: install it, check every changed script's keys and
arguments against the code that packs them, then update ``SUPPORTED_BULLMQ``, the
extra's range and the pins below (the SHA1 of each ``bullmq/commands/<name>-<keys>.lua``).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Protocol

from portside.ports import ConfigurationError

__all__ = ["PINNED_SCRIPTS", "SUPPORTED_BULLMQ", "check_scripts", "installed_bullmq"]

SUPPORTED_BULLMQ = ">=3.4.3,<3.5"
"""The bullmq releases whose scripts match ``PINNED_SCRIPTS`` (pip's version syntax)."""

PINNED_SCRIPTS: Mapping[str, tuple[int, str]] = {
    "addDelayedJob": (6, "ef55a5770d2c32d68b8528f29ced32261188aa30"),
    "addLog": (2, "eecb06ad6c96fa5da4fa8bca0ea7a1bf1bf62f18"),
    "addParentJob": (6, "ec2e6289ba76f455c6e824ba4d6e92df2a5aaa97"),
    "addPrioritizedJob": (9, "7fe9ddf6854813edeaaa9b83839ac94693b1de8f"),
    "addStandardJob": (9, "10f8d228e89ed4f765afc5b3bafb6defbb84e311"),
    "changeDelay": (4, "de220c4e0e17e976d762e5c2aa0b5015ea32cb50"),
    "cleanJobsInSet": (3, "d4b4530a1de226c532b5256e3dafa5cdc1641a6a"),
    "drain": (5, "2e3d2277043ce9692d0dd5e509ddb1ce487a617f"),
    "extendLocks": (1, "c35baf769e5dc3d9194b2bceca04ab59f7c510f7"),
    "getCounts": (1, "a8034c631460c6803c87966ce881636246de2398"),
    "getStateV2": (8, "5e107aa7dd123c4a80fc40151f8d25596c39353a"),
    "moveJobFromActiveToWait": (9, "2f746a769bc3d182a0f73ace6bb7a4906faf5df9"),
    "moveStalledJobsToWait": (9, "1e9bb7deb6219644a634d32c430ce15ed39a377e"),
    "moveToActive": (11, "d96ca626f1ea141b44a856b312fc636d99aa9ea9"),
    "moveToDelayed": (11, "9f83944d6edafd63c74121d73299dd3358ddfe0c"),
    "moveToFinished": (14, "69666e69dd5621df59067a03de685e55a486560d"),
    "obliterate": (2, "b5e55563e8084314227a6512b49bbe089f31c6a1"),
    "pause": (7, "8c25f7be363de2a28428dae13ddc20ffb3f6e7aa"),
    "promote": (9, "1d740f19fe984343737df70206877be7cbab6913"),
    "removeJob": (2, "574af105e7df948fdf7e5410f3190a87f037d7f3"),
    "reprocessJob": (9, "1323ff649a78371c602a52252e61dc9f2fdfe36d"),
    "retryJob": (11, "812d06de3eaf0fb70e333b3d0142eed8bf630a2d"),
    "updateData": (1, "12a42ffd90c486a7f398fbb17cdcdd484f4abaea"),
    "updateProgress": (3, "e992d1814b869c8def8e67ef117b3ed2cc95771f"),
}
"""Script name -> (number of keys, SHA1 of its source) of every BullMQ script the adapter
calls."""


class _Script(Protocol):
    @property
    def numkeys(self) -> int: ...

    @property
    def sha(self) -> str: ...


def installed_bullmq() -> str:
    """The version of the installed ``bullmq`` package (``unknown`` if it has no metadata)."""
    try:
        return metadata.version("bullmq")
    except metadata.PackageNotFoundError:
        return "unknown"


def check_scripts(found: Mapping[str, _Script], version: str) -> None:
    """Fail unless ``found`` (the scripts of bullmq ``version``) holds every pinned script
    with its pinned number of keys and source.

    Raises:
        ConfigurationError: Naming each script that differs, the installed version and the
            supported range.
    """
    problems: list[str] = []
    for name, (numkeys, sha) in PINNED_SCRIPTS.items():
        script = found.get(name)
        if script is None:
            problems.append(f"{name} is missing")
        elif script.numkeys != numkeys:
            problems.append(f"{name} takes {script.numkeys} keys instead of {numkeys}")
        elif script.sha != sha:
            problems.append(f"{name} has other source (SHA1 {script.sha[:12]})")
    if problems:
        raise ConfigurationError(
            f"the installed bullmq {version} ships Lua scripts that portside's BullMQ adapter "
            f"was not written for ({'; '.join(problems)}); portside supports bullmq "
            f"{SUPPORTED_BULLMQ}",
            fix=f"install a supported release: pip install 'bullmq{SUPPORTED_BULLMQ}'",
        )
