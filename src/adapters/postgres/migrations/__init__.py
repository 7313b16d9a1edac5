"""Versioned SQL migrations shipped as package data, applied in order under an advisory lock."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import asyncpg

from portside.ports import ConfigurationError
from portside.sqlfiles import SqlFile

__all__ = [
    "CORE_SOURCE",
    "Migration",
    "MigrationSource",
    "available_migrations",
    "load_migrations",
    "migrate",
    "migrate_connection",
    "pending_migrations",
]

_log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")

CORE_SOURCE = "portside"
"""The source name of portside's own migrations (this package)."""

# A fixed key in the single-bigint advisory lock space ("portmigr" in ASCII) so that every
# migrator of every process queues behind the one already running.
MIGRATION_LOCK_KEY = 0x706F72746D696772

_sql = SqlFile("portside.adapters.postgres", "schema_version.sql")


@dataclass(frozen=True)
class Migration:
    """One ``NNNN_name.sql`` file of a migration source.

    Attributes:
        version: The four-digit prefix, e.g. ``"0001"``; a source's migrations apply in this
            order.
        name: The rest of the file name without ``.sql``, e.g. ``"outbox"``.
        sql: The file's text, executed in one transaction.
        source: The name of the source it belongs to (``"portside"`` for portside's own).
        checksum: SHA-256 of ``sql``; an applied migration whose file changed is an error.
    """

    version: str
    name: str
    sql: str
    source: str = CORE_SOURCE

    @property
    def checksum(self) -> str:
        """SHA-256 hex digest of the SQL text."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def label(self) -> str:
        """How ``migrate`` reports it: ``"0001"`` for portside's, ``"<source>/0001"`` else."""
        return self.version if self.source == CORE_SOURCE else f"{self.source}/{self.version}"


@dataclass(frozen=True)
class MigrationSource:
    """An application's own migrations: the ``NNNN_name.sql`` files of one directory.

    The hook for schemas beside portside's: pass sources to ``migrate`` and they apply after
    portside's migrations, each source in the order given and its files in version order.
    Every source has its own version sequence, recorded in ``portside_schema_version`` under
    its name, so an application's ``0001`` never collides with portside's ``0001``.

    Attributes:
        name: Recorded with every applied version, so keep it stable: under a new name every
            file applies again. Lowercase letters, digits, ``.``, ``_``, ``-``; ``portside``
            is taken by portside's own migrations.
        directory: Where the files are (a ``pathlib.Path`` or package resources).
    """

    name: str
    directory: Traversable

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _SOURCE_NAME.match(self.name):
            raise ConfigurationError(
                f"migration source name {self.name!r} is invalid",
                fix="use 1-100 lowercase letters, digits, '.', '_' or '-', starting with a "
                "letter, e.g. the package name 'myapp.migrations'",
                field="name",
            )
        if self.name == CORE_SOURCE:
            raise ConfigurationError(
                f"migration source name {CORE_SOURCE!r} is portside's own",
                fix="name the source after your application or package, e.g. 'myapp'",
                field="name",
            )

    @classmethod
    def from_package(cls, package: str, *, name: str | None = None) -> MigrationSource:
        """The ``.sql`` files shipped in ``package`` (package data), recorded under ``name``
        (default: the package's name)."""
        return cls(name or package, files(package))

    def migrations(self) -> list[Migration]:
        """The source's files, ordered by version.

        Raises:
            ConfigurationError: A ``.sql`` file is misnamed or two files share a version.
        """
        return load_migrations(self.directory, source=self.name)


def available_migrations() -> list[Migration]:
    """Every migration file shipped in this package (portside's own), ordered by version.

    Raises:
        ConfigurationError: A ``.sql`` file is misnamed or two files share a version.
    """
    return load_migrations(files(__name__))


def load_migrations(directory: Traversable, *, source: str = CORE_SOURCE) -> list[Migration]:
    """The ``NNNN_name.sql`` files in ``directory``, ordered by version.

    Raises:
        ConfigurationError: A ``.sql`` file is misnamed or two files share a version.
    """
    found: dict[str, Migration] = {}
    for entry in directory.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise ConfigurationError(
                f"migration file {entry.name!r} is misnamed",
                fix="name it NNNN_lowercase_words.sql, e.g. 0002_add_index.sql",
            )
        version = match["version"]
        if version in found:
            raise ConfigurationError(
                f"migrations {found[version].name!r} and {match['name']!r} share version {version}",
                fix="give each migration file its own four-digit prefix",
            )
        found[version] = Migration(
            version, match["name"], entry.read_text(encoding="utf-8"), source
        )
    return [found[version] for version in sorted(found)]


