"""Where the example jobs write: the store interface and its Postgres implementation.

The jobs reach Postgres on ports only: ``SqlExampleStore`` runs its SQL on the connection that
``get_infra().outbox.transaction()`` yields (an asyncpg connection for the Postgres outbox),
so a job's writes and any outbox events it appends commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from portside.examples.ingestion.sources import (
    HousingObservation,
    RetailPlan,
    SourceRecord,
    WholesalePrice,
)
from portside.infra import get_infra
from portside.ports import ConfigurationError
from portside.sqlfiles import SqlFile

__all__ = ["DailyAggregate", "ExampleStore", "SqlExampleStore"]


class DailyAggregate(BaseModel):
    """An organisation's totals for a day, and whether this call changed them."""

    model_config = ConfigDict(frozen=True)

    records: int
    total: Decimal
    changed: bool


class ExampleStore(Protocol):
    """Idempotent writes: each method returns how many rows it inserted, changed or deleted."""

    async def upsert_records(
        self, organization_id: str, integration_id: str, day: date, records: Sequence[SourceRecord]
    ) -> int:
        """Make the stored records of that integration and day equal to ``records``."""
        ...

    async def aggregate_day(self, organization_id: str, day: date) -> DailyAggregate:
        """Recompute the organisation's totals for ``day`` from its stored records."""
        ...

    async def upsert_wholesale(self, rows: Sequence[WholesalePrice]) -> int:
        """Store 5-minute wholesale prices."""
        ...

    async def upsert_retail_plans(self, rows: Sequence[RetailPlan]) -> int:
        """Store retail plans."""
        ...

    async def upsert_housing(self, rows: Sequence[HousingObservation]) -> int:
        """Store housing series values."""
        ...


_sql = SqlFile("portside.examples.ingestion", "sql", "ingestion.sql")


class SqlExampleStore:
    """``ExampleStore`` on Postgres through the outbox's unit of work (see the module doc)."""

    async def _changes(self, name: str, *args: Any) -> int:
        async with get_infra().outbox.transaction() as tx:
            return len(await self._fetch(tx, name, *args))

    @staticmethod
    async def _fetch(tx: Any, name: str, *args: Any) -> list[Any]:
        if not callable(getattr(tx, "fetch", None)):
            raise ConfigurationError(
                f"the example jobs need SQL, but the outbox's transaction() yields a "
                f"{type(tx).__name__}",
                fix="run them on the Postgres outbox (PORTSIDE_POSTGRES_DSN), or build the "
                "registry with build_registry(store=InMemoryExampleStore()) in unit tests",
            )
        return list(await tx.fetch(_sql(name), *args))

    async def upsert_records(
        self, organization_id: str, integration_id: str, day: date, records: Sequence[SourceRecord]
    ) -> int:
        """Upsert the day's records and delete the ones the source no longer has."""
        ids = [record.record_id for record in records]
        async with get_infra().outbox.transaction() as tx:
            changed = await self._fetch(
                tx,
                "upsert_records",
                organization_id,
                integration_id,
                day,
                ids,
                [record.category for record in records],
                [record.amount for record in records],
            )
            deleted = await self._fetch(
                tx, "delete_missing_records", organization_id, integration_id, day, ids
            )
        return len(changed) + len(deleted)

    async def aggregate_day(self, organization_id: str, day: date) -> DailyAggregate:
        """Recompute and read the day's totals in one transaction."""
        async with get_infra().outbox.transaction() as tx:
            changed = await self._fetch(tx, "upsert_aggregate", organization_id, day)
            (row,) = await self._fetch(tx, "get_aggregate", organization_id, day)
        return DailyAggregate(records=row["records"], total=row["total"], changed=bool(changed))

    async def upsert_wholesale(self, rows: Sequence[WholesalePrice]) -> int:
        """Upsert prices by (region, interval)."""
        return await self._changes(
            "upsert_wholesale",
            [row.region for row in rows],
            [row.interval_start for row in rows],
            [row.price_mwh for row in rows],
            [row.demand_mw for row in rows],
        )

    async def upsert_retail_plans(self, rows: Sequence[RetailPlan]) -> int:
        """Upsert plans by plan id."""
        return await self._changes(
            "upsert_retail_plans",
            [row.plan_id for row in rows],
            [row.brand for row in rows],
            [row.fuel_type for row in rows],
            [row.effective_from for row in rows],
            [row.daily_supply_cents for row in rows],
            [row.usage_cents_kwh for row in rows],
        )

    async def upsert_housing(self, rows: Sequence[HousingObservation]) -> int:
        """Upsert values by (series, period)."""
        return await self._changes(
            "upsert_housing",
            [row.series_id for row in rows],
            [row.period for row in rows],
            [row.value for row in rows],
        )
