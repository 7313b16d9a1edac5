"""A private PostgreSQL server on a free port in a temp dir, tuned for tests."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from portside.servers import cleanup
from portside.servers.base import LocalServer
from portside.servers.binaries import PostgresInstall, find_postgres
from portside.servers.clusters import SUPERUSER, cached_cluster, copy_cluster
from portside.servers.mirror import reachable_install
from portside.servers.process import check_traversable, spawn, wait_until
from portside.servers.users import OsUser, server_user

__all__ = ["TEST_SETTINGS", "LocalPostgres"]

TEST_SETTINGS: Mapping[str, str] = {
    # Durability against power loss is worthless for throwaway test data. Note that with
    # synchronous_commit off a killed server (kill -9) loses its last ~200 ms of commits:
    # crash tests use LocalPostgres(crash_safe=True).
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "max_wal_size": "256MB",
    "log_min_messages": "warning",
    "log_checkpoints": "off",
    "timezone": "UTC",
    # Segments live in the data directory, so a killed server leaves nothing in /dev/shm.
    "dynamic_shared_memory_type": "mmap",
}
_SOCKET_PATH_MAX = 90  # leaves room for "/.s.PGSQL.<port>" within sun_path
_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


class LocalPostgres(LocalServer):
    """A private PostgreSQL server for tests, benchmarks and ``portside dev``.

    The data directory is copied from a cached, freshly initdb'd cluster, so start-up is a
    copy and a server start (well under a second). Listens on 127.0.0.1 and a unix socket in
    its directory; superuser ``postgres`` with trust authentication. As root, the server runs
    as an unprivileged user (see ``portside.servers.users.server_user``).

    Args:
        port: TCP port; a free one by default (and kept across ``restart``).
        install: The PostgreSQL binaries; found with ``find_postgres`` by default.
        settings: Server settings on top of ``TEST_SETTINGS``.
        crash_safe: Keep every acknowledged commit across ``kill()`` (kill -9) and
            ``restart()`` by committing synchronously. fsync stays off: only the server
            process crashes, the machine's page cache survives.
        base_dir: Where to create the server directory (default: ``default_base_dir()``,
            /dev/shm when roomy, else the temp dir).
    """

    _usage = "`with LocalPostgres() as pg:`"
    _stop_signal = _STOP_SIGNALS["fast"]
    _stop_wait = 15.0

    def __init__(
        self,
        *,
        port: int | None = None,
        install: PostgresInstall | None = None,
        settings: Mapping[str, str] | None = None,
        crash_safe: bool = False,
        base_dir: Path | None = None,
    ) -> None:
        super().__init__(port=port, base_dir=base_dir)
        self._install = install
        self.settings = {**TEST_SETTINGS, **(settings or {})}
        if crash_safe:
            self.settings["synchronous_commit"] = "on"
        self._user: OsUser | None = None

    @property
    def install(self) -> PostgresInstall:
        """The PostgreSQL binaries in use."""
        if self._install is None:
            self._install = find_postgres()
        return self._install

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path | None:
        """Where the unix socket lives, unless the path is too long for one."""
        return self.directory if len(str(self.directory)) <= _SOCKET_PATH_MAX else None

    @property
    def dsn(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres`` (superuser, trust auth)."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        """The DSN of ``database`` on this server."""
        self.directory  # noqa: B018 - raises if not started
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> Self:
        """Create the cluster if needed, start the server, return once it accepts connections."""
        return super().start(timeout)

    def restart(self, timeout: float = 30.0) -> Self:
        """Stop (fast shutdown if running) and start again on the same port and data."""
        return super().restart(timeout)

    def _prepare_dir(self) -> None:
        self._create_cluster()

    def _create_cluster(self) -> None:
        self._user = server_user()
        cleanup.reap_stale_dirs(self._base_dir)
        directory = cleanup.make_server_dir("postgres", self._base_dir)
        self._dir = directory
        try:
            if self._user is not None:
                check_traversable(directory.parent, self._user, "the servers' base directory")
                self._install = reachable_install(self.install, self._user)
            copy_cluster(cached_cluster(self.install, self._user), self.data_dir, self._user)
            if self._user is not None:
                # The server writes its log, pid and socket here; the owner file stays root's.
                os.chown(directory, self._user.uid, self._user.gid)
        except BaseException:
            self.stop()
            raise

    def _launch(self, timeout: float) -> None:
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        argv: list[str | Path] = [self.install.postgres, "-D", self.data_dir, "-p", str(self.port)]
        settings = {
            **self.settings,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.socket_dir or ""),
        }
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        # SIGQUIT is Postgres's immediate shutdown: the postmaster takes its backends with it.
        self._proc = spawn(
            argv, log=self.log_path, user=self._user, death_signal=signal.SIGQUIT, env=_env()
        )
        wait_until(
            self._ready,
            proc=self._proc,
            what=f"postgres {self.install.version} on port {self.port}",
            log=self.log_path,
            timeout=timeout,
        )

    def _ready(self) -> bool:
        """postmaster.pid's last line reads ``ready`` once connections are accepted (PG 10+)."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def _port_clash(self) -> bool:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "Address already in use" in text or "could not create any TCP/IP" in text

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server and delete its directory. Safe to call twice.

        Args:
            mode: ``smart``, ``fast`` or ``immediate`` (the default: the data is deleted anyway).
        """
        if mode not in _STOP_SIGNALS:
            raise ValueError(f"mode must be one of {sorted(_STOP_SIGNALS)}, got {mode!r}")
        self._shutdown(_STOP_SIGNALS[mode])
        self._remove()


def _env() -> dict[str, str]:
    """The server's environment: ours minus variables that would redirect it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C")
    return env
