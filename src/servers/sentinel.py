"""A private Redis Sentinel (the redis/valkey server binary in sentinel mode) on a free port."""

from __future__ import annotations

import socket
from pathlib import Path

from portside.servers import cleanup
from portside.servers.base import LocalServer
from portside.servers.binaries import RedisBinary, find_redis_server
from portside.servers.process import free_port, spawn, wait_until
from portside.servers.tls import ServerTls

__all__ = ["LocalSentinel"]


class LocalSentinel(LocalServer):
    """A Sentinel watching one master, for failover tests.

    Args:
        service: The name Sentinel gives the master (``sentinel monitor <service> ...``).
        master_port: The master's port on 127.0.0.1.
        quorum: Sentinels that must agree the master is down.
        down_after: Seconds without a reply before a master counts as down.
        failover_timeout: Seconds a failover may take before another is tried.
        binary: The server binary; found with ``find_redis_server`` by default.
        base_dir: Where to create the directory (holds the config Sentinel rewrites).
        tls: Also serve TLS on ``tls_port`` (client certificates required) with these files,
            and watch the master over TLS (``tls-replication yes``: ``master_port`` is then
            the master's TLS port). The plain port stays open for the harness's checks.
    """

    _usage = "`with LocalSentinel(service, master_port) as sentinel:`"

    def __init__(
        self,
        service: str,
        master_port: int,
        *,
        quorum: int = 2,
        down_after: float = 1.0,
        failover_timeout: float = 10.0,
        binary: RedisBinary | None = None,
        base_dir: Path | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        super().__init__(port=None, base_dir=base_dir)
        self.tls = tls
        self.tls_port = free_port() if tls is not None else 0
        self.service = service
        self.master_port = master_port
        self.quorum = quorum
        self.down_after = down_after
        self.failover_timeout = failover_timeout
        self._binary = binary

    @property
    def binary(self) -> RedisBinary:
        if self._binary is None:
            self._binary = find_redis_server()
        return self._binary

    def _prepare_dir(self) -> None:
        cleanup.reap_stale_dirs(self._base_dir)
        self._dir = cleanup.make_server_dir("sentinel", self._base_dir)

    def _launch(self, timeout: float) -> None:
        directory = self.directory
        config = directory / "sentinel.conf"
        if not config.exists() or self._port_changed(config):
            service = self.service
            config.write_text(
                f"port {self.port}\n"
                "bind 127.0.0.1\n"
                f"dir {directory}\n"
                f"sentinel monitor {service} 127.0.0.1 {self.master_port} {self.quorum}\n"
                f"sentinel down-after-milliseconds {service} {round(self.down_after * 1000)}\n"
                f"sentinel failover-timeout {service} {round(self.failover_timeout * 1000)}\n"
                f"sentinel parallel-syncs {service} 1\n" + self._tls_config()
            )
        argv: list[str | Path] = [
            self.binary.path, config, "--sentinel", "--daemonize", "no", "--logfile", "",
        ]  # fmt: skip
        self._proc = spawn(argv, log=self.log_path)
        wait_until(
            self._answers_ping,
            proc=self._proc,
            what=f"sentinel on port {self.port}",
            log=self.log_path,
            timeout=timeout,
        )

    def _tls_config(self) -> str:
        tls = self.tls
        if tls is None:
            return ""
        return (
            f"tls-port {self.tls_port}\n"
            f"tls-cert-file {tls.cert}\n"
            f"tls-key-file {tls.key}\n"
            f"tls-ca-cert-file {tls.ca}\n"
            f"tls-client-cert-file {tls.client_cert}\n"
            f"tls-client-key-file {tls.client_key}\n"
            "tls-auth-clients yes\n"
            "tls-replication yes\n"
        )

    def _port_changed(self, config: Path) -> bool:
        return f"port {self.port}\n" not in config.read_text()

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
