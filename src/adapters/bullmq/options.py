"""Translate portside ``JobOptions`` to BullMQ job options and back.

BullMQ stores options as JSON in the job hash's ``opts`` field (durations in milliseconds).
portside-only settings live under the ``portside`` key, which Node BullMQ ignores.
"""

from __future__ import annotations

from typing import Any

from portside.ports import Backoff, JobOptions, Retention
from portside.ports.queue_types import MAX_TRACE_CONTEXT

__all__ = [
    "PORTSIDE_KEY",
    "SCHEDULE_BACKOFF",
    "from_bullmq_opts",
    "ms",
    "to_bullmq_opts",
]

PORTSIDE_KEY = "portside"
SCHEDULE_BACKOFF = "schedule"
"""BullMQ custom backoff type for explicit delay lists (``opts.backoff.delays`` in ms)."""


def ms(seconds: float) -> int:
    """Seconds to BullMQ's integer milliseconds."""
    return round(seconds * 1000)


def _backoff(backoff: Backoff) -> dict[str, Any]:
    if backoff.kind == "schedule":
        return {"type": SCHEDULE_BACKOFF, "delays": [ms(d) for d in backoff.delays]}
    return {"type": backoff.kind, "delay": ms(backoff.delay)}


def _keep(value: bool | int | Retention) -> bool | int | dict[str, int]:
    if isinstance(value, Retention):
        keep: dict[str, int] = {}
        if value.count is not None:
            keep["count"] = value.count
        if value.age is not None:
            keep["age"] = max(1, round(value.age))  # BullMQ's KeepJobs.age is in seconds
        return keep
    return value


def worker_keep(value: bool | int | Retention) -> bool | int | dict[str, int] | None:
    """A worker's retention for jobs without their own, as a BullMQ option value (None for
    ``False``: keep them all, BullMQ's default)."""
    return None if value is False else _keep(value)


def to_bullmq_opts(options: JobOptions, *, custom_id: bool) -> dict[str, Any]:
    """The BullMQ ``opts`` for a job (short keys, milliseconds).

    Args:
        options: Validated portside options.
        custom_id: Whether the caller chose the job id; BullMQ records it as ``jobId`` then.
    """
    opts: dict[str, Any] = {"attempts": options.attempts, "delay": ms(options.delay)}
    if options.priority:
        opts["priority"] = options.priority
    if options.backoff is not None:
        opts["backoff"] = _backoff(options.backoff)
    if options.remove_on_complete is not False:
        opts["removeOnComplete"] = _keep(options.remove_on_complete)
    if options.remove_on_fail is not False:
        opts["removeOnFail"] = _keep(options.remove_on_fail)
    if options.dedupe_key is not None:
        dedupe: dict[str, Any] = {"id": options.dedupe_key}
        if options.dedupe_ttl is not None:
            dedupe["ttl"] = ms(options.dedupe_ttl)
        opts["de"] = dedupe
    if options.keep_logs is not None:
        opts["kl"] = options.keep_logs  # BullMQ's short name of keepLogs
    if options.timeout is not None:
        opts[PORTSIDE_KEY] = {"timeout": ms(options.timeout)}
    if options.trace_context is not None:
        opts["tm"] = options.trace_context  # BullMQ's telemetry.metadata (bullmq-otel)
    if custom_id and options.job_id is not None:
        opts["jobId"] = options.job_id
    return opts


def _backoff_back(raw: Any) -> Backoff | None:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return Backoff.fixed(raw / 1000)
    if not isinstance(raw, dict):
        return None
    kind = raw.get("type")
    if kind == SCHEDULE_BACKOFF and isinstance(raw.get("delays"), list):
        return Backoff.schedule(*(float(d) / 1000 for d in raw["delays"]))
    if kind in ("fixed", "exponential"):
        return Backoff(kind=kind, delay=float(raw.get("delay") or 0) / 1000)
    return None


def _keep_back(raw: Any) -> bool | int | Retention:
    if isinstance(raw, bool | int):
        return raw
    if isinstance(raw, dict):
        age = raw.get("age")
        return Retention(count=raw.get("count"), age=float(age) if age else None)
    return False


def from_bullmq_opts(opts: dict[str, Any]) -> JobOptions:
    """Best-effort inverse of ``to_bullmq_opts`` (for job scheduler templates)."""
    settings: dict[str, Any] = {}
    if isinstance(opts.get("attempts"), int) and opts["attempts"] >= 1:
        settings["attempts"] = opts["attempts"]
    if opts.get("priority"):
        settings["priority"] = int(opts["priority"])
    backoff = _backoff_back(opts.get("backoff"))
    if backoff is not None:
        settings["backoff"] = backoff
    if "removeOnComplete" in opts:
        settings["remove_on_complete"] = _keep_back(opts["removeOnComplete"])
    if "removeOnFail" in opts:
        settings["remove_on_fail"] = _keep_back(opts["removeOnFail"])
    keep_logs = opts.get("kl")
    if isinstance(keep_logs, int) and not isinstance(keep_logs, bool) and keep_logs >= 1:
        settings["keep_logs"] = keep_logs
    trace_context = opts.get("tm")
    if isinstance(trace_context, str) and 0 < len(trace_context) <= MAX_TRACE_CONTEXT:
        settings["trace_context"] = trace_context
    own = opts.get(PORTSIDE_KEY)
    if isinstance(own, dict) and own.get("timeout"):
        settings["timeout"] = float(own["timeout"]) / 1000
    return JobOptions(**settings)
