"""A cache of freshly initdb'd Postgres clusters, copied instead of running initdb every time."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from portside.servers.binaries import PostgresInstall
from portside.servers.cleanup import default_base_dir
from portside.servers.errors import ServerStartError
from portside.servers.users import OsUser, chown_tree

__all__ = ["CACHE_ENV", "cache_root", "cached_cluster", "copy_cluster"]

CACHE_ENV = "PORTSIDE_CACHE_DIR"
SUPERUSER = "postgres"
_INITDB_ARGS = (
    f"--username={SUPERUSER}",
    "--auth=trust",
    "--encoding=UTF8",
    "--locale=C",
    "--wal-segsize=1",  # 1 MB WAL segments: a smaller cluster to copy
    "--no-sync",  # the cluster is a throwaway copy source; durability buys nothing here
)


def cache_root() -> Path:
    """``$PORTSIDE_CACHE_DIR``, else ``$XDG_CACHE_HOME/portside``, else ``~/.cache/portside``."""
    explicit = os.environ.get(CACHE_ENV, "").strip()
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "portside"


def _key(install: PostgresInstall, user: OsUser | None) -> str:
    digest = hashlib.sha256(str(install.bindir.resolve()).encode()).hexdigest()[:12]
    owner = user.name if user else str(os.getuid())
    return f"pgcluster-{install.version}-{digest}-{owner}"


def cached_cluster(install: PostgresInstall, user: OsUser | None) -> Path:
    """A data directory initdb'd by ``install``, built once per machine (and cache dir).

    Concurrent callers (xdist workers) build it once: the first holds a file lock while the
    others wait for it.
    """
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        root = Path(tempfile.gettempdir()) / f"portside-cache-{os.getuid()}"
        root.mkdir(parents=True, exist_ok=True)
    key = _key(install, user)
    target = root / key
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "PG_VERSION").exists():
            _build(install, user, target)
    return target


def _build(install: PostgresInstall, user: OsUser | None, target: Path) -> None:
    # initdb runs as ``user``, who may not be able to enter the cache (e.g. under /root), so
    # it runs in a scratch dir (on tmpfs when there is one: much faster) and is then copied.
    scratch = Path(tempfile.mkdtemp(prefix="portside-initdb-", dir=default_base_dir()))
    try:
        data = scratch / "data"
        if user is not None:
            os.chown(scratch, user.uid, user.gid)
        result = subprocess.run(
            [str(install.initdb), "-D", str(data), *_INITDB_ARGS],
            capture_output=True,
            text=True,
            timeout=300,
            user=None if user is None else user.uid,
            group=None if user is None else user.gid,
            extra_groups=None if user is None else [],
            cwd=scratch,
            check=False,
        )
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb ({install.describe()}) failed with status {result.returncode}:\n"
                + (result.stderr or result.stdout)[-2000:],
                fix="read the output above; as root, check that the Postgres user can read "
                f"{install.bindir}",
            )
        shutil.rmtree(target, ignore_errors=True)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(data, partial, symlinks=True)
        partial.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def copy_cluster(source: Path, destination: Path, user: OsUser | None) -> None:
    """Copy a cached cluster to ``destination`` (owned by ``user``, mode 0700 as Postgres wants)."""
    shutil.copytree(source, destination, symlinks=True)
    if user is not None:
        chown_tree(destination, user)
    destination.chmod(0o700)
