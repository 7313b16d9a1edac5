"""Jobs read from BullMQ hashes: the handler's ``Job`` and ``get_job``'s ``JobInfo``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from portside.adapters.bullmq.options import PORTSIDE_KEY
from portside.ports import FailureKind, JobInfo, JobState

__all__ = [
    "KIND_FIELD",
    "BullJob",
    "JobSettings",
    "job_info",
    "keep_jobs",
    "settings_for",
]

KIND_FIELD = "pskind"
"""Job hash field where portside records the failure classification (Node ignores it)."""

_STATES: dict[str, JobState] = {
    "waiting": "waiting",
    "wait": "waiting",
    "prioritized": "waiting",
    "waiting-children": "waiting",
    "paused": "paused",
    "active": "active",
    "delayed": "delayed",
    "completed": "completed",
    "failed": "failed",
}


def keep_jobs(value: Any) -> dict[str, Any]:
    """BullMQ's ``keepJobs`` for a ``removeOnComplete``/``removeOnFail`` option."""
    if isinstance(value, bool):
        return {"count": 0} if value else {"count": -1}
    if isinstance(value, int):
        return {"count": value}
    if isinstance(value, dict):
        return value
    return {"count": -1}


@dataclass(frozen=True, slots=True)
class JobSettings:
    """What a worker needs from a job's stored ``opts``; shared by jobs with equal opts."""

    opts: dict[str, Any]
    attempts: int
    backoff: Any
    keep_completed: dict[str, Any]
    keep_failed: dict[str, Any]
    timeout: float | None


_cache: dict[str, JobSettings] = {}


def settings_for(raw_opts: str | None) -> JobSettings:
    """Parse (or reuse) the settings of a job's ``opts`` JSON."""
    key = raw_opts or "{}"
    found = _cache.get(key)
    if found is not None:
        return found
    try:
        opts = json.loads(key)
    except ValueError:
        opts = {}
    if not isinstance(opts, dict):
        opts = {}
    own = opts.get(PORTSIDE_KEY)
    timeout = own.get("timeout") if isinstance(own, dict) else None
    attempts = opts.get("attempts")
    settings = JobSettings(
        opts=opts,
        attempts=attempts if isinstance(attempts, int) and attempts > 0 else 1,
        backoff=opts.get("backoff"),
        keep_completed=keep_jobs(opts.get("removeOnComplete")),
        keep_failed=keep_jobs(opts.get("removeOnFail")),
        timeout=float(timeout) / 1000 if isinstance(timeout, int | float) and timeout else None,
    )
    if len(_cache) > 512:
        _cache.clear()
    _cache[key] = settings
    return settings


class BullJob:
    """A fetched job as the handler sees it (``portside.ports.Job``)."""

    __slots__ = (
        "_progress",
        "attempt",
        "data",
        "fields",
        "id",
        "max_attempts",
        "name",
        "queue",
        "settings",
        "token",
    )

    def __init__(
        self,
        job_id: str,
        fields: dict[str, str],
        queue: str,
        token: str,
        progress: Callable[[str, Any], Awaitable[None]],
    ) -> None:
        self.id = job_id
        self.fields = fields
        self.queue = queue
        self.token = token
        self.name = fields.get("name", "")
        self.settings = settings_for(fields.get("opts"))
        self.attempt = int(fields.get("atm") or 0) + 1
        self.max_attempts = self.settings.attempts
        self.data: Any = None
        self._progress = progress

    async def update_progress(self, progress: int | float | dict[str, Any]) -> None:
        """Store progress on the job and emit a ``progress`` event."""
        await self._progress(self.id, progress)

    def __repr__(self) -> str:
        return f"BullJob(queue={self.queue!r}, id={self.id!r}, name={self.name!r})"


def _json(raw: str | None, default: Any) -> Any:
    if raw is None or raw == "":
        return default
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python can parse
        return raw


def _seconds(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        return int(raw) / 1000
    except ValueError:
        return None


def job_info(
    queue: str, job_id: str, fields: dict[str, str], state: str, queue_paused: bool
) -> JobInfo:
    """A ``JobInfo`` from a job hash and its BullMQ state."""
    mapped = _STATES.get(state, "unknown")
    if mapped == "waiting" and queue_paused:
        mapped = "paused"
    data = _json(fields.get("data"), {})
    reason = fields.get("failedReason") or None
    kind = fields.get(KIND_FIELD)
    failure_kind: FailureKind | None = None
    if reason is not None and kind in ("transient", "permanent"):
        failure_kind = "permanent" if kind == "permanent" else "transient"
    settings = settings_for(fields.get("opts"))
    return JobInfo(
        queue=queue,
        id=job_id,
        name=fields.get("name", ""),
        data=data if isinstance(data, dict) else {"value": data},
        state=mapped,
        attempts_made=int(fields.get("atm") or fields.get("attemptsMade") or 0),
        max_attempts=settings.attempts,
        progress=_json(fields.get("progress"), 0),
        result=_json(fields.get("returnvalue"), None),
        failed_reason=reason,
        failure_kind=failure_kind,
        priority=int(fields.get("priority") or 0),
        delay=(_seconds(fields.get("delay")) or 0.0),
        created_at=_seconds(fields.get("timestamp")) or 0.0,
        processed_at=_seconds(fields.get("processedOn")),
        finished_at=_seconds(fields.get("finishedOn")),
    )
