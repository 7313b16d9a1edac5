"""``portside queues``, ``pause``, ``resume``, ``purge``, ``runs`` and ``outbox streams``:
the operator's commands, on ``AdminService`` like the admin API (OPS2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import pydantic
import typer

from portside.app.admin import AdminService, RunQuery
from portside.app.cli._common import (
    AppOption,
    PostgresOption,
    RedisOption,
    command_infra,
    fail,
    run,
    user_errors,
)
from portside.app.settings import Settings

__all__ = ["outbox_streams", "pause", "purge", "queues", "resume", "runs"]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
HEADERS = ["QUEUE", "STATE", "WAITING", "ACTIVE", "DELAYED", "COMPLETED", "FAILED", "WORKERS"]
QueueArgument = Annotated[str, typer.Argument(metavar="QUEUE", help="A queue of the --app.")]


def _settings(app: str | None, redis_url: str | None, postgres_dsn: str | None) -> Settings:
    with user_errors():
        return Settings.from_env(app=app, redis_url=redis_url, postgres_dsn=postgres_dsn)


def _registry(settings: Settings) -> Any:
    from portside.app.loader import load_registry

    with user_errors():
        return load_registry(settings.require_app())


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def queues(
    as_json: JsonOption = False,
    app: AppOption = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Every queue of the --app: jobs per state, paused, workers, recent failure rate."""
    settings = _settings(app, redis_url, postgres_dsn)
    registry = _registry(settings)

    async def go() -> None:
        async with command_infra(settings) as infra:
            summaries = await AdminService(infra, registry).queues()
        if as_json:
            typer.echo(json.dumps([s.model_dump(mode="json") for s in summaries], indent=2))
            return
        rows = [
            ["QUEUE", "STATE", "WAITING", "ACTIVE", "DELAYED", "COMPLETED", "FAILED", "WORKERS"]
        ]
        for s in summaries:
            counts = s.counts
            rows.append(
                [
                    s.name,
                    "paused" if s.paused else "running",
                    str(counts.waiting + counts.paused),
                    str(counts.active),
                    str(counts.delayed),
                    str(counts.completed),
                    str(counts.failed),
                    str(len(s.workers)),
                ]
            )
        typer.echo(_table(rows))

    run(go())


def _queue_action(
    action: str, queue: str, app: str | None, redis_url: str | None, postgres_dsn: str | None
) -> None:
    settings = _settings(app, redis_url, postgres_dsn)
    registry = _registry(settings)

    async def go() -> None:
        async with command_infra(settings) as infra:
            admin = AdminService(infra, registry)
            with user_errors():
                admin.check_queue(queue)
            if action == "pause":
                await admin.pause(queue)
                typer.echo(f"paused {queue}")
            elif action == "resume":
                await admin.resume(queue)
                typer.echo(f"resumed {queue}")
            else:
                removed = await admin.purge(queue)
                typer.echo(f"purged {removed} waiting or delayed job(s) of {queue}")

    run(go())


def pause(
    queue: QueueArgument,
    app: AppOption = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Pause QUEUE for every worker (running jobs finish; nothing new starts)."""
    _queue_action("pause", queue, app, redis_url, postgres_dsn)


def resume(
    queue: QueueArgument,
    app: AppOption = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Resume a paused QUEUE."""
    _queue_action("resume", queue, app, redis_url, postgres_dsn)


def purge(
    queue: QueueArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    app: AppOption = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Remove every waiting and delayed job of QUEUE (asks first unless --yes)."""
    if not yes:
        typer.confirm(f"Remove every waiting and delayed job of {queue}?", abort=True)
    _queue_action("purge", queue, app, redis_url, postgres_dsn)


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not a date; give e.g. 2026-01-31 or 2026-01-31T10:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _keys(pairs: list[str]) -> dict[str, str]:
    keys = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            fail(f"--key {pair!r} is not name=value; give e.g. --key organizationId=org-1")
        keys[name] = value
    return keys


def runs(
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    name: Annotated[str | None, typer.Option(help="Only this job name.")] = None,
    job_id: Annotated[str | None, typer.Option("--job-id", help="Only this job.")] = None,
    status: Annotated[
        str | None, typer.Option(help="running, completed, retrying, failed or lost.")
    ] = None,
    run_mode: Annotated[
        str | None, typer.Option("--run-mode", help="scheduled, manual or backfill.")
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(help="Business key name=value (e.g. organizationId=org-1); repeatable."),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Started at or after (ISO date).")] = None,
    until: Annotated[str | None, typer.Option(help="Started before (ISO date).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    as_json: JsonOption = False,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Query the run history, newest first."""
    settings = _settings(None, redis_url, postgres_dsn)
    try:
        query = RunQuery.model_validate(
            {
                "queue": queue,
                "name": name,
                "job_id": job_id,
                "status": status,
                "run_mode": run_mode,
                "keys": _keys(key or []),
                "started_after": _moment(since, "--since"),
                "started_before": _moment(until, "--until"),
                "limit": limit,
            }
        )
    except pydantic.ValidationError as error:
        first = error.errors(include_url=False)[0]
        option = "--" + str(first["loc"][0]).replace("_", "-")
        fail(f"{option} is invalid: {first['msg']}; see portside runs --help")

    async def go() -> None:
        async with command_infra(settings) as infra:
            rows = await AdminService(infra, _no_registry()).runs(query)
        if as_json:
            typer.echo(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
            return
        table = [["STARTED", "QUEUE", "JOB", "ID", "ATTEMPT", "MODE", "STATUS", "ERROR"]]
        for row in rows:
            table.append(
                [
                    f"{row.started_at:%Y-%m-%d %H:%M:%S}",
                    row.queue,
                    row.name,
                    row.job_id,
                    str(row.attempt),
                    row.run_mode,
                    row.status,
                    row.error_class or "",
                ]
            )
        typer.echo(_table(table))

    run(go())


def _no_registry() -> Any:
    from portside.app.registry import Registry

    return Registry()


def outbox_streams(
    as_json: JsonOption = False,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Every outbox stream with its last seq and its events not yet published."""
    settings = _settings(None, redis_url, postgres_dsn)

    async def go() -> None:
        async with command_infra(settings) as infra:
            streams = await infra.outbox.streams()
        if as_json:
            typer.echo(json.dumps([s.model_dump(mode="json") for s in streams], indent=2))
            return
        rows = [["STREAM", "LAST SEQ", "PENDING"]]
        rows += [[s.stream, str(s.last_seq), str(s.pending)] for s in streams]
        typer.echo(_table(rows))

    run(go())
