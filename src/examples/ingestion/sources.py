"""The source-client interface of the example jobs and its deterministic fake (no network)."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel, ConfigDict

__all__ = [
    "FakeSourceClient",
    "HousingObservation",
    "RetailPlan",
    "SourceAuthError",
    "SourceClient",
    "SourceError",
    "SourceRecord",
    "SourceUnavailableError",
    "WholesalePrice",
]

REGIONS = ("NSW1", "QLD1", "SA1", "TAS1", "VIC1")
BRANDS = ("aurora", "brightside", "coastal", "dingo", "emu")
SERIES = ("approvals-total", "approvals-houses", "approvals-units", "value-residential")
_FROZEN = ConfigDict(frozen=True)


class SourceError(Exception):
    """A failure reported by a source."""


class SourceUnavailableError(SourceError):
    """Network trouble or a 5xx answer: worth a retry."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status


class SourceAuthError(SourceError):
    """The integration's token is invalid or revoked: no retry can fix it."""


class SourceRecord(BaseModel):
    """One record of an organisation's integration (an invoice line, say)."""

    model_config = _FROZEN

    record_id: str
    category: str
    amount: Decimal


class WholesalePrice(BaseModel):
    """One 5-minute dispatch interval of one region."""

    model_config = _FROZEN

    region: str
    interval_start: datetime
    price_mwh: Decimal
    demand_mw: Decimal


class RetailPlan(BaseModel):
    """One retail energy plan (product reference data)."""

    model_config = _FROZEN

    plan_id: str
    brand: str
    fuel_type: str
    effective_from: date
    daily_supply_cents: Decimal
    usage_cents_kwh: Decimal


class HousingObservation(BaseModel):
    """One monthly value of one housing statistics series."""

    model_config = _FROZEN

    series_id: str
    period: date
    value: Decimal


class SourceClient(Protocol):
    """What the example jobs read from. Raise ``SourceUnavailableError`` for transient trouble
    and ``SourceAuthError`` for a bad token; the job registry classifies both."""

    async def fetch_records(
        self, organization_id: str, integration_id: str, day: date
    ) -> Sequence[SourceRecord]:
        """Records of one integration for one day."""
        ...

    async def fetch_wholesale_prices(self, day: date) -> Sequence[WholesalePrice]:
        """Every region's 5-minute prices of one day."""
        ...

    async def fetch_retail_plans(self, day: date) -> Sequence[RetailPlan]:
        """The plans in force on one day."""
        ...

    async def fetch_housing_series(self, day: date) -> Sequence[HousingObservation]:
        """Each series' last twelve monthly values as published on one day."""
        ...


def _number(*parts: object) -> int:
    text = "|".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _cents(seed: int, low: int, high: int) -> Decimal:
    return Decimal(low * 100 + seed % ((high - low) * 100)) / 100


_FLAKY = re.compile(r"^flaky(\d+)-")


class FakeSourceClient:
    """Deterministic data from a hash of the request, with faults chosen by integration id.

    - ``revoked-*``: ``SourceAuthError`` (permanent) on every call.
    - ``down-*``: ``SourceUnavailableError`` (transient, HTTP 503) on every call.
    - ``flakyN-*`` (e.g. ``flaky2-xero``): 503 on the first N calls for that
      organisation, integration and day in this client, then data.
    - anything else: data.

    ``unavailable`` names datasets (``wholesale``, ``retail``, ``housing``) that answer 503.
    """

    def __init__(self, *, unavailable: Sequence[str] = ()) -> None:
        self.calls: Counter[tuple[str, ...]] = Counter()
        self.unavailable = set(unavailable)

    async def fetch_records(
        self, organization_id: str, integration_id: str, day: date
    ) -> list[SourceRecord]:
        """Records of one integration for one day (3-12 of them)."""
        key = ("records", organization_id, integration_id, day.isoformat())
        self.calls[key] += 1
        if integration_id.startswith("revoked-"):
            raise SourceAuthError(f"invalid token for integration {integration_id!r}")
        if integration_id.startswith("down-"):
            raise SourceUnavailableError(f"source for {integration_id!r} is unreachable")
        flaky = _FLAKY.match(integration_id)
        if flaky and self.calls[key] <= int(flaky.group(1)):
            raise SourceUnavailableError(f"source for {integration_id!r} answered 503")
        count = 3 + _number(*key) % 10
        categories = ("sales", "refunds", "fees")
        return [
            SourceRecord(
                record_id=f"r{index:03d}",
                category=categories[_number(*key, index, "c") % len(categories)],
                amount=_cents(_number(*key, index), 1, 500),
            )
            for index in range(count)
        ]

    def _check(self, dataset: str, day: date) -> None:
        self.calls[(dataset, day.isoformat())] += 1
        if dataset in self.unavailable:
            raise SourceUnavailableError(f"{dataset} source is unreachable")

    async def fetch_wholesale_prices(self, day: date) -> list[WholesalePrice]:
        """288 intervals for each of five regions."""
        self._check("wholesale", day)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return [
            WholesalePrice(
                region=region,
                interval_start=start + timedelta(minutes=5 * slot),
                price_mwh=_cents(_number("price", region, day, slot), -50, 300),
                demand_mw=Decimal(_number("demand", region, day, slot) % 90_000) / 10,
            )
            for region in REGIONS
            for slot in range(288)
        ]

    async def fetch_retail_plans(self, day: date) -> list[RetailPlan]:
        """Four plans per brand; prices change on the first of each month."""
        self._check("retail", day)
        month = day.replace(day=1)
        return [
            RetailPlan(
                plan_id=f"{brand}-{fuel}-{index}",
                brand=brand,
                fuel_type=fuel,
                effective_from=month,
                daily_supply_cents=_cents(_number("supply", brand, fuel, index, month), 60, 140),
                usage_cents_kwh=_cents(_number("usage", brand, fuel, index, month), 18, 45),
            )
            for brand in BRANDS
            for fuel in ("electricity", "gas")
            for index in (1, 2)
        ]

    async def fetch_housing_series(self, day: date) -> list[HousingObservation]:
        """Twelve months per series up to the month before ``day``."""
        self._check("housing", day)
        periods = []
        year, month = day.year, day.month
        for _ in range(12):
            month -= 1
            if month == 0:
                year, month = year - 1, 12
            periods.append(date(year, month, 1))
        return [
            HousingObservation(
                series_id=series,
                period=period,
                value=Decimal(_number("abs", series, period) % 200_000) / 10,
            )
            for series in SERIES
            for period in periods
        ]
