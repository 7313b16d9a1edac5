"""What every private server process shares: its directory, port retries, stop, kill, restart."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from portside.servers import cleanup
from portside.servers.errors import ServerStartError
from portside.servers.process import free_port, signal_group, wait_exit

__all__ = ["LocalServer"]

_PORT_ATTEMPTS = 3


class LocalServer:
    """A server process in a private directory on 127.0.0.1.

    Subclasses provide ``_prepare_dir`` (create the directory on first start), ``_launch``
    (start the process and wait until it serves) and ``_port_clash`` (did the last launch fail
    because another process took the port?).
    """

    _usage = "`with LocalServer() as server:`"
    _stop_signal = signal.SIGTERM
    _stop_wait = 10.0

    def __init__(self, *, port: int | None, base_dir: Path | None) -> None:
        self._fixed_port = port
        self.port = port or 0
        self._base_dir = base_dir
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> Path:
        """The server's private directory (data, log, socket)."""
        if self._dir is None:
            raise ServerStartError(
                f"the {type(self).__name__} server has not been started",
                fix=f"call start() first, or use it as {self._usage}",
            )
        return self._dir

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _prepare_dir(self) -> None:
        raise NotImplementedError

    def _launch(self, timeout: float) -> None:
        raise NotImplementedError

    def _port_clash(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 15.0) -> Self:
        """Start the server (on another free port if the chosen one was taken meanwhile)."""
        if self.running:
            return self
        if self._dir is None:
            self._prepare_dir()
        cleanup.track(self)
        for attempt in range(_PORT_ATTEMPTS):
            if not self._fixed_port and (attempt or not self.port):
                self.port = free_port()
            try:
                self._launch(timeout)
            except ServerStartError:
                if self._fixed_port or attempt == _PORT_ATTEMPTS - 1 or not self._port_clash():
                    self.stop()
                    raise
            else:
                return self
        raise AssertionError("unreachable")  # pragma: no cover

    def kill(self) -> None:
        """SIGKILL the server (a crash); ``restart`` brings it back on the same port and dir."""
        if self._proc is not None:
            signal_group(self._proc, signal.SIGKILL)
            wait_exit(self._proc, 10)
            self._proc = None

    def restart(self, timeout: float = 15.0) -> Self:
        """Stop (gracefully if still running) and start again on the same port and dir."""
        if self.running:
            self._shutdown(self._stop_signal)
        if not self._fixed_port:
            self._fixed_port = self.port
            try:
                return self.start(timeout)
            finally:
                self._fixed_port = None
        return self.start(timeout)

    def _shutdown(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        signal_group(self._proc, sig)
        if not wait_exit(self._proc, self._stop_wait):
            signal_group(self._proc, signal.SIGKILL)
            wait_exit(self._proc, 10)
        self._proc = None

    def _remove(self) -> None:
        """Delete the directory and forget the server; the process must be gone."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        cleanup.untrack(self)

    def stop(self) -> None:
        """Stop the server and delete its directory. Safe to call twice."""
        self._shutdown(self._stop_signal)
        self._remove()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
