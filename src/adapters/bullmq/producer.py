"""Adding jobs with BullMQ's ``addStandardJob``/``addDelayedJob``/``addPrioritizedJob``."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped]
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from portside.adapters.bullmq.inputs import check_sequence, coerce_new_job, coerce_options
from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.options import to_bullmq_opts
from portside.adapters.bullmq.scripts import LuaScript, execute, run_script, script
from portside.ports import JobRef, NewJob, PortsideError, ValidationError
from portside.ports.validation import check_job_name, json_payload

__all__ = ["Prepared", "new_job_id", "prepare", "prepare_bulk", "submit_many", "submit_one"]


_sequence = itertools.count()


def new_job_id() -> str:
    """A fresh job id: 32 hex digits that sort in creation order within a process.

    Millisecond time, a per-process counter, then randomness. BullMQ orders jobs finished in
    the same millisecond by id, so retention by count keeps the newest ones; and the id is
    never all digits (Node BullMQ reserves integer ids for its own counter).
    """
    stamp = f"{int(time.time() * 1000) & 0xFFFFFFFFFFFF:012x}{next(_sequence) & 0xFFFF:04x}"
    while True:
        job_id = stamp + secrets.token_hex(8)
        if not job_id.isdigit():
            return job_id


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated job, ready to send."""

    ref: JobRef
    lua: LuaScript
    keys: tuple[str, ...]
    args: tuple[Any, ...]


def _named(error: ValidationError, prefix: str) -> ValidationError:
    field = f"{prefix}.{error.field}" if error.field else prefix
    return ValidationError(f"{prefix}: {error.message}", fix=error.fix, field=field)


def prepare(
    queue: QueueName,
    name: object,
    data: Mapping[str, Any] | BaseModel,
    options: object,
    prefix: str = "",
) -> Prepared:
    """Validate one job and lay out its script call (raises ``ValidationError``).

    Args:
        prefix: Where the job sits in the caller's input (``jobs[3]`` in a bulk), so errors
            name ``jobs[3].data.x``.
    """
    try:
        job_name = check_job_name(name)
    except ValidationError as exc:
        raise (_named(exc, prefix) if prefix else exc) from None
    payload = json_payload(data, f"{prefix}.data" if prefix else "data")
    opts = coerce_options(options, f"{prefix}.options" if prefix else "options")
    custom = opts.job_id is not None
    job_id = opts.job_id if opts.job_id is not None else new_job_id()
    bull_opts = to_bullmq_opts(opts, custom_id=custom)
    dedupe = queue.dedupe_key(opts.dedupe_key) if opts.dedupe_key is not None else None
    packed = msgpack.packb(
        [queue.base, job_id, job_name, int(time.time() * 1000), None, None, None, None, dedupe],
        use_bin_type=True,
    )
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    args = (packed, encoded, msgpack.packb(bull_opts, use_bin_type=True))
    k = queue.key
    if opts.delay > 0:
        lua = script("addDelayedJob")
        keys = tuple(k(x) for x in ("marker", "meta", "id", "delayed", "completed", "events"))
    elif opts.priority:
        lua = script("addPrioritizedJob")
        keys = tuple(
            k(x)
            for x in (
                "marker",
                "meta",
                "id",
                "prioritized",
                "delayed",
                "completed",
                "active",
                "events",
                "pc",
            )
        )
    else:
        lua = script("addStandardJob")
        keys = tuple(
            k(x)
            for x in (
                "wait",
                "paused",
                "meta",
                "id",
                "completed",
                "delayed",
                "active",
                "events",
                "marker",
            )
        )
    return Prepared(JobRef(queue=queue.portside, id=job_id, name=job_name), lua, keys, args)


def _ref(prepared: Prepared, reply: Any) -> JobRef:
    if isinstance(reply, int) and reply < 0:
        raise PortsideError(
            f"BullMQ refused job {prepared.ref.id!r} on {prepared.ref.queue!r} (code {reply})",
            fix="this adapter never adds flows; report this as a bug",
        )
    job_id = str(reply)
    if job_id == prepared.ref.id:
        return prepared.ref
    return JobRef(queue=prepared.ref.queue, id=job_id, name=prepared.ref.name)


async def submit_one(client: Redis, prepared: Prepared) -> JobRef:
    """Add one job; returns its ref (the existing job's id when deduplicated)."""
    reply = await run_script(client, prepared.lua, prepared.keys, prepared.args)
    return _ref(prepared, reply)


async def submit_many(client: Redis, prepared: Sequence[Prepared]) -> list[JobRef]:
    """Add jobs in one MULTI/EXEC round trip (re-sent whole if scripts were not loaded:
    job ids make that idempotent)."""
    for attempt in range(2):
        async with client.pipeline(transaction=True) as pipe:
            for item in prepared:
                pipe.execute_command(*item.lua.command(item.keys, item.args))
            replies = await pipe.execute(raise_on_error=False)
        missing = {
            item.lua
            for item, reply in zip(prepared, replies, strict=True)
            if isinstance(reply, NoScriptError)
        }
        if not missing:
            break
        if attempt == 1:
            raise PortsideError(
                "Redis rejected the BullMQ scripts twice", fix="check SCRIPT permissions (ACL)"
            )
        for lua in missing:
            await execute(client, "SCRIPT", "LOAD", lua.source)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return [_ref(item, reply) for item, reply in zip(prepared, replies, strict=True)]


def prepare_bulk(queue: QueueName, jobs: Sequence[NewJob]) -> list[Prepared]:
    """Validate every job of a bulk enqueue before any is sent."""
    prepared: list[Prepared] = []
    for index, item in enumerate(check_sequence(jobs, "jobs")):
        field = f"jobs[{index}]"
        job = coerce_new_job(item, field)
        prepared.append(prepare(queue, job.name, job.data, job.options, field))
    return prepared
