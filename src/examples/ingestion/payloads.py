"""Payload models of the example jobs (A7)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AggregatePayload", "IngestPayload", "SyncPayload"]

_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_STRICT = ConfigDict(extra="forbid", frozen=True)


class IngestPayload(BaseModel):
    """One organisation's integration, one day; the daily schedule leaves ``date`` out:
    yesterday (UTC)."""

    model_config = _STRICT

    organizationId: str = Field(pattern=_ID)
    integrationId: str = Field(pattern=_ID)
    date: dt.date | None = None


class AggregatePayload(BaseModel):
    """One organisation, one day; the daily schedule leaves ``date`` out: yesterday (UTC)."""

    model_config = _STRICT

    organizationId: str = Field(pattern=_ID)
    date: dt.date | None = None


class SyncPayload(BaseModel):
    """A dataset sync for one day; scheduled runs leave ``date`` out and sync today (UTC)."""

    model_config = _STRICT

    date: dt.date | None = None
