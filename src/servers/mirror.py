"""A copy of a PostgreSQL installation that the unprivileged server user can execute."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import tempfile
from pathlib import Path

from portside.servers.binaries import PostgresInstall
from portside.servers.errors import ServerStartError
from portside.servers.process import check_traversable
from portside.servers.users import OsUser

__all__ = ["reachable_install"]

_PARTS = ("bin", "lib", "share")


def reachable_install(install: PostgresInstall, user: OsUser) -> PostgresInstall:
    """``install`` if ``user`` can execute it, else a world-readable copy of it.

    As root, bundled binaries often sit in a virtualenv under a private directory (``/root``,
    a ``mktemp -d``), which the user Postgres runs as cannot enter. The copy keeps the layout
    the binaries rely on: ``<prefix>/{bin,lib,share}`` and, for wheels repaired by auditwheel,
    the ``<package>.libs`` directory next to the package (found through ``$ORIGIN`` rpaths).
    It is made once per installation under the temp dir and reused.
    """
    try:
        check_traversable(install.postgres, user, "the postgres binary")
    except ServerStartError:
        pass
    else:
        return install
    prefix = install.bindir.parent
    package = prefix.parent
    digest = hashlib.sha256(str(install.bindir.resolve()).encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"portside-pg-{install.version}-{digest}"
    target = root / package.name / prefix.name
    with open(Path(tempfile.gettempdir()) / f"portside-pg-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "bin" / "postgres").exists():
            _copy(prefix, package, root)
    mirrored = PostgresInstall(target / "bin", f"{install.source}, copied to {root}")
    check_traversable(mirrored.postgres, user, "the copied postgres binary")
    return mirrored


def _copy(prefix: Path, package: Path, root: Path) -> None:
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for part in _PARTS:
        if (prefix / part).is_dir():
            shutil.copytree(prefix / part, partial / package.name / prefix.name / part)
    libs = package.with_name(package.name + ".libs")
    if libs.is_dir():
        shutil.copytree(libs, partial / libs.name)
    for path in [partial, *partial.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | 0o755 if path.is_dir() or mode & 0o100 else mode | 0o644)
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
