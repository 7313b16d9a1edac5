"""A3, A4: PostgresHistory passes the history contract on a real database, and coalesces
concurrent writes without mixing up callers (issue 9)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from portside.adapters.postgres.history import PostgresHistory
from portside.ports import BackendUnavailableError, RunFinish, ValidationError
from portside.testing.contracts import HistoryContract
from portside.testing.contracts.history_contract import T0, dead, start

pytestmark = pytest.mark.integration


@pytest.fixture
async def history(postgres_dsn: str) -> AsyncIterator[PostgresHistory]:
    store = PostgresHistory(postgres_dsn)
    try:
        yield store
    finally:
        await store.close()


class TestPostgresHistory(HistoryContract):
    """Every HistoryPort behaviour on Postgres (job_runs, job_failures)."""


class TestPostgresHistoryWithoutWaitingForFlush(HistoryContract):
    """The same with ``synchronous_commit=False``: only when commits reach disk changes."""

    @pytest.fixture
    async def history(self, postgres_dsn: str) -> AsyncIterator[PostgresHistory]:
        store = PostgresHistory(postgres_dsn, synchronous_commit=False)
        try:
            yield store
        finally:
            await store.close()


async def test_a3_history_commits_skip_the_flush_wait_only_when_asked(postgres_dsn: str) -> None:
    """A3: ``synchronous_commit=False`` sets the history sessions' ``synchronous_commit`` off;
    by default they keep the server's setting; a dead letter commits either way."""
    plain = await asyncpg.connect(postgres_dsn)
    try:
        server_default = await plain.fetchval("SHOW synchronous_commit")
    finally:
        await plain.close()
    for wait, expected in ((True, server_default), (False, "off")):
        history = PostgresHistory(postgres_dsn, synchronous_commit=wait)
        try:
            pool = await history._get_pool()
            assert await pool.fetchval("SHOW synchronous_commit") == expected
            stored = await history.add_failure(dead("j-sync", T0))
            assert await history.get_failure(stored.id) == stored
        finally:
            await history.close()


