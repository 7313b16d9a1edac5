"""Adding jobs with BullMQ's ``addStandardJob``/``addDelayedJob``/``addPrioritizedJob``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped]
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.options import to_bullmq_opts
from portside.adapters.bullmq.scripts import LuaScript, execute, run_script, script
from portside.ports import JobOptions, JobRef, NewJob, PortsideError, ValidationError
from portside.ports.validation import check_job_name, json_payload

__all__ = ["Prepared", "new_job_id", "prepare", "prepare_bulk", "submit_many", "submit_one"]


def new_job_id() -> str:
    """A fresh job id: 32 hex digits, never all digits (BullMQ reserves integer ids)."""
    while True:
        job_id = uuid.uuid4().hex
        if not job_id.isdigit():
            return job_id


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated job, ready to send."""

    ref: JobRef
    lua: LuaScript
    keys: tuple[str, ...]
    args: tuple[Any, ...]


def _options(options: object, field: str) -> JobOptions:
    if options is None:
        return JobOptions()
    if not isinstance(options, JobOptions):
        raise ValidationError(
            f"{field} must be a JobOptions, got {type(options).__name__}",
            fix="build it with portside.ports.JobOptions(...)",
            field=field,
        )
    return options


def prepare(
    queue: QueueName,
    name: object,
    data: Mapping[str, Any] | BaseModel,
    options: object,
    field: str = "options",
) -> Prepared:
    """Validate one job and lay out its script call (raises ``ValidationError``)."""
    job_name = check_job_name(name)
    payload = json_payload(data)
    opts = _options(options, field)
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
    if not isinstance(jobs, Sequence):
        raise ValidationError(
            f"jobs must be a sequence of NewJob, got {type(jobs).__name__}",
            fix="pass a list of portside.ports.NewJob",
            field="jobs",
        )
    prepared: list[Prepared] = []
    for index, job in enumerate(jobs):
        if not isinstance(job, NewJob):
            raise ValidationError(
                f"jobs[{index}] must be a NewJob, got {type(job).__name__}",
                fix="wrap each job as NewJob(name=..., data=..., options=...)",
                field=f"jobs[{index}]",
            )
        try:
            prepared.append(prepare(queue, job.name, job.data, job.options, "options"))
        except ValidationError as exc:
            raise ValidationError(
                f"jobs[{index}]: {exc.message}",
                fix=exc.fix,
                field=f"jobs[{index}].{exc.field}" if exc.field else f"jobs[{index}]",
            ) from exc
    return prepared
