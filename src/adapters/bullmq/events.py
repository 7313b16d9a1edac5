"""Queue events from BullMQ's events stream (``<prefix>:<queue>:events``) via XREAD.

The stream position is fixed when ``events()`` is called: a task reads the stream's last
entry id right away, and the adapter makes its own next commands wait for that read, so
everything the adapter (or its workers) does after the call is seen and nothing before it.
If that read fails the position falls back to the clock at the call (millisecond
resolution; Redis stream ids use the server's clock). Events carry what the stream entry
has; names and failure classifications that BullMQ does not put in its entries are read
from the job hash, one pipelined round trip per batch, and attempt numbers are
reconstructed from the order of the entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from portside.adapters.bullmq.jobs import KIND_FIELD
from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.transport.blocking import BlockingConnection
from portside.adapters.bullmq.transport.errors import CONNECTION_ERRORS, refusal, refused
from portside.adapters.bullmq.transport.scripts import execute
from portside.adapters.bullmq.transport.tls import is_tls_url
from portside.adapters.reconnect import reconnect_delay
from portside.ports import FailureKind, QueueEvent, QueueEventKind

__all__ = ["BullMQEventStream", "resolve_attempts", "start_id"]

log = logging.getLogger("portside.adapters.bullmq")

_KINDS: dict[str, QueueEventKind] = {
    "added": "enqueued",
    "active": "active",
    "progress": "progress",
    "completed": "completed",
    "retrying": "retrying",
    "failed": "failed",
    "stalled": "stalled",
}
_LOOKUP = ("active", "progress", "completed", "failed", "stalled")
_HASH_FIELDS = ("name", "atm", KIND_FIELD)


def start_id(server_ms: int) -> str:
    """The XREAD id that yields every entry from millisecond ``server_ms`` on."""
    return f"{server_ms - 1}-18446744073709551615"


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _forward_attempts(
    entries: list[tuple[str, dict[str, str]]], attempts_made: dict[str, int | None]
) -> list[int | None]:
    """What the entries themselves tell: a ``retrying`` entry names its attempt, the next
    ``active`` starts the following one, a ``stalled`` restart keeps the number."""
    result: list[int | None] = [None] * len(entries)
    upcoming: dict[str, int] = {}
    running: dict[str, int] = {}
    for index, (_, fields) in enumerate(entries):
        job_id = fields.get("jobId") or ""
        event = fields.get("event")
        attempt: int | None = None
        if event == "retrying":
            attempt = _int(fields.get("attemptsMade"))
            if attempt is not None:
                upcoming[job_id] = attempt + 1
                running[job_id] = attempt
        elif event == "active":
            attempt = upcoming.pop(job_id, None)
            if attempt is None:
                running.pop(job_id, None)
            else:
                running[job_id] = attempt
        elif event == "stalled":
            attempt = running.get(job_id)
            if attempt is not None:
                upcoming[job_id] = attempt
        elif event == "progress":
            attempt = running.get(job_id)
        elif event in ("completed", "failed"):
            made = attempts_made.get(job_id)
            attempt = made if made is not None else running.get(job_id)
        result[index] = attempt
    return result


def resolve_attempts(
    entries: list[tuple[str, dict[str, str]]], attempts_made: dict[str, int | None]
) -> list[int | None]:
    """The attempt number each event belongs to.

    BullMQ's entries do not say which attempt they are about, and a job's hash only tells
    where the job is *now*. A forward pass uses what the entries say (portside's
    ``retrying`` entries name their attempt); a backward pass fills the rest from what
    follows them (a terminal entry has the final count; each ``active`` begins the attempt
    after the one before, while a ``stalled`` restart keeps the number); entries with
    nothing after them fall back to the hash (``atm + 1``).
    """
    result = _forward_attempts(entries, attempts_made)
    following: dict[str, int] = {}
    restart: dict[str, bool] = {}
    for index in range(len(entries) - 1, -1, -1):
        fields = entries[index][1]
        job_id = fields.get("jobId")
        event = fields.get("event")
        if not job_id or event not in _KINDS or event == "added":
            continue
        attempt = result[index]
        if attempt is None:
            if event in ("completed", "failed"):
                attempt = following.get(job_id)
            else:
                attempt = following.get(job_id)
                if attempt is None:
                    attempt = (attempts_made.get(job_id) or 0) + 1
                elif restart.get(job_id) and event != "stalled":
                    attempt = max(1, attempt - 1)
        if attempt is None:
            continue
        result[index] = attempt
        following[job_id] = attempt
        restart[job_id] = event == "active"
    return result


def _json(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _kind(raw: str | None) -> FailureKind | None:
    if raw == "permanent":
        return "permanent"
    if raw == "transient":
        return "transient"
    return None


class BullMQEventStream:
    """An ``EventStream`` over one queue's BullMQ events (its own Redis connection)."""

    def __init__(
        self,
        queue: QueueName,
        connection: BlockingConnection,
        last_id: str,
        *,
        block: float,
        retry_backoff: float,
        max_backoff: float,
        safe_url: str = "",
    ) -> None:
        self._queue = queue
        self._safe_url = safe_url
        self._answered = False
        self._key = queue.key("events")
        self._conn = connection
        self._last_id = last_id
        self._block_ms = round(block * 1000)
        self._retry_backoff = retry_backoff
        self._max_backoff = max_backoff
        self._buffer: deque[QueueEvent] = deque()
        self._closed = False
        self._position: asyncio.Future[None] | None = None

    def fix_position(self, client: Redis) -> asyncio.Task[None]:
        """Start reading the stream's current end; the stream begins after it."""

        async def read_end() -> None:
            entries = await execute(client, "XREVRANGE", self._key, "+", "-", "COUNT", 1)
            self._last_id = entries[0][0] if entries else "0-0"

        task = asyncio.get_running_loop().create_task(read_end())
        self._position = task
        return task

    def __aiter__(self) -> AsyncIterator[QueueEvent]:
        return self

    async def __anext__(self) -> QueueEvent:
        if self._position is not None:
            position, self._position = self._position, None
            with contextlib.suppress(*CONNECTION_ERRORS):
                await position
        failures = 0
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            try:
                await self._read()
                failures = 0
                self._answered = True
            except CONNECTION_ERRORS as exc:
                if self._closed:
                    raise StopAsyncIteration from None
                reason = refusal(exc, tls=not self._answered and is_tls_url(self._safe_url))
                if reason is not None:
                    raise refused(reason, self._safe_url, "reading events") from exc
                log.debug("event stream of %s lost its connection: %s", self._queue.portside, exc)
                await asyncio.sleep(
                    reconnect_delay(failures, self._retry_backoff, self._max_backoff)
                )
                failures += 1
        return self._buffer.popleft()

    async def aclose(self) -> None:
        """Stop reading and close the connection."""
        self._closed = True
        await self._conn.close()

    async def _read(self) -> None:
        reply = await self._conn.call(
            "XREAD",
            "COUNT",
            500,
            "BLOCK",
            self._block_ms,
            "STREAMS",
            self._key,
            self._last_id,
            reply_timeout=self._block_ms / 1000 + 5.0,
        )
        if not reply:
            return
        entries: list[tuple[str, dict[str, str]]] = []
        for _stream, items in reply:
            for entry_id, flat in items:
                entries.append((entry_id, dict(zip(flat[::2], flat[1::2], strict=True))))
        if not entries:
            return
        lookups = sorted(
            {
                fields["jobId"]
                for _, fields in entries
                if fields.get("event") in _LOOKUP and fields.get("jobId")
            }
        )
        details = await self._details(lookups) if lookups else {}
        made = {job_id: _int(values[1]) for job_id, values in details.items()}
        attempts = resolve_attempts(entries, made)
        for (entry_id, fields), attempt in zip(entries, attempts, strict=True):
            self._last_id = entry_id
            event = self._event(entry_id, fields, details, attempt)
            if event is not None:
                self._buffer.append(event)

    async def _details(self, job_ids: list[str]) -> dict[str, list[str | None]]:
        async def step(conn: AbstractConnection) -> list[Any]:
            for job_id in job_ids:
                await conn.send_command(
                    "HMGET", self._queue.job_key(job_id), *_HASH_FIELDS, check_health=False
                )
            return [await conn.read_response() for _ in job_ids]

        replies = await self._conn.run(step)
        return dict(zip(job_ids, replies, strict=True))

    def _event(
        self,
        entry_id: str,
        fields: dict[str, str],
        details: dict[str, list[str | None]],
        attempt: int | None,
    ) -> QueueEvent | None:
        kind = _KINDS.get(fields.get("event", ""))
        job_id = fields.get("jobId")
        if kind is None or not job_id:
            return None
        name, _, stored_kind = details.get(job_id) or (None, None, None)
        base: dict[str, Any] = {
            "kind": kind,
            "queue": self._queue.portside,
            "job_id": job_id,
            "timestamp": int(entry_id.split("-", 1)[0]) / 1000,
            "name": fields.get("name") or name,
        }
        if kind == "enqueued":
            return QueueEvent(**base)
        base["attempt"] = attempt or 0
        if kind in ("active", "stalled"):
            return QueueEvent(**base)
        if kind == "progress":
            return QueueEvent(**base, progress=_json(fields.get("data")))
        if kind == "completed":
            return QueueEvent(**base, result=_json(fields.get("returnvalue")))
        if kind == "retrying":
            return QueueEvent(
                **base,
                error=fields.get("failedReason") or None,
                failure_kind=_kind(fields.get("kind")) or "transient",
            )
        return QueueEvent(
            **base, error=fields.get("failedReason") or None, failure_kind=_kind(stored_kind)
        )
