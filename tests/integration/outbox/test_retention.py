"""Retention of published events and the pending / lag metrics (O6)."""

from __future__ import annotations

import asyncpg
import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.ports import ValidationError

from .support import append_many

pytestmark = pytest.mark.integration


async def test_o6_purge_deletes_only_published_events_in_batches(
    postgres_dsn: str, db: asyncpg.Connection
) -> None:
    """O6: purge_published removes published events older than the age, batch by batch."""
    outbox = PostgresOutbox(postgres_dsn, purge_batch=3)
    try:
        await append_many(outbox, "old", 7)
        assert await outbox.drain_once() == 7
        await append_many(outbox, "old", 2)  # unpublished: must survive
        assert await outbox.purge_published(3600) == 0  # none is an hour old
        assert await outbox.purge_published(0) == 7
        remaining = await db.fetch("SELECT seq FROM portside_outbox_events ORDER BY seq")
        assert [row["seq"] for row in remaining] == [8, 9]
        # The counter survives, so seq keeps going without reuse.
        await append_many(outbox, "old", 1)
        assert await db.fetchval("SELECT max(seq) FROM portside_outbox_events") == 10
    finally:
        await outbox.close()


async def test_o6_pending_and_lag_report_the_backlog(outbox: PostgresOutbox) -> None:
    """Metrics: pending counts unpublished events; lag is the oldest one's age."""
    assert await outbox.pending() == 0
    assert await outbox.lag() == 0.0
    await append_many(outbox, "run", 3)
    assert await outbox.pending() == 3
    assert await outbox.lag() > 0.0
    await outbox.drain_once()
    assert await outbox.pending() == 0
    assert await outbox.lag() == 0.0


@pytest.mark.parametrize("older_than", [-1, float("nan"), float("inf"), "7d", True])
async def test_bad_retention_age_is_rejected(outbox: PostgresOutbox, older_than: object) -> None:
    with pytest.raises(ValidationError) as info:
        await outbox.purge_published(older_than)  # type: ignore[arg-type]
    assert info.value.field == "older_than"
