"""Per-test Postgres isolation: a migrated template database per worker, cloned for each test."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, cast

from portside.ports import ConfigurationError
from portside.testing.background import BackgroundLoop
from portside.testing.dsn import with_database

if TYPE_CHECKING:
    import asyncpg

__all__ = ["DATABASE_PATTERN", "DatabaseIsolation", "Migrate", "load_migrate"]

Migrate = Callable[[str], Awaitable[list[str]]]

DATABASE_PATTERN = re.compile(r"^pt_([0-9a-f]{12})_[a-z0-9]+_([0-9]+|tmpl)$")
"""Names of the databases the harness creates: ``pt_<run>_<worker>_<n|tmpl>``."""

_MIGRATIONS_MODULE = "portside.adapters.postgres.migrations"
_LOCK_TAG = 0x7074 << 48  # "pt": keeps our advisory-lock keys apart from an application's


def load_migrate() -> Migrate | None:
    """portside's ``migrate(dsn)``, or None while the Postgres adapter has no migrations module."""
    try:
        module = importlib.import_module(_MIGRATIONS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name in (_MIGRATIONS_MODULE, "portside.adapters.postgres"):
            return None
        raise
    return cast(Migrate, module.migrate)


class DatabaseIsolation:
    """Creates one database per test, cloned from a template that has every migration applied.

    The template is built once, on first use. Every database this object creates is named
    ``pt_<run>_<worker>_<n>``; while the session lives it holds an advisory lock keyed by
    ``run``, which lets a later session drop the databases of a session that died (kill -9).

    Args:
        loop: The harness's background loop; the admin connection lives there.
        dsn: A DSN of the server with a user allowed to create databases.
        worker: The xdist worker id (``gw0``) or ``main``.
        run: 12 random hex digits unique to this session and worker.
        migrate: Applies the schema to the template (default: portside's migrations).
        prefetch: Clone the next test's database in the background while a test runs, so
            tests rarely wait for a clone.
    """

    def __init__(
        self,
        loop: BackgroundLoop,
        dsn: str,
        worker: str,
        run: str,
        migrate: Migrate | None = None,
        *,
        prefetch: bool = True,
    ) -> None:
        if not re.fullmatch(r"[0-9a-f]{12}", run):
            raise ValueError(f"run must be 12 hex digits, got {run!r}")
        self._loop = loop
        self._dsn = dsn
        self._run = run
        self._stem = f"pt_{run}_{re.sub(r'[^a-z0-9]', '', worker.lower()) or 'main'}"
        self._lock_key = _LOCK_TAG | int(run, 16)
        self._migrate = migrate
        self._counter = itertools.count(1)
        # Two admin sessions, so dropping the last test's database (in the background) does
        # not hold up cloning the next one. The first also holds the session's advisory lock.
        self._main = _AdminSession(dsn, self._lock_key)
        self._dropper = _AdminSession(dsn, None)
        self._template_ready = False
        self._template_error: BaseException | None = None
        self._live: set[str] = set()
        self._prefetch = prefetch
        self._next: Future[str] | None = None
        self.applied: list[str] | None = None
        """Migration versions applied to the template (None: no migrations module found)."""
        self.reclaimed: list[str] = []
        """Databases of dead sessions dropped while building the template."""

    @property
    def template(self) -> str:
        """The template database's name."""
        return f"{self._stem}_tmpl"

    def create_database(self) -> str:
        """A new database cloned from the template; its DSN."""
        current, self._next = self._next, None
        if current is None:
            current = self._loop.submit(self._create(), track=False)
        try:
            name = current.result(60)
        finally:
            if self._prefetch and self._template_error is None:
                self._next = self._loop.submit(self._create(), track=False)
        return with_database(self._dsn, name)

    def drop_database(self, name: str, *, wait: bool = False) -> None:
        """Drop ``name`` (closing its connections); in the background unless ``wait``."""
        self._live.discard(name)
        if wait:
            self._loop.run(self._drop(name), timeout=60)
        else:
            self._loop.submit(self._drop(name))

    def list_databases(self) -> list[str]:
        """Names of this object's databases that exist now (template included)."""
        names: list[str] = self._loop.run(self._list(self._stem + "_"), timeout=30)
        return names

    def close(self) -> list[BaseException]:
        """Drop every database this object created; return errors met on the way."""
        if self._next is not None:
            # The database cloned ahead for a test that never came; dropped with the rest.
            with contextlib.suppress(BaseException):
                self._next.result(60)
            self._next = None
        errors = self._loop.wait_pending()
        try:
            self._loop.run(self._close(), timeout=60)
        except BaseException as exc:  # reported by the caller with the other errors
            errors.append(exc)
        return errors

    async def _create(self) -> str:
        async with self._main.use() as conn:
            await self._ensure_template(conn)
            name = f"{self._stem}_{next(self._counter)}"
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            self._live.add(name)
        return name

    async def _ensure_template(self, conn: asyncpg.Connection) -> None:
        if self._template_ready:
            return
        if self._template_error is not None:
            raise self._template_error
        try:
            self.reclaimed = await self._reclaim_dead_sessions(conn)
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{self.template}"')
            migrate = self._migrate or load_migrate()
            if migrate is not None:
                self.applied = list(await migrate(with_database(self._dsn, self.template)))
            # A pool the migrations left open would make every clone fail; close such sessions.
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                self.template,
            )
            await conn.execute(f'ALTER DATABASE "{self.template}" WITH ALLOW_CONNECTIONS false')
        except BaseException as exc:
            self._template_error = exc
            raise
        self._template_ready = True

    async def _reclaim_dead_sessions(self, conn: asyncpg.Connection) -> list[str]:
        rows = await conn.fetch(r"SELECT datname FROM pg_database WHERE datname LIKE 'pt\_%'")
        by_run: dict[str, list[str]] = {}
        for row in rows:
            match = DATABASE_PATTERN.match(row["datname"])
            if match and match.group(1) != self._run:
                by_run.setdefault(match.group(1), []).append(row["datname"])
        reclaimed: list[str] = []
        for run, names in sorted(by_run.items()):
            key = _LOCK_TAG | int(run, 16)
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                continue  # its session is alive
            try:
                for name in names:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    reclaimed.append(name)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", key)
        return reclaimed

    async def _drop(self, name: str) -> None:
        async with self._dropper.use() as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _list(self, start: str) -> list[str]:
        async with self._main.use() as conn:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
                start,
            )
        return [row["datname"] for row in rows]

    async def _close(self) -> None:
        if not self._main.opened:
            return
        for name in sorted(self._live):
            await self._drop(name)
        self._live.clear()
        if self._template_ready or self._template_error is not None:
            await self._drop(self.template)
        await self._dropper.close()
        await self._main.close()  # releases the advisory lock


class _AdminSession:
    """One admin connection, opened on first use, used by one coroutine at a time."""

    def __init__(self, dsn: str, lock_key: int | None) -> None:
        self._dsn = dsn
        self._lock_key = lock_key
        self._conn: asyncpg.Connection | None = None
        self._guard: asyncio.Lock | None = None
        self.opened = False

    @asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        if self._guard is None:
            self._guard = asyncio.Lock()
        async with self._guard:
            if self._conn is None or self._conn.is_closed():
                self._conn = await _connect(self._dsn)
                self.opened = True
                if self._lock_key is not None:
                    await self._conn.execute("SELECT pg_advisory_lock($1)", self._lock_key)
            yield self._conn

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._conn = None


async def _connect(dsn: str) -> asyncpg.Connection:
    try:
        import asyncpg
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            "the portside harness needs the 'asyncpg' package for Postgres fixtures",
            fix="pip install 'portside[postgres]'",
        ) from exc
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    return conn
