"""``portside failed list|retry|purge``: the dead-letter store (A4)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer

from portside.app.cli._common import (
    AppOption,
    PostgresOption,
    RedisOption,
    command_infra,
    run,
    user_errors,
)
from portside.app.settings import Settings
from portside.ports import ValidationError

__all__ = ["failed"]

failed = typer.Typer(
    help="Jobs that failed for good (permanent error or out of attempts): list, retry, purge.",
    no_args_is_help=True,
)


def _settings(app: str | None, redis_url: str | None, postgres_dsn: str | None) -> Settings:
    with user_errors():
        return Settings.from_env(app=app, redis_url=redis_url, postgres_dsn=postgres_dsn)


@failed.command("list")
def list_failures(
    queue: Annotated[str | None, typer.Option(help="Only this queue.", show_default=False)] = None,
    include_retried: Annotated[
        bool, typer.Option("--all", help="Include dead letters already retried.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """List dead letters, newest first."""
    settings = _settings(None, redis_url, postgres_dsn)

    async def go() -> None:
        async with command_infra(settings) as infra:
            rows = await infra.require_history().list_failures(
                queue=queue, include_retried=include_retried, limit=limit
            )
        for row in rows:
            if as_json:
                typer.echo(json.dumps(row.model_dump(mode="json")))
                continue
            retried = f"  retried as {row.retry_job_id}" if row.retried_at else ""
            typer.echo(
                f"{row.id}  {row.failed_at:%Y-%m-%d %H:%M:%S}  {row.queue}  {row.name}  "
                f"{row.job_id}  attempts_made={row.attempts_made}  {row.error[:120]}{retried}"
            )
        if not as_json:
            typer.echo(f"{len(rows)} dead letter(s)")

    run(go())


@failed.command("retry")
def retry(
    failure_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Dead-letter ids from `failed list`.", show_default=False),
    ] = None,
    retry_all: Annotated[
        bool, typer.Option("--all", help="Retry every dead letter not yet retried.")
    ] = False,
    queue: Annotated[
        str | None, typer.Option(help="With --all: only this queue.", show_default=False)
    ] = None,
    app: AppOption = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Send dead letters back to their queue with fresh attempts.

    The failed job itself is moved back to waiting when the queue still has it; otherwise a
    copy is enqueued under a stable id (<job id>.retry-<hash>). Pass --app to give copies
    the job's retry policy.
    """
    settings = _settings(app, redis_url, postgres_dsn)
    with user_errors():
        if bool(failure_ids) == retry_all:
            raise ValidationError(
                "give dead-letter ids or --all, not both and not neither",
                fix="e.g. `portside failed retry 6f1c...` or `portside failed retry --all`",
                field="failure_ids",
            )
        from portside.app.loader import load_registry
        from portside.app.registry import Registry

        registry = load_registry(settings.app) if settings.app else Registry()

    async def go() -> None:
        from portside.app.failures import retry_failure

        async with command_infra(settings) as infra:
            ids = list(failure_ids or ())
            if retry_all:
                rows = await infra.require_history().list_failures(queue=queue, limit=10_000)
                ids = [row.id for row in rows]
            for failure_id in ids:
                outcome = await retry_failure(registry, infra, failure_id)
                typer.echo(f"{outcome.how}  {failure_id}  {outcome.job.queue}  {outcome.job.id}")
        typer.echo(f"retried {len(ids)} dead letter(s)")

    run(go())


@failed.command("purge")
def purge(
    older_than_days: Annotated[
        int,
        typer.Option(min=0, help="Delete dead letters that failed more than this many days ago."),
    ] = 30,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Delete old dead letters (the worker also does this every 6 hours, at 30 days)."""
    settings = _settings(None, redis_url, postgres_dsn)

    async def go() -> None:
        from portside.app.failures import purge_failures

        async with command_infra(settings) as infra:
            removed = await purge_failures(infra, timedelta(days=older_than_days))
        typer.echo(f"purged {removed} dead letter(s) older than {older_than_days} days")

    run(go())
