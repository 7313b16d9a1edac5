"""A3, A4: the in-memory history store passes the history contract."""

from __future__ import annotations

from portside.adapters.memory.history import InMemoryHistory
from tests.unit.app.history_contract import (
    check_dead_letters,
    check_run_retention,
    check_runs_round_trip,
)


async def test_a3_memory_history_records_and_lists_runs() -> None:
    await check_runs_round_trip(InMemoryHistory())


async def test_a4_memory_history_stores_retries_and_purges_dead_letters() -> None:
    await check_dead_letters(InMemoryHistory())


async def test_a3_memory_history_purges_finished_runs_past_retention() -> None:
    await check_run_retention(InMemoryHistory())
