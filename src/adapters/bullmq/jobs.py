"""BullMQ jobs as stored in Redis hashes: the handler's ``Job``, ``get_job``'s ``JobInfo``.

Stored text: the worker's connection decodes replies as UTF-8 with ``surrogateescape``, so
bytes that are not UTF-8 (written by some other producer) arrive as lone surrogates instead
of breaking the reply. ``clean_text`` turns such text into valid Unicode (U+FFFD for each bad
byte) before it goes anywhere that must encode it; ``decode_data`` refuses it in a job's
payload.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol

import pydantic

from portside.adapters.bullmq.names import portside_queue
from portside.adapters.bullmq.options import PORTSIDE_KEY, from_bullmq_opts
from portside.ports import FailureKind, JobInfo, JobOptions, JobParent, JobState, ValidationError
from portside.ports.inputs import check_log_line
from portside.ports.queue_types import MAX_TRACE_CONTEXT

__all__ = [
    "KIND_FIELD",
    "RAW_DATA_LIMIT",
    "BullMQJob",
    "JobActions",
    "StoredOptions",
    "children_values",
    "clean_text",
    "decode_data",
    "job_info",
    "keep_jobs",
    "raw_data_text",
    "stored_options",
]

KIND_FIELD = "pskind"
"""Job hash field where portside records the failure classification (Node ignores it)."""

RAW_DATA_LIMIT = 2000
"""Characters of a job's stored data kept in ``raw_data`` (for dead letters and logs)."""

