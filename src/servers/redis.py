"""A private Redis (valkey-server or redis-server) on a free port in a temp dir."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path
from types import TracebackType

from portside.servers import cleanup
from portside.servers.binaries import RedisBinary, find_redis_server
from portside.servers.errors import ServerStartError
from portside.servers.process import free_port, signal_group, spawn, wait_exit, wait_until

__all__ = ["LocalRedis"]

_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS
_PORT_ATTEMPTS = 3


class LocalRedis:
    """A private Redis server for tests, benchmarks and ``portside dev``.

    Listens on 127.0.0.1 only (and a unix socket in its directory), keeps no data on disk
    unless ``appendonly``. ``stop`` removes the directory; ``kill``/``restart`` keep it so an
    append-only server comes back with its data.

    Args:
        port: TCP port; a free one by default (and kept across ``restart``).
        appendonly: Persist every write to an append-only file (for crash/restart tests).
        binary: The server binary; found with ``find_redis_server`` by default.
        base_dir: Where to create the server directory (default: ``default_base_dir()``,
            /dev/shm when roomy, else the temp dir).
        extra_args: More ``--option value`` arguments for the server.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        appendonly: bool = False,
        binary: RedisBinary | None = None,
        base_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self._fixed_port = port
        self.port = port or 0
        self.appendonly = appendonly
        self._binary = binary
        self._base_dir = base_dir
        self._extra = extra_args
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def binary(self) -> RedisBinary:
        """The server binary in use."""
        if self._binary is None:
            self._binary = find_redis_server()
        return self._binary

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        self._require_dir()
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def directory(self) -> Path:
        """The server's private directory (data, log, socket)."""
        return self._require_dir()

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def socket_path(self) -> Path | None:
        """The unix socket, unless the directory's path is too long for one."""
        path = self.directory / "redis.sock"
        return path if len(str(path)) <= _SOCKET_PATH_MAX else None

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> LocalRedis:
        """Start the server and return once it answers PING."""
        if self.running:
            return self
        if self._dir is None:
            cleanup.reap_stale_dirs(self._base_dir)
            self._dir = cleanup.make_server_dir("redis", self._base_dir)
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

    def _launch(self, timeout: float) -> None:
        directory = self.directory
        argv: list[str | Path] = [
            self.binary.path,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", directory,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--daemonize", "no",
            "--pidfile", directory / "server.pid",
            "--logfile", "",
            "--databases", "16",
        ]  # fmt: skip
        if self.socket_path is not None:
            argv += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        argv += list(self._extra)
        self._proc = spawn(argv, log=self.log_path)
        wait_until(
            self._answers_ping,
            proc=self._proc,
            what=f"{self.binary.path.name} on port {self.port}",
            log=self.log_path,
            timeout=timeout,
        )

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _port_clash(self) -> bool:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "Address already in use" in text

    def kill(self) -> None:
        """SIGKILL the server (a crash); ``restart`` brings it back on the same port and dir."""
        if self._proc is not None:
            signal_group(self._proc, signal.SIGKILL)
            wait_exit(self._proc, 10)
            self._proc = None

    def restart(self, timeout: float = 15.0) -> LocalRedis:
        """Stop (gracefully if still running) and start again on the same port and dir."""
        if self.running:
            self._shutdown()
        if not self._fixed_port:
            self._fixed_port = self.port
            try:
                return self.start(timeout)
            finally:
                self._fixed_port = None
        return self.start(timeout)

    def _shutdown(self) -> None:
        if self._proc is None:
            return
        signal_group(self._proc, signal.SIGTERM)
        if not wait_exit(self._proc, 10):
            signal_group(self._proc, signal.SIGKILL)
            wait_exit(self._proc, 10)
        self._proc = None

    def stop(self) -> None:
        """Stop the server and remove its directory. Safe to call twice."""
        self._shutdown()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        cleanup.untrack(self)

    def _require_dir(self) -> Path:
        if self._dir is None:
            raise ServerStartError(
                "the LocalRedis server has not been started",
                fix="call start() first, or use it as `with LocalRedis() as redis:`",
            )
        return self._dir

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
