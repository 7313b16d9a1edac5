"""Stop every local server at exit (also on SIGTERM) and remove what dead sessions left behind."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Protocol

__all__ = [
    "BASE_DIR_ENV",
    "DIR_PREFIX",
    "OWNER_FILE",
    "default_base_dir",
    "make_server_dir",
    "reap_stale_dirs",
    "track",
    "untrack",
]

DIR_PREFIX = "portside-"
OWNER_FILE = "owner.pid"
BASE_DIR_ENV = "PORTSIDE_SERVERS_DIR"
"""Where server directories go; default: /dev/shm when it is a roomy tmpfs, else the temp dir."""
_SHM = Path("/dev/shm")
_SHM_MIN_FREE = 1 << 30


class Stoppable(Protocol):
    def stop(self) -> None: ...


class _Tracker:
    """The live servers of this process; stopped by atexit and on SIGTERM."""

    def __init__(self) -> None:
        self._servers: dict[int, Stoppable] = {}
        self._lock = threading.Lock()
        self._installed = False

    def add(self, server: Stoppable) -> None:
        with self._lock:
            self._servers[id(server)] = server
            if not self._installed:
                self._installed = True
                atexit.register(self.stop_all)
                _exit_on_sigterm()

    def discard(self, server: Stoppable) -> None:
        with self._lock:
            self._servers.pop(id(server), None)

    def stop_all(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
        for server in reversed(servers):
            with contextlib.suppress(Exception):
                server.stop()


_tracker = _Tracker()  # atexit needs one process-wide list


def track(server: Stoppable) -> None:
    """Stop ``server`` when the interpreter exits, if it is still running then."""
    _tracker.add(server)


def untrack(server: Stoppable) -> None:
    """Forget ``server`` (it stopped)."""
    _tracker.discard(server)


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so finally blocks and atexit run and servers stop.

    Only when SIGTERM still has its default action (killing us without cleanup), and only
    from the main thread, where signal handlers can be installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def default_base_dir() -> Path:
    """``$PORTSIDE_SERVERS_DIR``; else ``/dev/shm`` if writable with 1 GiB free; else the temp dir.

    Memory-backed storage matters: Postgres creates a few hundred files per ``CREATE DATABASE``,
    which costs hundreds of milliseconds on some virtual disks and about 10 ms on tmpfs.
    """
    explicit = os.environ.get(BASE_DIR_ENV, "").strip()
    if explicit:
        path = Path(explicit)
        path.mkdir(parents=True, exist_ok=True)
        return path
    try:
        stats = os.statvfs(_SHM)
        roomy = stats.f_bavail * stats.f_frsize >= _SHM_MIN_FREE
    except OSError:
        roomy = False
    if roomy and os.access(_SHM, os.W_OK | os.X_OK):
        return _SHM
    return Path(tempfile.gettempdir())


def make_server_dir(kind: str, base: Path | None = None) -> Path:
    """A fresh private directory for one server, marked with this process as its owner."""
    root = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{kind}-", dir=base or default_base_dir()))
    (root / OWNER_FILE).write_text(str(os.getpid()))
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_dirs(base: Path | None = None) -> list[Path]:
    """Remove server directories whose owner process is gone (left by kill -9).

    Their servers died with the owner (parent-death signal) or are killed here: a server's
    pid file names it, and it is only killed if its command line mentions the directory.
    """
    root = base or default_base_dir()
    removed: list[Path] = []
    for candidate in root.glob(DIR_PREFIX + "*"):
        owner_file = candidate / OWNER_FILE
        try:
            owner = int(owner_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        for pid_file in ("server.pid", "data/postmaster.pid"):
            _kill_if_ours(candidate / pid_file, candidate)
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


def _kill_if_ours(pid_file: Path, directory: Path) -> None:
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return
    if str(directory) in cmdline:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