async def migrate(dsn: str, sources: Sequence[MigrationSource] = ()) -> list[str]:
    """Apply every pending migration to the database at ``dsn``: portside's, then ``sources``'.

    Safe to run repeatedly and from several processes at once: migrators queue on an
    advisory lock, and each migration runs in its own transaction together with its
    row in ``portside_schema_version``.

    Args:
        dsn: A libpq-style URL, e.g. ``postgresql://user@host:5432/db``.
        sources: An application's own migrations, applied after portside's, in this order.

    Returns:
        The migrations applied by this call, in order, as ``Migration.label``: the version
        for portside's own (``"0001"``), ``"<source>/<version>"`` for the others (empty when
        the schema is current).

    Raises:
        ConfigurationError: An applied migration's file has changed since it was applied, or
            two sources share a name.
    """
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate_connection(conn, sources)
    finally:
        await conn.close()


async def migrate_connection(
    conn: asyncpg.Connection, sources: Sequence[MigrationSource] = ()
) -> list[str]:
    """Like ``migrate`` on an open connection (it must not be in a transaction).

    Returns:
        The migrations applied by this call, in order, as ``Migration.label``.
    """
    if conn.is_in_transaction():
        raise ConfigurationError(
            "migrate_connection() got a connection inside a transaction",
            fix="pass an idle connection: each migration opens its own transaction",
        )
    pending = _planned(sources)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await _prepare_version_table(conn)
        applied = {
            (row["source"], row["version"]): row["checksum"]
            for row in await conn.fetch(_sql("applied"))
        }
        # Applied versions without a file here are fine: a file may have moved to another
        # source (portside's 0011 and 0020 became the examples' own migrations).
        done: list[str] = []
        for migration in pending:
            checksum = applied.get((migration.source, migration.version))
            if checksum is not None:
                _check_unchanged(migration, checksum)
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    _sql("record"),
                    migration.source,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            _log.info("applied migration %s_%s", migration.label, migration.name)
            done.append(migration.label)
        return done
    finally:
        # A lost connection has released the session lock already.
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


def _planned(sources: Sequence[MigrationSource]) -> list[Migration]:
    """portside's migrations, then each source's, read before any lock is taken."""
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            raise ConfigurationError(
                f"two migration sources are named {source.name!r}",
                fix="give each source its own name: versions are recorded per source name",
                field="sources",
            )
        seen.add(source.name)
    planned = available_migrations()
    for source in sources:
        planned.extend(source.migrations())
    return planned


async def _prepare_version_table(conn: asyncpg.Connection) -> None:
    await conn.execute(_sql("create_version_table"))
    if not await conn.fetchval(_sql("has_source_column")):
        async with conn.transaction():
            await conn.execute(_sql("add_source_column"))


def _check_unchanged(migration: Migration, checksum: str) -> None:
    if checksum != migration.checksum:
        raise ConfigurationError(
            f"migration {migration.label}_{migration.name} was applied with different "
            "content (checksum mismatch)",
            fix="never edit an applied migration: revert the file and add a new NNNN_*.sql",
        )


async def pending_migrations(conn: asyncpg.Pool[Any] | asyncpg.Connection) -> list[str]:
    """portside's migrations not yet applied to the database of ``conn`` (a connection or a
    pool), as labels (all of them when the version table does not exist yet). Reads only;
    takes no lock."""
    exists = await conn.fetchval("SELECT to_regclass('portside_schema_version') IS NOT NULL")
    applied: set[str] = set()
    if exists and await conn.fetchval(_sql("has_source_column")):
        rows = await conn.fetch(_sql("applied"))
        applied = {row["version"] for row in rows if row["source"] == CORE_SOURCE}
    elif exists:  # a table from before sources: every row is portside's
        rows = await conn.fetch("SELECT version FROM portside_schema_version")
        applied = {row["version"] for row in rows}
    return [item.label for item in available_migrations() if item.version not in applied]
