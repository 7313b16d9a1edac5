"""A ``portside worker`` subprocess (or a ``--processes N`` supervisor) for integration tests:
its JSON log lines, its exit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from portside.testing import wait_for

ROOT = Path(__file__).resolve().parents[3]


def worker_env(
    redis_url: str,
    redis_prefix: str,
    postgres_dsn: str,
    app: str,
    *,
    app_dir: Path | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a ``portside worker`` on the test's servers running ``app``
    (``module:attribute``), importable from ``app_dir`` when the test wrote it there."""
    paths = [str(app_dir)] if app_dir is not None else []
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*paths, str(ROOT)]),
        "PORTSIDE_REDIS_URL": redis_url,
        "PORTSIDE_REDIS_PREFIX": redis_prefix,
        "PORTSIDE_POSTGRES_DSN": postgres_dsn,
        "PORTSIDE_APP": app,
        **extra,
    }


class Worker:
    """A ``portside worker`` subprocess whose JSON log lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path, *args: str) -> Worker:
        """``portside worker *args`` in ``cwd`` with ``env``, in a session of its own (so a
        test can kill its whole process group)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "portside.app.cli",
            "worker",
            *args,
            env=env,
            cwd=cwd,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").strip()
            try:
                self.events.append(json.loads(line))
            except json.JSONDecodeError:
                self.other.append(line)

    def names(self) -> list[str]:
        return [event["event"] for event in self.events]

    def count(self, name: str) -> int:
        """How many log lines so far are the event ``name`` (one per process for N processes)."""
        return sum(1 for event in self.events if event.get("event") == name)

    async def ready(self, processes: int = 1, timeout: float = 60.0) -> None:
        """Wait until ``processes`` worker processes logged ``worker.ready``; fails with the
        log so far if the process exits first."""
        await wait_for(
            lambda: self.count("worker.ready") == processes or self.process.returncode is not None,
            timeout=timeout,
            message=f"{processes} worker process(es) to log worker.ready",
        )
        assert self.count("worker.ready") == processes, self.other[-20:]

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

    async def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then the exit code once the process and its log reader have ended."""
        self.process.send_signal(signal.SIGTERM)
        return await self.wait(timeout)


def max_overlap(spans: list[tuple[int, int]]) -> int:
    """The most spans open at one instant; an end at the same instant as a start comes first."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
