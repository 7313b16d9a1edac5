"""A private Postgres streaming standby of a ``LocalPostgres``, made with pg_basebackup."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from portside.servers import cleanup
from portside.servers.clusters import SUPERUSER
from portside.servers.errors import ServerStartError
from portside.servers.mirror import reachable_install
from portside.servers.postgres import LocalPostgres
from portside.servers.process import check_traversable
from portside.servers.users import server_user

__all__ = ["LocalStandby"]


class LocalStandby(LocalPostgres):
    """A hot standby streaming from ``primary`` (same binaries), promotable to primary.

    The primary must allow replication connections from 127.0.0.1 (the harness's clusters
    do) and run with ``full_page_writes=on`` (pg_basebackup refuses a backup otherwise).
    """

    _usage = "`with LocalStandby(primary) as standby:`"

    def __init__(self, primary: LocalPostgres, *, base_dir: Path | None = None) -> None:
        super().__init__(install=primary.install, base_dir=base_dir)
        self.primary = primary

    def _create_cluster(self) -> None:
        self._user = server_user()
        cleanup.reap_stale_dirs(self._base_dir)
        directory = cleanup.make_server_dir("postgres", self._base_dir)
        self._dir = directory
        try:
            if self._user is not None:
                check_traversable(directory.parent, self._user, "the servers' base directory")
                self._install = reachable_install(self.install, self._user)
                os.chown(directory, self._user.uid, self._user.gid)
            self._run(
                "pg_basebackup",
                "-D", str(self.data_dir),
                "-h", "127.0.0.1",
                "-p", str(self.primary.port),
                "-U", SUPERUSER,
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
                "--no-sync",
            )  # fmt: skip
            self.data_dir.chmod(0o700)
        except BaseException:
            self.stop()
            raise

    def promote(self) -> None:
        """Make this standby a primary and return once it accepts writes."""
        self._run("pg_ctl", "promote", "-D", str(self.data_dir), "-w", "-t", "60")

    def _run(self, program: str, *args: str) -> None:
        user = self._user
        result = subprocess.run(
            [str(self.install.bindir / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            user=None if user is None else user.uid,
            group=None if user is None else user.gid,
            extra_groups=None if user is None else [],
            cwd=self.directory,
            env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
            check=False,
        )
        if result.returncode != 0:
            raise ServerStartError(
                f"{program} failed with status {result.returncode}:\n"
                + (result.stderr or result.stdout)[-2000:],
                fix="read the output above",
            )

    def _ready(self) -> bool:
        """A hot standby writes ``standby`` where a primary writes ``ready``."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() in ("ready", "standby")
