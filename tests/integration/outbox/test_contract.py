"""The shared outbox contract suite against the Postgres adapter (O1, O3, O4, O6)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.ports import OutboxPort
from portside.testing.contracts import OutboxContract
from portside.testing.contracts.postgres_driver import PostgresOutboxDriver

pytestmark = pytest.mark.integration


class TestPostgresOutboxContract(OutboxContract):
    """Every behaviour the in-memory fake shows, on a real database."""

    @pytest.fixture
    async def outbox_driver(
        self, outbox_adapter: OutboxPort, postgres_dsn: str
    ) -> AsyncIterator[PostgresOutboxDriver]:
        assert isinstance(outbox_adapter, PostgresOutbox)
        driver = PostgresOutboxDriver(outbox_adapter, postgres_dsn)
        try:
            yield driver
        finally:
            await driver.aclose()
