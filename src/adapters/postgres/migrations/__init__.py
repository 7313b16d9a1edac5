"""Versioned SQL migrations shipped as package data, applied in order under an advisory lock."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

import asyncpg

from portside.ports import ConfigurationError

__all__ = [
    "Migration",
    "available_migrations",
    "load_migrations",
    "migrate",
    "migrate_connection",
]

_log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

# A fixed key in the single-bigint advisory lock space ("portmigr" in ASCII) so that every
# migrator of every process queues behind the one already running.
MIGRATION_LOCK_KEY = 0x706F72746D696772

_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS portside_schema_version (
    version    text        PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One ``NNNN_name.sql`` file of this package.

    Attributes:
        version: The four-digit prefix, e.g. ``"0001"``; migrations apply in this order.
        name: The rest of the file name without ``.sql``, e.g. ``"outbox"``.
        sql: The file's text, executed in one transaction.
        checksum: SHA-256 of ``sql``; an applied migration whose file changed is an error.
    """

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 hex digest of the SQL text."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def available_migrations() -> list[Migration]:
    """Every migration file shipped in this package, ordered by version.

    Raises:
        ConfigurationError: A ``.sql`` file is misnamed or two files share a version.
    """
    return load_migrations(files(__name__))


def load_migrations(directory: Traversable) -> list[Migration]:
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
        found[version] = Migration(version, match["name"], entry.read_text(encoding="utf-8"))
    return [found[version] for version in sorted(found)]


async def migrate(dsn: str) -> list[str]:
    """Apply every pending migration to the database at ``dsn``.

    Safe to run repeatedly and from several processes at once: migrators queue on an
    advisory lock, and each migration runs in its own transaction together with its
    row in ``portside_schema_version``.

    Args:
        dsn: A libpq-style URL, e.g. ``postgresql://user@host:5432/db``.

    Returns:
        The versions applied by this call, in order (empty when the schema is current).

    Raises:
        ConfigurationError: An applied migration's file has changed since it was applied.
    """
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate_connection(conn)
    finally:
        await conn.close()


async def migrate_connection(conn: asyncpg.Connection) -> list[str]:
    """Like ``migrate`` on an open connection (it must not be in a transaction).

    Returns:
        The versions applied by this call, in order.
    """
    if conn.is_in_transaction():
        raise ConfigurationError(
            "migrate_connection() got a connection inside a transaction",
            fix="pass an idle connection: each migration opens its own transaction",
        )
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_CREATE_VERSION_TABLE)
        applied = {
            row["version"]: row["checksum"]
            for row in await conn.fetch("SELECT version, checksum FROM portside_schema_version")
        }
        done: list[str] = []
        for migration in available_migrations():
            if migration.version in applied:
                _check_unchanged(migration, applied[migration.version])
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO portside_schema_version (version, name, checksum) "
                    "VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            _log.info("applied migration %s_%s", migration.version, migration.name)
            done.append(migration.version)
        return done
    finally:
        # A lost connection has released the session lock already.
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


def _check_unchanged(migration: Migration, checksum: str) -> None:
    if checksum != migration.checksum:
        raise ConfigurationError(
            f"migration {migration.version}_{migration.name} was applied with different "
            "content (checksum mismatch)",
            fix="never edit an applied migration: revert the file and add a new NNNN_*.sql",
        )
