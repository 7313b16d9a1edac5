"""O1, O5: ``begin()`` reports the unit of work's own outcome, whatever giving the connection
back to the pool raises (asyncpg's pool re-raises a failed reset after terminating the
connection: a session the server ended right after COMMIT)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import asyncpg.exceptions
import pytest

from portside.adapters.postgres.connections import begin, connection, run
from portside.ports import BackendUnavailableError

RESET_FAILED = asyncpg.exceptions.InternalClientError(
    "cannot switch to state 15; another operation (2) is in progress"
)


@dataclass
class FakeTransaction:
    log: list[str]

    async def start(self) -> None:
        self.log.append("BEGIN")

    async def commit(self) -> None:
        self.log.append("COMMIT")

    async def rollback(self) -> None:
        self.log.append("ROLLBACK")


@dataclass
class FakeConnection:
    log: list[str] = field(default_factory=list)
    terminated: bool = False

    def transaction(self) -> FakeTransaction:
        return FakeTransaction(self.log)

    def is_closed(self) -> bool:
        return self.terminated

    def terminate(self) -> None:
        self.terminated = True


@dataclass
class ResetFailingPool:
    """A pool whose release fails as asyncpg's does when the reset meets a dead session."""

    conn: FakeConnection = field(default_factory=FakeConnection)
    released: int = 0

    def get_max_size(self) -> int:
        return 2

    async def acquire(self) -> FakeConnection:
        return self.conn

    async def release(self, conn: Any) -> None:
        self.released += 1
        conn.terminate()
        raise RESET_FAILED


async def test_o1_a_committed_unit_of_work_is_not_failed_by_its_release() -> None:
    """O1: the block committed; the pool's failed reset neither raises nor hides that."""
    pool = ResetFailingPool()
    async with begin(pool, "an outbox transaction"):  # type: ignore[arg-type]
        pool.conn.log.append("INSERT")
    assert pool.conn.log == ["BEGIN", "INSERT", "COMMIT"]
    assert pool.released == 1


async def test_o5_a_lost_connection_stays_backend_unavailable_through_the_release() -> None:
    """O5: the block lost its connection: the caller gets BackendUnavailableError (the lost
    connection's error as cause), not the error of the release that followed; the connection
    is dropped, not rolled back."""
    pool = ResetFailingPool()
    lost = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
    with pytest.raises(BackendUnavailableError) as raised:
        async with begin(pool, "an outbox transaction"):  # type: ignore[arg-type]
            raise lost
    assert raised.value.__cause__ is lost
    assert "ROLLBACK" not in pool.conn.log
    assert pool.conn.terminated


async def test_o1_the_callers_own_error_survives_the_release() -> None:
    """O1: a bug in the block keeps its type; the transaction is rolled back."""
    pool = ResetFailingPool()
    with pytest.raises(ZeroDivisionError):
        async with begin(pool, "an outbox transaction"):  # type: ignore[arg-type]
            _ = 1 / 0
    assert pool.conn.log == ["BEGIN", "ROLLBACK"]


async def test_o5_a_read_returns_its_result_whatever_the_release_raises() -> None:
    """O5: ``run()`` returns the work's result although the release failed."""
    pool = ResetFailingPool()

    async def work(conn: Any) -> int:
        return 42

    assert await run(pool, work, "outbox pending()") == 42  # type: ignore[arg-type]
    assert pool.released == 1


async def test_a3_a_history_write_is_done_whatever_the_release_raises() -> None:
    """A3: ``connection()`` (run-history writes) does not report a write that succeeded as
    failed because the pool's reset failed after it: the recorder would write the row again."""
    pool = ResetFailingPool()
    async with connection(pool, "job history record_run"):  # type: ignore[arg-type]
        pool.conn.log.append("COPY")
    assert pool.conn.log == ["COPY"]
    assert pool.released == 1


async def test_a3_a_lost_connection_during_a_history_write_is_backend_unavailable() -> None:
    """A3: a connection lost in the block is ``BackendUnavailableError`` with the asyncpg
    error as cause, not the release's error."""
    pool = ResetFailingPool()
    lost = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
    with pytest.raises(BackendUnavailableError) as raised:
        async with connection(pool, "job history record_run"):  # type: ignore[arg-type]
            raise lost
    assert raised.value.__cause__ is lost
    assert pool.released == 1
