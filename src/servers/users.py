"""The unprivileged OS user Postgres runs as when portside runs as root."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from portside.servers.errors import ServerStartError

__all__ = ["OS_USER_ENV", "OsUser", "chown_tree", "server_user"]

OS_USER_ENV = "PORTSIDE_POSTGRES_OS_USER"
_CANDIDATES = ("postgres", "nobody")
_CREATED = "portside-pg"


@dataclass(frozen=True)
class OsUser:
    """A system account to drop privileges to."""

    name: str
    uid: int
    gid: int


def server_user() -> OsUser | None:
    """The account Postgres must run as, or None when not running as root.

    Postgres refuses to run as root. The account is ``$PORTSIDE_POSTGRES_OS_USER`` if set, else
    ``postgres`` or ``nobody`` (whichever exists first), else a system user created with
    ``useradd`` when that command exists.
    """
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get(OS_USER_ENV, "").strip()
    names = (wanted,) if wanted else (*_CANDIDATES, _CREATED)
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    if wanted:
        raise ServerStartError(
            f"{OS_USER_ENV}={wanted!r} is not an existing non-root user",
            fix=f"create it (useradd --system {wanted}) or unset {OS_USER_ENV}",
            field=OS_USER_ENV,
        )
    return _create_user()


def _create_user() -> OsUser:
    useradd = shutil.which("useradd")
    if useradd is None:
        raise ServerStartError(
            "running as root, and no unprivileged user (postgres, nobody) exists for Postgres",
            fix=f"create one and name it in {OS_USER_ENV}, or run the tests as a normal user",
            field=OS_USER_ENV,
        )
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _CREATED],
        check=True,
        capture_output=True,
        timeout=30,
    )
    entry = pwd.getpwnam(_CREATED)
    return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def chown_tree(root: Path, user: OsUser) -> None:
    """Give ``root`` and everything below it to ``user``."""
    os.chown(root, user.uid, user.gid)
    for parent, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(parent, name), user.uid, user.gid, follow_symlinks=False)
