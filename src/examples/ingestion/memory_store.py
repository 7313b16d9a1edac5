"""``InMemoryExampleStore``: the example jobs' store in dicts, for unit tests and demos."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from portside.examples.ingestion.sources import (
    HousingObservation,
    RetailPlan,
    SourceRecord,
    WholesalePrice,
)
from portside.examples.ingestion.store import DailyAggregate

__all__ = ["InMemoryExampleStore"]


def _upsert(table: dict[Any, Any], key: Hashable, value: Any) -> int:
    if table.get(key) == value:
        return 0
    table[key] = value
    return 1


class InMemoryExampleStore:
    """Same semantics as ``SqlExampleStore``: counts only rows that really changed."""

    def __init__(self) -> None:
        self.records: dict[tuple[Any, ...], Any] = {}
        self.aggregates: dict[Hashable, Any] = {}
        self.wholesale: dict[Hashable, Any] = {}
        self.retail: dict[Hashable, Any] = {}
        self.housing: dict[Hashable, Any] = {}

    async def upsert_records(
        self, organization_id: str, integration_id: str, day: date, records: Sequence[SourceRecord]
    ) -> int:
        """Make the stored records of that integration and day equal to ``records``."""
        scope = (organization_id, integration_id, day)
        wanted = {(*scope, record.record_id): record for record in records}
        stale = [key for key in self.records if key[:3] == scope and key not in wanted]
        for key in stale:
            del self.records[key]
        changes = sum(_upsert(self.records, key, record) for key, record in wanted.items())
        return changes + len(stale)

    async def aggregate_day(self, organization_id: str, day: date) -> DailyAggregate:
        """Recompute the organisation's totals for ``day``."""
        amounts = [
            record.amount
            for key, record in self.records.items()
            if key[0] == organization_id and key[2] == day
        ]
        value = (len(amounts), sum(amounts, Decimal("0")))
        changed = _upsert(self.aggregates, (organization_id, day), value)
        return DailyAggregate(records=value[0], total=value[1], changed=bool(changed))

    async def upsert_wholesale(self, rows: Sequence[WholesalePrice]) -> int:
        """Store prices by (region, interval)."""
        return sum(_upsert(self.wholesale, (r.region, r.interval_start), r) for r in rows)

    async def upsert_retail_plans(self, rows: Sequence[RetailPlan]) -> int:
        """Store plans by plan id."""
        return sum(_upsert(self.retail, row.plan_id, row) for row in rows)

    async def upsert_housing(self, rows: Sequence[HousingObservation]) -> int:
        """Store values by (series, period)."""
        return sum(_upsert(self.housing, (r.series_id, r.period), r) for r in rows)
