"""Child server processes: own process group, log file, death with the parent, bounded waits."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from portside.servers.errors import ServerStartError
from portside.servers.users import OsUser

__all__ = [
    "check_traversable",
    "free_port",
    "log_tail",
    "signal_group",
    "spawn",
    "wait_exit",
    "wait_until",
]

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def check_traversable(path: Path, user: OsUser, what: str) -> None:
    """Raise unless ``user`` can reach ``path``: every ancestor must let others search it.

    Raises:
        ServerStartError: Naming the first directory ``user`` cannot enter and the fix.
    """
    for directory in [*reversed(path.resolve().parents), path.resolve()]:
        info = directory.stat()
        if info.st_uid == user.uid or info.st_mode & stat.S_IXOTH:
            continue
        if info.st_gid == user.gid and info.st_mode & stat.S_IXGRP:
            continue
        raise ServerStartError(
            f"{what} {path} is inside {directory}, which user {user.name!r} (who runs "
            "Postgres, because we run as root) cannot enter",
            fix=f"chmod o+x {directory}, or set PORTSIDE_SERVERS_DIR / PORTSIDE_PG_BINDIR to "
            "a location every user can traverse (e.g. under /tmp)",
        )


def _death_signal(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get ``sig`` when its parent dies (Linux only).

    Linux delivers it when the *thread* that forked exits, so it is only safe from the main
    thread; other threads rely on the atexit cleanup.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not (
        threading.main_thread()
    ):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return set_death_signal


def spawn(
    argv: Sequence[str | Path],
    *,
    log: Path,
    user: OsUser | None = None,
    death_signal: signal.Signals = signal.SIGKILL,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new process group with stdout and stderr appended to ``log``.

    The child runs as ``user`` when given (requires root) and receives ``death_signal`` if
    this process dies without cleaning up (Linux). It runs in ``cwd`` (default: the log's
    directory), never in ours, which ``user`` may not be allowed to enter.
    """
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(arg) for arg in argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            close_fds=True,
            process_group=0,
            user=None if user is None else user.uid,
            group=None if user is None else user.gid,
            extra_groups=None if user is None else [],
            preexec_fn=_death_signal(death_signal),
            env=env,
            cwd=cwd or log.parent,
        )


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to the process group of ``proc`` (its children included); ignore if gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``proc`` to exit; True if it did."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def log_tail(log: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of ``log`` (for error messages)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def wait_until(
    ready: Callable[[], bool],
    *,
    proc: subprocess.Popen[bytes],
    what: str,
    log: Path,
    timeout: float,
    interval: float = 0.005,
) -> None:
    """Poll ``ready`` until it holds; fail at once if ``proc`` exits, or after ``timeout``.

    Server start-up offers no event to wait on, so this polls at a short interval under a
    deadline.

    Raises:
        ServerStartError: Naming ``what`` and quoting the tail of ``log``.
    """
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        code = proc.poll()
        if code is not None:
            raise ServerStartError(
                f"{what} exited with status {code} before it was ready; log {log}:\n"
                + log_tail(log),
                fix="read the log above; a port clash is retried, anything else is not",
            )
        if time.monotonic() >= deadline:
            raise ServerStartError(
                f"{what} was not ready after {timeout:.0f} s; log {log}:\n" + log_tail(log),
                fix="the machine may be overloaded; read the log above",
            )
        time.sleep(interval)
