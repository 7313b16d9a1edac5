"""Real ``portside worker`` subprocesses for the reliability tests, logging to files."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portside.app.settings import (
    BULLMQ_LOCK_DURATION_ENV,
    BULLMQ_MAX_STALLED_COUNT_ENV,
    BULLMQ_STALLED_INTERVAL_ENV,
)
from portside.testing import wait_for
from tests.reliability.app_registry import (
    CONCURRENCY_ENV,
    GATE_KEY_ENV,
    GATE_URL_ENV,
    MODE_ENV,
    RECORD_STARTS_ENV,
)

__all__ = ["APP", "Servers", "WorkerProcess", "WorkerSpawner"]

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.reliability.app_registry:registry"
# BullMQ tuning keyword -> the variable `portside worker` reads it from.
TUNING_ENV = {
    "lock_duration": BULLMQ_LOCK_DURATION_ENV,
    "stalled_interval": BULLMQ_STALLED_INTERVAL_ENV,
    "max_stalled_count": BULLMQ_MAX_STALLED_COUNT_ENV,
}


def _tuning_env(tuning: dict[str, float] | None) -> dict[str, str]:
    unknown = set(tuning or ()) - set(TUNING_ENV)
    if unknown:
        raise ValueError(f"no portside setting for BullMQ tuning {sorted(unknown)}")
    return {TUNING_ENV[key]: repr(value) for key, value in (tuning or {}).items()}


@dataclass(frozen=True)
class Servers:
    """Where the workers' Redis and Postgres are."""

    redis_url: str
    redis_prefix: str
    postgres_dsn: str


class WorkerProcess:
    """One ``portside worker`` process (or supervisor) whose JSON log goes to a file."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, name: str) -> None:
        self.process = process
        self.log = log
        self.name = name
        self._offset = 0
        self._events: list[dict[str, Any]] = []
        self._counts: Counter[str] = Counter()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def _read(self) -> None:
        with open(self.log, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete = chunk.rfind(b"\n") + 1
        self._offset += complete
        for raw in chunk[:complete].splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("event"), str):
                self._counts[record["event"]] += 1
                if not record["event"].startswith("job."):
                    self._events.append(record)

    def count(self, event: str) -> int:
        """How many log lines named ``event`` the process wrote so far."""
        self._read()
        return self._counts[event]

    def events(self, event: str) -> list[dict[str, Any]]:
        """The log records named ``event`` (worker-level events only, not ``job.*``)."""
        self._read()
        return [record for record in self._events if record["event"] == event]

    def mentioning(self, text: str) -> list[str]:
        """Worker-level log events whose name contains ``text`` (e.g. adapter warnings)."""
        self._read()
        return [record["event"] for record in self._events if text in record["event"]]

    def tail(self, lines: int = 25) -> str:
        """The end of the log, for failure messages."""
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    async def ready(self, processes: int = 1, timeout: float = 60.0) -> None:
        """Wait until ``processes`` worker processes logged ``worker.ready``."""
        await wait_for(
            lambda: self.count("worker.ready") >= processes or self.returncode is not None,
            timeout=timeout,
            message=f"{self.name} to log worker.ready {processes}x",
        )
        assert self.returncode is None, f"{self.name} exited early:\n{self.tail()}"

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the process itself (a supervisor forwards it to its workers)."""
        self.process.send_signal(sig)

    async def exited(self, timeout: float) -> int:
        """The exit code; fails with the log's tail if the process is still running."""
        await wait_for(
            lambda: self.returncode is not None,
            timeout=timeout,
            message=f"{self.name} (pid {self.pid}) to exit\n{self.tail()}",
        )
        code = self.returncode
        assert code is not None
        return code

    def kill_group(self) -> None:
        """SIGKILL the process group (cleanup)."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


class WorkerSpawner:
    """Starts worker processes on ``servers``; ``close()`` kills whatever still runs."""

    def __init__(self, servers: Servers, directory: Path) -> None:
        self.servers = servers
        self.directory = directory
        self.started: list[WorkerProcess] = []

    def start(
        self,
        *args: str,
        mode: str = "run",
        concurrency: int = 10,
        record_starts: bool = False,
        tuning: dict[str, float] | None = None,
        gate: tuple[str, str] | None = None,
        queues: Sequence[str] = (),
        grace: float = 30.0,
        name: str | None = None,
    ) -> WorkerProcess:
        """``portside worker --app <reliability registry> --grace G [--queues ...] ARGS``.

        Args:
            mode: ``run``, ``hold`` or ``gate`` (see ``app_registry``).
            concurrency: Slots per queue.
            record_starts: Record each attempt's start too.
            tuning: BullMQ tuning (lock_duration, stalled_interval, max_stalled_count), passed
                as the ``PORTSIDE_BULLMQ_*`` settings.
            gate: (Redis URL, key prefix) of the gate in ``gate`` mode.
        """
        label = name or f"worker-{len(self.started) + 1}"
        env = {
            **{key: value for key, value in os.environ.items() if key not in TUNING_ENV.values()},
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PORTSIDE_APP": APP,
            "PORTSIDE_REDIS_URL": self.servers.redis_url,
            "PORTSIDE_REDIS_PREFIX": self.servers.redis_prefix,
            "PORTSIDE_POSTGRES_DSN": self.servers.postgres_dsn,
            "PORTSIDE_LOG_LEVEL": "INFO",
            MODE_ENV: mode,
            CONCURRENCY_ENV: str(concurrency),
            RECORD_STARTS_ENV: "1" if record_starts else "0",
            **_tuning_env(tuning),
        }
        if gate is not None:
            env[GATE_URL_ENV], env[GATE_KEY_ENV] = gate
        argv = [sys.executable, "-m", "portside.app.cli", "worker"]
        argv += ["--grace", str(grace)]
        for queue in queues:
            argv += ["--queues", queue]
        argv += list(args)
        log = self.directory / f"{label}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so cleanup can end a supervisor and its children
            )
        worker = WorkerProcess(process, log, label)
        self.started.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.started:
            worker.kill_group()
