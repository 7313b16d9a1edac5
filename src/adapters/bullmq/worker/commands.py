"""Argument layouts of the BullMQ Lua commands a worker runs, precomputed per queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]

from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.transport.scripts import LuaScript, script

__all__ = ["WORKER_SCRIPTS", "QueueCommands"]

WORKER_SCRIPTS = (
    "moveToActive",
    "moveToFinished",
    "moveToDelayed",
    "retryJob",
    "moveJobFromActiveToWait",
    "extendLocks",
    "moveStalledJobsToWait",
    "updateProgress",
    "addLog",
    "lockedBy",
)


def _pack(value: Any) -> bytes:
    """MessagePack ``value``; text read with bytes that are not UTF-8 (job ids, fields) is
    packed as those bytes again, any other lone surrogate as ``?``."""
    try:
        packed: bytes = msgpack.packb(value, use_bin_type=True)
    except UnicodeEncodeError:
        try:
            packed = msgpack.packb(value, use_bin_type=True, unicode_errors="surrogateescape")
        except UnicodeEncodeError:
            packed = msgpack.packb(value, use_bin_type=True, unicode_errors="replace")
    return packed


def _flat(fields: dict[str, str]) -> bytes:
    flat: list[str] = []
    for key, value in fields.items():
        flat.append(key)
        flat.append(value)
    return _pack(flat)


class QueueCommands:
    """Builds ready-to-send ``EVALSHA`` tuples for one queue.

    Key lists follow the Lua headers of the ``bullmq`` package's commands, which are the
    same scripts Node BullMQ 5 runs.
    """

    def __init__(
        self,
        queue: QueueName,
        *,
        lock_duration_ms: int,
        worker_name: str,
        keep_completed: dict[str, Any] | None = None,
        keep_failed: dict[str, Any] | None = None,
    ) -> None:
        self.queue = queue
        self.base = queue.base
        self.lock_duration_ms = lock_duration_ms
        self.worker_name = worker_name
        self.keep_completed: dict[str, Any] = keep_completed or {"count": -1}
        """BullMQ ``keepJobs`` for completed jobs that set no retention of their own."""
        self.keep_failed: dict[str, Any] = keep_failed or {"count": -1}
        """The same for failed jobs."""
        k = queue.key
        self._active = script("moveToActive")
        self._finished = script("moveToFinished")
        self._delayed = script("moveToDelayed")
        self._retry = script("retryJob")
        self._release = script("moveJobFromActiveToWait")
        self._extend = script("extendLocks")
        self._stalled = script("moveStalledJobsToWait")
        self._progress = script("updateProgress")
        self._add_log = script("addLog")
        self._locked_by = script("lockedBy")
        self.active = k("active")
        common = ("wait", "active", "prioritized", "events", "stalled", "limiter", "delayed")
        self._active_keys = tuple(k(x) for x in (*common, "paused", "meta", "pc", "marker"))
        head = tuple(k(x) for x in (*common, "paused", "meta", "pc"))
        self._completed_keys = (*head, k("completed"))
        self._failed_keys = (*head, k("failed"))
        self._metrics = {"completed": k("metrics:completed"), "failed": k("metrics:failed")}
        self.marker = k("marker")
        self.events = k("events")
        self.meta = k("meta")
        self.limiter = k("limiter")
        self.stalled = k("stalled")
        self._delay_keys = (k("marker"), k("active"), k("prioritized"), k("delayed"))
        self._delay_tail = (
            k("events"),
            k("meta"),
            k("stalled"),
            k("wait"),
            k("limiter"),
            k("pc"),
        )
        self._retry_head = (k("active"), k("wait"), k("paused"))
        self._retry_tail = (
            k("meta"),
            k("events"),
            k("delayed"),
            k("prioritized"),
            k("pc"),
            k("marker"),
            k("stalled"),
        )
        self._release_keys = tuple(
            k(x)
            for x in (
                "active",
                "wait",
                "stalled",
                "paused",
                "meta",
                "limiter",
                "prioritized",
                "marker",
                "events",
            )
        )
        self._stalled_keys = tuple(
            k(x)
            for x in (
                "stalled",
                "wait",
                "active",
                "stalled-check",
                "meta",
                "paused",
                "marker",
                "events",
                "repeat",
            )
        )

    @property
    def scripts(self) -> tuple[LuaScript, ...]:
        """Every Lua command a worker may send."""
        return tuple(script(name) for name in WORKER_SCRIPTS)

    def fetch_opts(self, token: str, limiter: dict[str, int] | None) -> bytes:
        """Packed ``opts`` for fetching a job under ``token``."""
        opts: dict[str, Any] = {"token": token, "lockDuration": self.lock_duration_ms}
        opts["limiter"] = limiter
        opts["name"] = self.worker_name
        return _pack(opts)

    def move_to_active(self, now_ms: int, fetch_opts: bytes) -> tuple[Any, ...]:
        """Fetch the next job (promoting due delayed jobs, honouring the rate limit)."""
        return self._active.command(self._active_keys, (self.base, now_ms, fetch_opts))

    def move_to_finished(
        self,
        job_id: str,
        now_ms: int,
        *,
        completed: bool,
        value: str,
        fetch_next: bool,
        opts: dict[str, Any],
        fields: dict[str, str] | None = None,
    ) -> tuple[Any, ...]:
        """Complete or fail a job, optionally fetching the next one in the same script."""
        target = "completed" if completed else "failed"
        keys = (
            *(self._completed_keys if completed else self._failed_keys),
            self.base + job_id,
            self._metrics[target],
            self.marker,
        )
        args: list[Any] = [
            job_id,
            now_ms,
            "returnvalue" if completed else "failedReason",
            value,
            target,
            "1" if fetch_next else "",
            self.base,
            _pack(opts),
        ]
        if fields:
            args.append(_flat(fields))
        return self._finished.command(keys, args)

    def move_to_delayed(
        self,
        job_id: str,
        now_ms: int,
        delay_ms: int,
        token: str,
        *,
        fields: dict[str, str],
        fetch_opts: bytes | None,
    ) -> tuple[Any, ...]:
        """Put a failed attempt back in the delayed set (a retry with backoff)."""
        keys = (*self._delay_keys, self.base + job_id, *self._delay_tail)
        args = (
            self.base,
            now_ms,
            job_id,
            token,
            delay_ms,
            "0",
            _flat(fields),
            "1" if fetch_opts is not None else "0",
            fetch_opts if fetch_opts is not None else "",
        )
        return self._delayed.command(keys, args)

    def retry_job(
        self, job_id: str, now_ms: int, token: str, fields: dict[str, str]
    ) -> tuple[Any, ...]:
        """Put a failed attempt straight back in the wait list (a retry without backoff)."""
        keys = (*self._retry_head, self.base + job_id, *self._retry_tail)
        args = (self.base, now_ms, "LPUSH", job_id, token, _flat(fields))
        return self._retry.command(keys, args)

    def release(self, job_id: str, token: str) -> tuple[Any, ...]:
        """Return an unfinished active job to the wait list without using an attempt."""
        return self._release.command(self._release_keys, (job_id, token, self.base + job_id))

    def locked_by(self, tokens: Sequence[str]) -> tuple[Any, ...]:
        """Find the active jobs locked with any of ``tokens`` (portside's ``lockedBy``)."""
        return self._locked_by.command((self.active,), (self.base, *tokens))

    def extend_locks(self, job_ids: Sequence[str], tokens: Sequence[str]) -> tuple[Any, ...]:
        """Renew the locks of the given active jobs."""
        args = (self.base, _pack(list(tokens)), _pack(list(job_ids)), self.lock_duration_ms)
        return self._extend.command((self.stalled,), args)

    def move_stalled(self, max_stalled: int, now_ms: int, interval_ms: int) -> tuple[Any, ...]:
        """Requeue active jobs whose lock expired; mark the others for the next check."""
        args = (max_stalled, self.base, now_ms, interval_ms)
        return self._stalled.command(self._stalled_keys, args)

    def update_progress(self, job_id: str, progress: Any) -> tuple[Any, ...]:
        """Store progress on a job and emit a ``progress`` event."""
        keys = (self.base + job_id, self.events, self.meta)
        encoded = json.dumps(progress, separators=(",", ":"), allow_nan=False)
        return self._progress.command(keys, (job_id, encoded))

    def add_log(self, job_id: str, line: str, keep_logs: int | None) -> tuple[Any, ...]:
        """Append a line to a job's logs, keeping the newest ``keep_logs`` (BullMQ ``addLog``)."""
        job_key = self.base + job_id
        keep = "" if keep_logs is None else keep_logs
        return self._add_log.command((job_key, job_key + ":logs"), (job_id, line, keep))

    def emit(self, max_events: int, event: str, fields: dict[str, str]) -> tuple[Any, ...]:
        """``XADD`` a portside event to the queue's events stream (capped like BullMQ's)."""
        flat: list[str] = []
        for key, value in fields.items():
            flat.append(key)
            flat.append(value)
        return ("XADD", self.events, "MAXLEN", "~", max_events, "*", "event", event, *flat)
