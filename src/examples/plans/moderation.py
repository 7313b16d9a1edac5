"""The ``moderation-review`` queue: review a reported item (10 per worker, 120 s) and store the
decision with an idempotent upsert."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from portside.app import JobContext, JobDefinition, Registry
from portside.examples.plans.db import fetch
from portside.examples.plans.retry import PLAN_RETRY

__all__ = ["BLOCKED_WORDS", "ReviewPayload", "decide", "register_moderation", "review"]

BLOCKED_WORDS = frozenset({"scam", "spam", "phishing"})
_LINK = re.compile(r"https?://", re.IGNORECASE)


class ReviewPayload(BaseModel):
    """A reported item and its text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    itemId: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    text: str = Field(max_length=20_000)
    reports: int = Field(default=1, ge=1)


def decide(payload: ReviewPayload) -> tuple[str, list[str]]:
    """``reject`` for blocked words, ``escalate`` for many links or reports, else ``approve``;
    with the reasons."""
    words = set(re.findall(r"[a-z]+", payload.text.lower()))
    blocked = sorted(words & BLOCKED_WORDS)
    if blocked:
        return "reject", [f"blocked word: {word}" for word in blocked]
    reasons = []
    links = len(_LINK.findall(payload.text))
    if links > 2:
        reasons.append(f"{links} links")
    if payload.reports >= 5:
        reasons.append(f"{payload.reports} reports")
    return ("escalate", reasons) if reasons else ("approve", [])


async def review(payload: ReviewPayload, ctx: JobContext) -> dict[str, Any]:
    """Decide and store the decision (replaying the job stores nothing new)."""
    decision, reasons = decide(payload)
    changed = await fetch("upsert_decision", payload.itemId, decision, reasons)
    ctx.log("moderation.decided", decision=decision)
    return {
        "itemId": payload.itemId,
        "decision": decision,
        "reasons": reasons,
        "changed": bool(changed),
    }


def register_moderation(registry: Registry) -> None:
    """Add ``moderation-review`` to ``registry``."""
    registry.register(
        JobDefinition(
            name="moderation-review",
            queue="moderation-review",
            payload=ReviewPayload,
            handler=review,
            retry=PLAN_RETRY,
            timeout=120,
            concurrency=10,
            business_keys=("itemId",),
            description="Review a reported item and store the moderation decision.",
        )
    )