_JSON_KINDS = {
    list: "list",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_FIX = (
    "enqueue the job again with a JSON object as its data (portside and Node BullMQ "
    "producers always store one); the stored text is in the job's raw_data"
)


def clean_text(value: str) -> str:
    """``value`` as valid Unicode: escaped undecodable bytes and lone surrogates become U+FFFD."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    return value


def raw_data_text(raw: str | None) -> str | None:
    """The stored data as clean text, cut to ``RAW_DATA_LIMIT`` characters."""
    if raw is None:
        return None
    return clean_text(raw[:RAW_DATA_LIMIT])


def _invalid_utf8(raw: str) -> str | None:
    """Where ``raw`` (decoded with ``surrogateescape``) held bytes that are not UTF-8."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        stored = raw.encode("utf-8", "surrogateescape")
        try:
            stored.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"byte 0x{stored[exc.start]:02x} at offset {exc.start}"
        return "a lone surrogate"  # pragma: no cover - hiredis only escapes bad bytes
    return None


def decode_data(raw: str | None) -> dict[str, Any] | ValidationError:
    """A job's payload from its stored ``data`` text, or the error explaining why not.

    A missing or empty field is an empty payload, as in BullMQ.
    """
    if not raw:
        return {}
    if not raw.isascii():
        where = _invalid_utf8(raw)
        if where is not None:
            return _problem(f"job data is not valid UTF-8 ({where})")
    try:
        data = json.loads(raw)
    except RecursionError:
        return _problem("job data is nested too deeply to decode")
    except ValueError as exc:
        return _problem(f"job data is not valid JSON ({exc})")
    if type(data) is dict:
        return data
    kind = _JSON_KINDS.get(type(data), type(data).__name__)
    return _problem(f"job data is a JSON {kind}, not an object")


def _problem(message: str) -> ValidationError:
    return ValidationError(message, fix=_FIX, field="data")


_STATES: dict[str, JobState] = {
    "waiting": "waiting",
    "wait": "waiting",
    "prioritized": "waiting",
    "waiting-children": "waiting-children",
    "paused": "paused",
    "active": "active",
    "delayed": "delayed",
    "completed": "completed",
    "failed": "failed",
}


_KEEP_KEYS = ("count", "age", "limit")


def keep_jobs(value: Any) -> dict[str, Any] | None:
    """BullMQ's ``keepJobs`` for a ``removeOnComplete``/``removeOnFail`` option; None when the
    job sets none (the worker's setting applies)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return {"count": 0} if value else {"count": -1}
    if isinstance(value, int):
        return {"count": value}
    if isinstance(value, dict):
        # Only the numbers BullMQ reads: a hostile opts could hold anything else.
        kept = {
            key: value[key]
            for key in _KEEP_KEYS
            if isinstance(value.get(key), int | float) and not isinstance(value[key], bool)
        }
        return kept or {"count": -1}
    return {"count": -1}


def _int(raw: str | None, default: int = 0) -> int:
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class StoredOptions:
    """What a worker needs from a job's stored ``opts``; shared by jobs with equal opts."""

    opts: dict[str, Any]
    attempts: int
    backoff: Any
    keep_completed: dict[str, Any] | None
    keep_failed: dict[str, Any] | None
    timeout: float | None
    keep_logs: int | None = None


_cache: dict[str, StoredOptions] = {}


def stored_options(raw_opts: str | None) -> StoredOptions:
    """Parse (or reuse) what a worker needs from a job's ``opts`` (any text: bad opts are {})."""
    key = raw_opts or "{}"
    found = _cache.get(key)
    if found is not None:
        return found
    try:
        opts = json.loads(clean_text(key))
    except (ValueError, RecursionError):
        opts = {}
    if not isinstance(opts, dict):
        opts = {}
    own = opts.get(PORTSIDE_KEY)
    timeout = own.get("timeout") if isinstance(own, dict) else None
    attempts = opts.get("attempts")
    keep_logs = opts.get("kl")
    stored = StoredOptions(
        opts=opts,
        attempts=attempts if isinstance(attempts, int) and attempts > 0 else 1,
        backoff=opts.get("backoff"),
        keep_completed=keep_jobs(opts.get("removeOnComplete")),
        keep_failed=keep_jobs(opts.get("removeOnFail")),
        timeout=_timeout(timeout),
        keep_logs=keep_logs if type(keep_logs) is int and keep_logs > 0 else None,
    )
    if "tm" in opts:  # trace context: one per job, never shared
        return stored
    if len(_cache) > 512:
        _cache.clear()
    _cache[key] = stored
    return stored


def _timeout(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    try:
        seconds = float(value) / 1000
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


_UNREAD: Any = object()


class JobActions(Protocol):
    """What a fetched job asks of its worker when the handler calls it (``SlotSteps``)."""

    async def progress(self, job_id: str, progress: Any) -> None: ...

    async def log(self, job: BullMQJob, line: str) -> None: ...

    async def children_values(self, job_id: str) -> dict[str, Any]: ...


class BullMQJob:
    """A fetched job as the handler sees it (``portside.ports.Job``).

    ``fields`` is the stored hash as read (bytes that are not UTF-8 appear as lone
    surrogates); use ``text(field)`` for a value that is safe to log or store. ``data`` is
    decoded on first use: when the stored text is not a JSON object, reading it raises
    ``ValidationError`` (field ``data``) and ``raw_data`` keeps the stored text.
    """

    __slots__ = (
        "_actions",
        "_data",
        "attempt",
        "fields",
        "id",
        "max_attempts",
        "name",
        "queue",
        "stored",
        "token",
    )

    def __init__(
        self,
        job_id: str,
        fields: dict[str, str],
        queue: str,
        token: str,
        actions: JobActions,
    ) -> None:
        self.id = job_id
        self.fields = fields
        self.queue = queue
        self.token = token
        name = fields.get("name") or ""
        self.name = name if name.isascii() else clean_text(name)
        self.stored = stored_options(fields.get("opts"))
        made = fields.get("atm")  # absent until an attempt ended
        self.attempt = 1 if made is None else _int(made) + 1
        self.max_attempts = self.stored.attempts
        self._data: dict[str, Any] | ValidationError = _UNREAD
        self._actions = actions

    @property
    def data(self) -> dict[str, Any]:
        """The payload, decoded once.

        Raises:
            ValidationError: the stored data is not a JSON object (field ``data``).
        """
        data = self._decoded()
        if type(data) is dict:
            return data
        assert isinstance(data, ValidationError)
        raise ValidationError(data.message, fix=data.fix, field=data.field)

    @property
    def trace_context(self) -> str | None:
        """The trace context in the job's opts (``tm``: Node BullMQ's ``telemetry.metadata``,
        written by bullmq-otel and by portside's tracing), or None."""
        found = self.stored.opts.get("tm")
        return found if isinstance(found, str) and len(found) <= MAX_TRACE_CONTEXT else None

    @property
    def raw_data(self) -> str | None:
        """The stored data text (U+FFFD for bytes that are not UTF-8), at most
        ``RAW_DATA_LIMIT`` characters; None when the job has no data field."""
        return raw_data_text(self.fields.get("data"))

    def data_problem(self) -> ValidationError | None:
        """Why ``data`` cannot be decoded, or None when it can (decodes it if needed)."""
        data = self._decoded()
        if type(data) is dict:
            return None
        assert isinstance(data, ValidationError)
        return data

    def _decoded(self) -> dict[str, Any] | ValidationError:
        """The stored data decoded (or why it cannot be), computed on first use."""
        data = self._data
        if data is _UNREAD:
            data = self._data = decode_data(self.fields.get("data"))
        return data

    def text(self, field: str) -> str | None:
        """A stored field as clean text (None when absent)."""
        value = self.fields.get(field)
        return None if value is None else clean_text(value)

    async def update_progress(self, progress: int | float | dict[str, Any]) -> None:
        """Store progress on the job and emit a ``progress`` event."""
        await self._actions.progress(self.id, progress)

    async def log(self, line: str) -> None:
        """Append a line to the job's logs (BullMQ ``addLog``, trimmed to ``keepLogs``)."""
        await self._actions.log(self, check_log_line(line))

    async def children_values(self) -> dict[str, Any]:
        """The results of this job's completed children, by ``"<queue>:<job id>"`` (read
        from Redis on each call: BullMQ's ``getChildrenValues``)."""
        return await self._actions.children_values(self.id)

    def __repr__(self) -> str:
        return f"BullMQJob(queue={self.queue!r}, id={self.id!r}, name={self.name!r})"


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
    except (ValueError, OverflowError):
        return None


def _parent(text: dict[str, str], prefix: str) -> JobParent | None:
    """The parent named by a job hash's ``parent`` (JSON ``{id, queueKey}``) or
    ``parentKey`` field; a queue under the adapter's prefix by its portside name."""
    raw = text.get("parent")
    if raw:
        found = _json(raw, None)
        if isinstance(found, dict) and isinstance(found.get("id"), str | int):
            queue_key = found.get("queueKey")
            if isinstance(queue_key, str) and queue_key:
                return JobParent(queue=portside_queue(queue_key, prefix), id=str(found["id"]))
    key = text.get("parentKey")
    if key and ":" in key:
        queue_key, _, parent_id = key.rpartition(":")
        return JobParent(queue=portside_queue(queue_key, prefix), id=parent_id)
    return None


def job_info(
    queue: str,
    job_id: str,
    fields: dict[str, str],
    state: str,
    queue_paused: bool,
    prefix: str = "",
) -> JobInfo:
    """A ``JobInfo`` from a job hash and its BullMQ state (any stored text is accepted).

    Args:
        prefix: The adapter's key prefix, to name a parent's queue as portside does.
    """
    mapped = _STATES.get(state, "unknown")
    if mapped == "waiting" and queue_paused:
        mapped = "paused"
    text = {key: clean_text(value) for key, value in fields.items()}
    data = _json(text.get("data"), {})
    reason = text.get("failedReason") or None
    kind = text.get(KIND_FIELD)
    failure_kind: FailureKind | None = None
    if reason is not None and kind in ("transient", "permanent"):
        failure_kind = "permanent" if kind == "permanent" else "transient"
    stored = stored_options(fields.get("opts"))
    return JobInfo(
        queue=queue,
        id=job_id,
        name=text.get("name", ""),
        data=data if isinstance(data, dict) else {"value": data},
        state=mapped,
        attempts_made=_int(text.get("atm") or text.get("attemptsMade")),
        max_attempts=stored.attempts,
        progress=_json(text.get("progress"), 0),
        result=_json(text.get("returnvalue"), None),
        failed_reason=reason,
        failure_kind=failure_kind,
        priority=_int(fields.get("priority")),
        delay=(_seconds(fields.get("delay")) or 0.0),
        created_at=_seconds(fields.get("timestamp")) or 0.0,
        processed_at=_seconds(fields.get("processedOn")),
        finished_at=_seconds(fields.get("finishedOn")),
        parent=_parent(text, prefix) if "parent" in text or "parentKey" in text else None,
        options=_options(text.get("opts")),
        stacktrace=_stacktrace(text.get("stacktrace")),
    )


def _options(raw: str | None) -> JobOptions | None:
    opts = _json(raw, None)
    if not isinstance(opts, dict):
        return None
    try:
        return from_bullmq_opts(opts)
    except (ValidationError, pydantic.ValidationError, TypeError, ValueError):
        return None


def _stacktrace(raw: str | None) -> list[str]:
    traces = _json(raw, [])
    if not isinstance(traces, list):
        return []
    return [trace for trace in traces if isinstance(trace, str)]


def children_values(processed: Any, prefix: str) -> dict[str, Any]:
    """A parent's ``:processed`` hash (child job key -> stored result, as an HGETALL reply
    list or dict) as ``{"<queue>:<job id>": result}``."""
    if isinstance(processed, dict):
        pairs = list(processed.items())
    else:
        pairs = list(zip(processed[::2], processed[1::2], strict=True))
    return {portside_queue(clean_text(key), prefix): _json(value, None) for key, value in pairs}
