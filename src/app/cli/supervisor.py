"""``portside worker --processes N``: start N worker processes and pass signals on to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from types import FrameType

from portside.app.settings import POSTGRES_DSN_ENV, REDIS_PREFIX_ENV, REDIS_URL_ENV, Settings

__all__ = ["child_command", "child_environment", "supervise"]


def child_command(
    settings: Settings, queues: list[str] | None, grace: float, metrics_port: int | None
) -> list[str]:
    """The command line of one worker process: no connection string, since ``ps`` shows it."""
    args = [sys.executable, "-m", "portside.app.cli", "worker", "--grace", str(grace)]
    if settings.app:
        args += ["--app", settings.app]
    for queue in queues or ():
        args += ["--queues", queue]
    args += ["--log-level", settings.log_level]
    if metrics_port is not None:
        args += ["--metrics-port", str(metrics_port)]
    return args


def child_environment(settings: Settings, parent: Mapping[str, str]) -> dict[str, str]:
    """The worker processes' environment: ``parent``'s, with the connection strings the
    supervisor resolved (from its options or its environment), which may hold passwords."""
    env = {**parent, REDIS_PREFIX_ENV: settings.redis_prefix}
    if settings.redis_url:
        env[REDIS_URL_ENV] = settings.redis_url
    if settings.postgres_dsn:
        env[POSTGRES_DSN_ENV] = settings.postgres_dsn
    return env


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
    env = child_environment(settings, os.environ)
    children = [
        subprocess.Popen(
            child_command(
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
