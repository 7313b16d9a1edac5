"""A private Redis (valkey-server or redis-server) on a free port in a temp dir."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from portside.servers import cleanup
from portside.servers.aof import repair_appendonly
from portside.servers.base import LocalServer
from portside.servers.binaries import RedisBinary, find_redis_server
from portside.servers.errors import ServerStartError
from portside.servers.process import spawn, wait_until
from portside.servers.tls import ServerTls

__all__ = ["LocalRedis"]

_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS


class LocalRedis(LocalServer):
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
        tls: Serve TLS only (on ``port``) with these files and require client certificates
            signed by their CA; the binary must be built with TLS (``binary.supports_tls``).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        appendonly: bool = False,
        binary: RedisBinary | None = None,
        base_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
        tls: ServerTls | None = None,
    ) -> None:
        super().__init__(port=port, base_dir=base_dir)
        self.appendonly = appendonly
        self._binary = binary
        self._extra = extra_args
        self.tls = tls

    @property
    def binary(self) -> RedisBinary:
        """The server binary in use."""
        if self._binary is None:
            self._binary = find_redis_server()
        return self._binary

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``; with ``tls``, ``rediss://`` with the query that
        trusts the CA and presents the harness's client certificate."""
        self.directory  # noqa: B018 - raises if not started
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.port}/0?{self.tls.url_query()}"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path | None:
        """The unix socket, unless the directory's path is too long for one."""
        path = self.directory / "redis.sock"
        return path if len(str(path)) <= _SOCKET_PATH_MAX else None

    _usage = "`with LocalRedis() as redis:`"

    def _prepare_dir(self) -> None:
        cleanup.reap_stale_dirs(self._base_dir)
        self._dir = cleanup.make_server_dir("redis", self._base_dir)

    def _launch(self, timeout: float) -> None:
        directory = self.directory
        if self.appendonly:
            # After a kill the file may end inside a transaction (see portside.servers.aof).
            repair_appendonly(directory)
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
        if self.tls is not None:
            argv += self._tls_args(self.tls)
        argv += list(self._extra)
        self._proc = spawn(argv, log=self.log_path)
        wait_until(
            self._answers_ping,
            proc=self._proc,
            what=f"{self.binary.path.name} on port {self.port}",
            log=self.log_path,
            timeout=timeout,
        )

    def _tls_args(self, tls: ServerTls) -> list[str | Path]:
        if not self.binary.supports_tls:
            raise ServerStartError(
                f"{self.binary.describe()} was built without TLS",
                fix="use a valkey-server or redis-server built with TLS (set "
                "PORTSIDE_REDIS_SERVER to its path)",
            )
        return [
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", tls.cert,
            "--tls-key-file", tls.key,
            "--tls-ca-cert-file", tls.ca,
            "--tls-auth-clients", "yes",
        ]  # fmt: skip

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
                if self.tls is None:
                    return _pong(raw)
                context = self.tls.client_context()
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                    return _pong(conn)
        except (OSError, ssl.SSLError):
            return False

    def _port_clash(self) -> bool:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "Address already in use" in text


def _pong(conn: socket.socket) -> bool:
    conn.sendall(b"PING\r\n")
    return conn.recv(64).startswith(b"+PONG")
