"""BullMQ's Lua commands (from the ``bullmq`` package) and portside's own, by name."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from portside.adapters.bullmq.transport.script_pins import (
    PINNED_SCRIPTS,
    check_scripts,
    installed_bullmq,
)

__all__ = [
    "LuaScript",
    "check_bullmq_scripts",
    "ensure_scripts",
    "execute",
    "run_script",
    "script",
]

_FILE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)-(?P<keys>\d+)\.lua$")


@dataclass(frozen=True, slots=True)
class LuaScript:
    """One Lua command: its source, SHA1 and number of keys."""

    name: str
    numkeys: int
    source: str
    sha: str

    def command(self, keys: Sequence[str], args: Sequence[Any]) -> tuple[Any, ...]:
        """The ``EVALSHA`` command tuple for these keys and arguments."""
        return ("EVALSHA", self.sha, self.numkeys, *keys, *args)


def _scan(package: str, subdir: str | None) -> dict[str, LuaScript]:
    root = resources.files(package)
    if subdir is not None:
        root = root / subdir
    found: dict[str, LuaScript] = {}
    for entry in root.iterdir():
        match = _FILE.match(entry.name)
        if match is None:
            continue
        source = entry.read_text(encoding="utf-8")
        found[match["name"]] = LuaScript(
            name=match["name"],
            numkeys=int(match["keys"]),
            source=source,
            sha=hashlib.sha1(source.encode("utf-8")).hexdigest(),
        )
    return found


@cache
def _all() -> dict[str, LuaScript]:
    shipped = _scan("bullmq", "commands")
    check_scripts(shipped, installed_bullmq())
    # Only pinned scripts can be called: one added to the code unpinned fails its first test.
    scripts = {name: lua for name, lua in shipped.items() if name in PINNED_SCRIPTS}
    scripts.update(_scan("portside.adapters.bullmq.transport", None))
    return scripts


def check_bullmq_scripts() -> None:
    """Fail with ``ConfigurationError`` unless the installed bullmq ships the Lua scripts the
    adapter was written for (see ``script_pins``); checked once per process."""
    _all()


def script(name: str) -> LuaScript:
    """The Lua command called ``name`` (e.g. ``moveToActive``)."""
    return _all()[name]


async def execute(client: Redis, *args: Any) -> Any:
    """``client.execute_command`` with a typed signature."""
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


async def run_script(
    client: Redis, lua: LuaScript, keys: Sequence[str], args: Sequence[Any]
) -> Any:
    """Run ``lua`` with ``EVALSHA``, loading it first if the server does not know it."""
    try:
        return await execute(client, *lua.command(keys, args))
    except NoScriptError:
        await execute(client, "SCRIPT", "LOAD", lua.source)
        return await execute(client, *lua.command(keys, args))


async def ensure_scripts(client: Redis, *names: str) -> None:
    """Make sure the server knows these scripts (one ``SCRIPT EXISTS`` round trip if so)."""
    scripts = [script(name) for name in names]
    known = await execute(client, "SCRIPT", "EXISTS", *(lua.sha for lua in scripts))
    for lua, present in zip(scripts, known, strict=True):
        if not present:
            await execute(client, "SCRIPT", "LOAD", lua.source)
