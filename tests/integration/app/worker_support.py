"""A ``portside worker`` subprocess for integration tests: its JSON log lines, its exit."""

from __future__ import annotations

import asyncio
import json
from typing import Any


class Worker:
    """A ``portside worker`` subprocess whose JSON log lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode().strip()
            try:
                self.events.append(json.loads(line))
            except json.JSONDecodeError:
                self.other.append(line)

    def names(self) -> list[str]:
        return [event["event"] for event in self.events]

    def event(self, name: str) -> dict[str, Any]:
        return next(event for event in self.events if event["event"] == name)

    async def wait(self, timeout: float) -> int:
        """The exit code; fails with the log so far if the process is still running."""
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"the worker did not exit within {timeout} s; events: {self.names()}; "
                f"other output: {self.other[-20:]}"
            ) from None
        await self._reader
        return code
