"""``portside dispatch`` and ``portside backfill``: enqueue registered jobs by hand (A5)."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated

import typer

from portside.app.cli._common import (
    AppOption,
    PostgresOption,
    RedisOption,
    command_infra,
    parse_json_object,
    run,
    user_errors,
)
from portside.app.settings import Settings
from portside.ports import ValidationError

__all__ = ["backfill", "dispatch"]

PROGRESS_THRESHOLD = 31
"""Ranges longer than this many days get a progress bar."""

JobArgument = Annotated[
    str, typer.Argument(metavar="JOB", help="The job name, e.g. ingest.", show_default=False)
]
DataOption = Annotated[
    str,
    typer.Option(
        "--data",
        metavar="JSON",
        help="""The payload as a JSON object, e.g. '{"organizationId": "org-1"}'.""",
    ),
]


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(
            f"{option} {text!r} is not a date",
            fix=f"write it as YYYY-MM-DD, e.g. {option} 2024-05-01",
            field=option,
        ) from exc


def dispatch(
    job: JobArgument,
    data: DataOption = "{}",
    job_id: Annotated[
        str | None,
        typer.Option(
            metavar="ID",
            help="Explicit job id: dispatching it twice enqueues one job.",
            show_default=False,
        ),
    ] = None,
    deterministic_id: Annotated[
        bool, typer.Option(help="Derive the job id from the payload's id keys.")
    ] = False,
    delay: Annotated[float, typer.Option(min=0, help="Seconds before the job is due.")] = 0.0,
    app: AppOption = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Validate a payload and enqueue one job (run mode: manual).

    Example: portside dispatch ingest --data
    '{"organizationId": "org-1", "integrationId": "xero-1", "date": "2024-05-01"}'
    """
    with user_errors():
        from portside.app.dispatching import dispatch as enqueue
        from portside.app.dispatching import prepare
        from portside.app.loader import load_registry

        settings = Settings.from_env(app=app, redis_url=redis_url, postgres_dsn=postgres_dsn)
        registry = load_registry(settings.require_app())
        definition = registry.get(job)
        payload = parse_json_object(data)
        # Validate before touching any server, so bad input never needs one.
        prepare(
            definition, payload, mode="manual", job_id=job_id, deterministic_id=deterministic_id
        )

    async def go() -> None:
        async with command_infra(settings) as infra:
            ref = await enqueue(
                registry,
                infra.queue,
                job,
                payload,
                job_id=job_id,
                deterministic_id=deterministic_id,
                delay=delay,
            )
        typer.echo(f"enqueued {ref.name} on {ref.queue} as {ref.id}")

    run(go())


def backfill(
    job: JobArgument,
    start: Annotated[
        str,
        typer.Option("--from", metavar="DATE", help="First day, YYYY-MM-DD.", show_default=False),
    ],
    end: Annotated[
        str,
        typer.Option(
            "--to", metavar="DATE", help="Last day (inclusive), YYYY-MM-DD.", show_default=False
        ),
    ],
    data: DataOption = "{}",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be enqueued; enqueue nothing.")
    ] = False,
    app: AppOption = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Enqueue one job per day from --from to --to (run mode: backfill).

    Job ids are derived from the payload, so a day that is already on the queue (waiting,
    running, done or failed) is never enqueued again: re-running a backfill is safe.

    Example: portside backfill ingest --from 2024-05-01 --to 2024-05-30 --data
    '{"organizationId": "org-1", "integrationId": "xero-1"}' --dry-run
    """
    with user_errors():
        from portside.app.backfill import plan_backfill
        from portside.app.loader import load_registry

        settings = Settings.from_env(app=app, redis_url=redis_url, postgres_dsn=postgres_dsn)
        registry = load_registry(settings.require_app())
        registry.get(job)
        first, last = _day(start, "--from"), _day(end, "--to")
        plan = plan_backfill(registry, job, first, last, parse_json_object(data))

    async def go() -> None:
        async with command_infra(settings) as infra:
            if len(plan.jobs) > PROGRESS_THRESHOLD:
                with typer.progressbar(
                    length=len(plan.jobs), label=f"backfill {job}", file=sys.stderr
                ) as bar:
                    report = await plan.run(infra.queue, dry_run=dry_run, on_progress=bar.update)
            else:
                report = await plan.run(infra.queue, dry_run=dry_run)
        if dry_run:
            new = set(report.new_job_ids)
            for planned in plan.jobs:
                state = "new" if planned.job_id in new else "present"
                typer.echo(f"{planned.day}  {planned.job_id}  {state}")
        typer.echo(report.summary())

    run(go())
