"""Adding jobs with BullMQ's ``addStandardJob``/``addDelayedJob``/``addPrioritizedJob``.

Each job is checked by the shared port function (``encode_job``), then laid out as the RESP
bytes of its ``EVALSHA`` call: the command name, script and keys are the same for every job
of a queue and script, so they are packed once and cached; per job only the three arguments
(msgpack, JSON, msgpack) are added. A bulk is one ``MULTI``/``EXEC`` write and one read.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import msgpack  # type: ignore[import-untyped]
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.options import to_bullmq_opts
from portside.adapters.bullmq.transport.producer_pipeline import producer_pipeline
from portside.adapters.bullmq.transport.scripts import LuaScript, execute, script
from portside.ports import JobOptions, JobRef, NewJob, PortsideError
from portside.ports.inputs import check_sequence, encode_job, encode_new_job
from portside.ports.queue_types import default_options

__all__ = [
    "Prepared",
    "lay_out_call",
    "new_job_id",
    "pack",
    "prepare",
    "prepare_bulk",
    "submit_many",
    "submit_multi",
    "submit_one",
]


_sequence = itertools.count()
_noise: list[str] = []


def _random_hex() -> str:
    """16 random hex digits; ``os.urandom`` is read 256 ids at a time, not once per id."""
    try:
        return _noise.pop()
    except IndexError:
        raw = os.urandom(8 * 256).hex()
        fresh = [raw[start : start + 16] for start in range(0, len(raw), 16)]
        _noise.extend(fresh[1:])
        return fresh[0]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_noise.clear)  # a child must not reuse the parent's


def new_job_id() -> str:
    """A fresh job id: 32 hex digits that sort in creation order within a process.

    Millisecond time, a per-process counter, then randomness. BullMQ orders jobs finished in
    the same millisecond by id, so retention by count keeps the newest ones; and the id is
    never all digits (Node BullMQ reserves integer ids for its own counter).
    """
    millis = time.time_ns() // 1_000_000 & 0xFFFFFFFFFFFF
    count = next(_sequence) & 0xFFFF
    while True:
        job_id = f"{millis:012x}{count:04x}{_random_hex()}"
        if not job_id.isdigit():
            return job_id


class Prepared(NamedTuple):
    """A validated job, laid out as its script call."""

    queue: str
    job_id: str
    name: str
    lua: LuaScript
    command: bytes
    """The whole ``EVALSHA`` command as RESP bytes."""

    @property
    def ref(self) -> JobRef:
        """The job's ref if Redis keeps the id (a dedupe hit answers with another)."""
        return JobRef(queue=self.queue, id=self.job_id, name=self.name)


_KEYS = {
    "addStandardJob": (
        "wait",
        "paused",
        "meta",
        "id",
        "completed",
        "delayed",
        "active",
        "events",
        "marker",
    ),
    "addDelayedJob": ("marker", "meta", "id", "delayed", "completed", "events"),
    "addPrioritizedJob": (
        "marker",
        "meta",
        "id",
        "prioritized",
        "delayed",
        "completed",
        "active",
        "events",
        "pc",
    ),
    "addParentJob": ("meta", "id", "delayed", "waiting-children", "completed", "events"),
}
_ARGS = 3  # packed arguments, JSON data, packed options
_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"
_pack = msgpack.Packer(use_bin_type=True).pack


def pack(value: Any) -> bytes:
    """MessagePack ``value`` as BullMQ's scripts unpack their arguments."""
    return bytes(_pack(value))


def _bulk_string(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


@lru_cache(maxsize=1024)
def _head(base: str, name: str) -> tuple[bytes, LuaScript]:
    """RESP of ``EVALSHA <sha> <numkeys> <keys...>`` for one queue and script (the arguments
    follow), and the script."""
    lua = script(name)
    keys = _KEYS[name]
    assert len(keys) == lua.numkeys, f"{name} takes {lua.numkeys} keys"
    parts = [b"EVALSHA", lua.sha.encode(), str(lua.numkeys).encode()]
    parts += [(base + kind).encode() for kind in keys]
    return b"*%d\r\n" % (len(parts) + _ARGS) + b"".join(map(_bulk_string, parts)), lua


_packed_cache: dict[int, tuple[JobOptions, bytes]] = {}


def _packed_options(options: JobOptions) -> bytes:
    """BullMQ's msgpacked ``opts``; remembered for options objects without a job id, which
    callers share between jobs (``None`` options are one shared object per default)."""
    if options.job_id is not None:
        return bytes(_pack(to_bullmq_opts(options, custom_id=True)))
    found = _packed_cache.get(id(options))
    if found is not None and found[0] is options:
        return found[1]
    packed = bytes(_pack(to_bullmq_opts(options, custom_id=False)))
    if len(_packed_cache) >= 256:
        _packed_cache.clear()
    _packed_cache[id(options)] = (options, packed)  # holding the object keeps its id unique
    return packed


def _script_for(options: JobOptions) -> str:
    if options.delay > 0:
        return "addDelayedJob"
    if options.priority:
        return "addPrioritizedJob"
    return "addStandardJob"


def _lay_out(queue: QueueName, name: str, payload: str, options: JobOptions) -> Prepared:
    job_id = options.job_id if options.job_id is not None else new_job_id()
    dedupe = queue.dedupe_key(options.dedupe_key) if options.dedupe_key is not None else None
    now = int(time.time() * 1000)
    args = _pack([queue.base, job_id, name, now, None, None, None, None, dedupe])
    head, lua = _head(queue.base, _script_for(options))
    command = _command(head, args, payload.encode("utf-8"), _packed_options(options))
    return Prepared(queue.portside, job_id, name, lua, command)


def _command(head: bytes, args: bytes, data: bytes, opts: bytes) -> bytes:
    return b"%b$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
        head,
        len(args),
        args,
        len(data),
        data,
        len(opts),
        opts,
    )