async def test_a3_purge_runs_deletes_in_bounded_batches(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five old runs with a batch of two: three DELETEs, every old run gone, running kept."""
    history = PostgresHistory(postgres_dsn, purge_batch=2)
    try:
        for index in range(5):
            run = await history.record_start(start(f"old-{index}"))
            await history.record_finish(
                run.id, RunFinish(status="completed", finished_at=T0 + timedelta(seconds=1))
            )
        running = await history.record_start(start("running"))
        deleted: list[tuple[str, int]] = []
        execute = history._execute

        async def counting_execute(name: str, *args: Any) -> int:
            count = await execute(name, *args)
            deleted.append((name, count))
            return count

        monkeypatch.setattr(history, "_execute", counting_execute)
        assert await history.purge_runs(now=T0 + timedelta(days=31)) == 5
        assert deleted == [("purge_runs", 2), ("purge_runs", 2), ("purge_runs", 1)]
        monkeypatch.undo()
        assert [run.id for run in await history.list_runs()] == [running.id]
    finally:
        await history.close()


def test_a3_purge_batch_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="purge_batch"):
        PostgresHistory("postgresql://localhost/db", purge_batch=0)


class StatementSpy:
    """Counts the named statements a PostgresHistory runs through its pool."""

    def __init__(self, history: PostgresHistory, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        fetch, fetchrow = history._fetch, history._fetchrow

        async def counted_fetch(name: str, *args: Any) -> Any:
            self.names.append(name)
            return await fetch(name, *args)

        async def counted_fetchrow(name: str, *args: Any) -> Any:
            self.names.append(name)
            return await fetchrow(name, *args)

        monkeypatch.setattr(history, "_fetch", counted_fetch)
        monkeypatch.setattr(history, "_fetchrow", counted_fetchrow)


async def test_a3_concurrent_starts_and_finishes_are_one_statement_each(
    history: PostgresHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9: 50 attempts starting together cost one INSERT, finishing together one UPDATE."""
    spy = StatementSpy(history, monkeypatch)
    starts = [
        start(f"job-{n}", n % 3 + 1, queue=f"q{n % 2}", at=T0 + timedelta(seconds=n))
        for n in range(50)
    ]

    runs = await asyncio.gather(*(history.record_start(run) for run in starts))

    assert [(r.job_id, r.attempt, r.queue, r.started_at) for r in runs] == [
        (s.job_id, s.attempt, s.queue, s.started_at) for s in starts
    ]
    assert len({run.id for run in runs}) == 50
    finishes = [
        RunFinish(status="completed", finished_at=T0 + timedelta(seconds=60), result={"n": n})
        for n in range(50)
    ]
    closed = await asyncio.gather(
        *(history.record_finish(run.id, finish) for run, finish in zip(runs, finishes, strict=True))
    )

    assert [(c.id, c.status, c.result) for c in closed] == [
        (run.id, "completed", {"n": n}) for n, run in enumerate(runs)
    ]
    assert spy.names == ["record_starts", "record_finishes"]
    stored = await history.list_runs(limit=100)
    assert sorted((r.job_id, r.status) for r in stored) == sorted(
        (f"job-{n}", "completed") for n in range(50)
    )


async def test_a3_identical_concurrent_starts_get_a_row_each(history: PostgresHistory) -> None:
    runs = await asyncio.gather(*(history.record_start(start("same")) for _ in range(5)))

    assert len({run.id for run in runs}) == 5
    assert len(await history.list_runs(job_id="same")) == 5


async def test_a3_a_row_postgres_refuses_fails_only_its_own_caller(
    history: PostgresHistory,
) -> None:
    """A NUL in one message, a finish before its start, an unknown id: three errors, the
    other callers' rows are written."""
    runs = await asyncio.gather(*(history.record_start(start(f"j{n}")) for n in range(6)))
    later = T0 + timedelta(seconds=1)
    finishes = [RunFinish(status="completed", finished_at=later) for _ in range(6)]
    finishes[1] = RunFinish(status="failed", finished_at=later, error_message="a\x00b")
    finishes[3] = RunFinish(status="completed", finished_at=T0 - timedelta(seconds=1))
    ids = [run.id for run in runs]
    ids[5] = "987654321"

    results = await asyncio.gather(
        *(history.record_finish(i, f) for i, f in zip(ids, finishes, strict=True)),
        return_exceptions=True,
    )

    failed = [n for n, result in enumerate(results) if isinstance(result, Exception)]
    assert failed == [1, 3, 5]
    assert isinstance(results[5], ValidationError)
    assert "987654321" in str(results[5])
    statuses = {run.job_id: run.status for run in await history.list_runs()}
    assert statuses == {
        "j0": "completed",
        "j1": "running",
        "j2": "completed",
        "j3": "running",
        "j4": "completed",
        "j5": "running",
    }


async def test_a3_two_finishes_of_one_run_apply_in_order(history: PostgresHistory) -> None:
    run = await history.record_start(start("twice"))
    first = RunFinish(status="retrying", finished_at=T0 + timedelta(seconds=1))
    second = RunFinish(status="failed", finished_at=T0 + timedelta(seconds=2))

    await asyncio.gather(
        history.record_finish(run.id, first), history.record_finish(run.id, second)
    )

    stored = await history.get_run(run.id)
    assert stored is not None
    assert stored.status == "failed"
    assert stored.finished_at == T0 + timedelta(seconds=2)


async def test_a3_close_finishes_the_writes_under_way(postgres_dsn: str) -> None:
    history = PostgresHistory(postgres_dsn)

    *runs, _ = await asyncio.gather(
        *(history.record_start(start(f"c{n}")) for n in range(10)), history.close()
    )

    assert len({run.id for run in runs if run is not None}) == 10
    reader = PostgresHistory(postgres_dsn)
    try:
        assert len(await reader.list_runs()) == 10
    finally:
        await reader.close()


async def test_a3_a4_results_and_dead_letter_data_with_nul_are_kept_escaped(
    history: PostgresHistory,
) -> None:
    """jsonb cannot hold NUL, yet a handler's result or a foreign producer's job data may
    carry one: the row is still written, each NUL spelled out as the text \\x00."""
    run = await history.record_start(start("nul-result"))
    finished = await history.record_finish(
        run.id,
        RunFinish(status="completed", finished_at=T0, result={"text": "a\x00b", "k\x00": [1]}),
    )
    assert finished.status == "completed"
    assert finished.result == {"text": "a\\x00b", "k\\x00": [1]}

    letter = dead("nul-data", T0).model_copy(update={"data": {"raw": "x\x00y"}})
    stored = await history.add_failure(letter)
    assert stored.data == {"raw": "x\\x00y"}
    assert (await history.get_failure(stored.id)) == stored


async def test_a3_a_terminated_session_surfaces_as_backend_unavailable(
    history: PostgresHistory, postgres_dsn: str
) -> None:
    """A terminated backend is a transient outage (the runtime retries the attempt), not an
    asyncpg internal error."""
    await history.record_start(start("before"))
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    outcomes = await asyncio.gather(
        *(history.list_runs(job_id="before") for _ in range(3)), return_exceptions=True
    )
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            assert isinstance(outcome, BackendUnavailableError), repr(outcome)
            assert outcome.fix


async def test_a3_an_unreachable_server_surfaces_as_backend_unavailable(
    unused_tcp_port: int,
) -> None:
    history = PostgresHistory(f"postgresql://nobody@127.0.0.1:{unused_tcp_port}/none")
    try:
        with pytest.raises(BackendUnavailableError) as info:
            await history.record_start(start("nowhere"))
        assert info.value.__cause__ is not None
    finally:
        await history.close()
