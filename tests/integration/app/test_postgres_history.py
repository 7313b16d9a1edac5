"""A3, A4: PostgresHistory passes the history contract on a real database."""

from __future__ import annotations

import pytest

from portside.adapters.postgres.history import PostgresHistory
from tests.unit.app.history_contract import check_dead_letters, check_runs_round_trip

pytestmark = pytest.mark.integration


async def test_a3_postgres_history_records_and_lists_runs(postgres_dsn: str) -> None:
    history = PostgresHistory(postgres_dsn)
    try:
        await check_runs_round_trip(history)
    finally:
        await history.close()


async def test_a4_postgres_history_stores_retries_and_purges_dead_letters(
    postgres_dsn: str,
) -> None:
    history = PostgresHistory(postgres_dsn)
    try:
        await check_dead_letters(history)
    finally:
        await history.close()