def lay_out_call(
    queue: QueueName, script_name: str, args: list[Any], payload: str, opts: dict[str, Any]
) -> tuple[bytes, LuaScript]:
    """The RESP bytes of one ``add*Job`` script call with BullMQ's packed argument list
    ``args`` (a flow's jobs, which carry their parent), and the script."""
    head, lua = _head(queue.base, script_name)
    return _command(head, pack(args), payload.encode("utf-8"), pack(opts)), lua


def script_for(options: JobOptions) -> str:
    """The ``add*Job`` script that adds a job with these options (no parent of its own)."""
    return _script_for(options)


def prepare(
    queue: QueueName,
    name: object,
    data: Mapping[str, Any] | BaseModel,
    options: object,
) -> Prepared:
    """Validate one job (the shared ``encode_job`` checks) and lay out its script call.

    Raises:
        ValidationError: naming the bad field, before anything is sent.
    """
    job = encode_job(name, data, options)
    return _lay_out(queue, job.name, job.payload, job.options)


def prepare_bulk(queue: QueueName, jobs: Sequence[NewJob]) -> list[Prepared]:
    """Validate every job of a bulk enqueue before any is sent (errors name ``jobs[i]``)."""
    defaults = default_options()
    prepared: list[Prepared] = []
    for index, item in enumerate(check_sequence(jobs, "jobs")):
        job = encode_new_job(item, f"jobs[{index}]", defaults)
        prepared.append(_lay_out(queue, job.name, job.payload, job.options))
    return prepared


def _ref(prepared: Prepared, reply: Any) -> JobRef:
    if isinstance(reply, int) and reply < 0:
        raise PortsideError(
            f"BullMQ refused job {prepared.job_id!r} on {prepared.queue!r} (code {reply})",
            fix="report this as a bug: enqueue never adds a job with a parent",
        )
    return JobRef(queue=prepared.queue, id=str(reply), name=prepared.name)


async def _load(client: Redis, scripts: set[LuaScript]) -> None:
    for lua in scripts:
        await execute(client, "SCRIPT", "LOAD", lua.source)


def _twice() -> PortsideError:
    return PortsideError(
        "Redis rejected the BullMQ scripts twice", fix="check SCRIPT permissions (ACL)"
    )


async def submit_one(client: Redis, prepared: Prepared) -> JobRef:
    """Add one job; returns its ref (the existing job's id when deduplicated)."""
    for attempt in range(2):
        (reply,) = await producer_pipeline(client).exchange(prepared.command, 1)
        if not isinstance(reply, NoScriptError):
            break
        if attempt == 1:
            raise _twice()
        await _load(client, {prepared.lua})
    if isinstance(reply, ResponseError):
        raise reply
    return _ref(prepared, reply)


async def submit_many(client: Redis, prepared: Sequence[Prepared]) -> list[JobRef]:
    """Add jobs in one ``MULTI``/``EXEC`` round trip (sent again whole if scripts were not
    loaded: job ids make that idempotent)."""
    pairs = await submit_multi(client, prepared)
    return [_ref(item, reply) for item, reply in pairs]


async def submit_multi(client: Redis, prepared: Sequence[Prepared]) -> list[tuple[Prepared, Any]]:
    """Run prepared script calls in one ``MULTI``/``EXEC`` round trip and pair each with its
    reply (sent again whole if scripts were not loaded). Error replies are raised."""
    payload = b"".join([_MULTI, *(item.command for item in prepared), _EXEC])
    for attempt in range(2):
        replies = await producer_pipeline(client).exchange(payload, len(prepared) + 2)
        queued, results = zip(prepared, replies[1:-1], strict=True), replies[-1]
        refused = [(item, reply) for item, reply in queued if isinstance(reply, ResponseError)]
        if refused:  # refused while queueing, so EXEC aborted and nothing was written
            pairs = refused
        elif isinstance(results, ResponseError):
            raise results
        else:
            pairs = list(zip(prepared, results, strict=True))
        missing = {item.lua for item, reply in pairs if isinstance(reply, NoScriptError)}
        if not missing:
            break
        if attempt == 1:
            raise _twice()
        await _load(client, missing)
    for _, reply in pairs:
        if isinstance(reply, Exception):
            raise reply
    return pairs
