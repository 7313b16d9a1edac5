"""``portside worker --processes N``: start N worker processes and pass signals on to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

from portside.app.settings import Settings

__all__ = ["supervise"]


def _child_args(
    settings: Settings, queues: list[str] | None, grace: float, metrics_port: int | None
) -> list[str]:
    args = [sys.executable, "-m", "portside.app.cli", "worker", "--grace", str(grace)]
    if settings.app:
        args += ["--app", settings.app]
    for queue in queues or ():
        args += ["--queues", queue]
    if settings.redis_url:
        args += ["--redis-url", settings.redis_url]
    if settings.postgres_dsn:
        args += ["--postgres-dsn", settings.postgres_dsn]
    args += ["--log-level", settings.log_level]
    if metrics_port is not None:
        args += ["--metrics-port", str(metrics_port)]
    return args


def supervise(
    processes: int,
    settings: Settings,
    queues: list[str] | None,
    grace: float,
    metrics_port: int | None,
) -> int:
    """Run ``processes`` workers; SIGINT/SIGTERM are forwarded; returns the exit code.

    A worker that exits on its own (a crash) makes the supervisor stop the others and
    return 1, so a process manager can restart the whole group.
    """
    env = {**os.environ, "PORTSIDE_REDIS_PREFIX": settings.redis_prefix}
    children = [
        subprocess.Popen(
            _child_args(
                settings, queues, grace, None if metrics_port is None else metrics_port + index
            ),
            env=env,
        )
        for index in range(processes)
    ]
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    remaining = {child.pid: child for child in children}
    try:
        while remaining:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            child = remaining.pop(pid, None)
            if child is None:
                continue
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0 or not stopping:
                code = 1
            if not stopping:
                # A worker that ends without being asked is a crash: end the group.
                forward(signal.SIGTERM, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
