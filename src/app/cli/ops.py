"""``portside schedule`` and ``portside migrate``."""

from __future__ import annotations

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

__all__ = ["migrate", "schedule"]


def schedule(
    prune_queue: Annotated[
        list[str] | None,
        typer.Option(
            help="Also remove every schedule of this queue (one no job uses any more); repeatable.",
            show_default=False,
        ),
    ] = None,
    app: AppOption = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Make the queues' job schedulers match the registry (Q11).

    Creates or updates one scheduler per scheduled job (id = job name) and removes the
    schedulers of registry queues that no job declares. Idempotent: run it on every deploy.
    """
    with user_errors():
        from portside.app.loader import load_registry
        from portside.app.scheduler import desired_schedules, sync_schedules

        settings = Settings.from_env(app=app, redis_url=redis_url, postgres_dsn=postgres_dsn)
        registry = load_registry(settings.require_app())
        desired_schedules(registry)

    async def go() -> None:
        async with command_infra(settings) as infra:
            report = await sync_schedules(registry, infra.queue, prune_queues=prune_queue or ())
        for label, entries in (
            ("created", report.created),
            ("updated", report.updated),
            ("removed", report.removed),
        ):
            for entry in entries:
                typer.echo(f"{label}  {entry}")
        typer.echo(report.summary())

    run(go())


def migrate(app: AppOption = None, postgres_dsn: PostgresOption = None) -> None:
    """Apply pending Postgres migrations (outbox, run history, dead letters), then those of
    the application (--app), if it has any."""
    with user_errors():
        from portside.app.loader import load_application
        from portside.app.wiring import migrate as apply

        settings = Settings.from_env(app=app, postgres_dsn=postgres_dsn)
        settings.require_postgres_dsn()
        application = load_application(settings.app) if settings.app is not None else None

    async def go() -> None:
        applied = await apply(settings, application)
        typer.echo(
            f"applied migrations {', '.join(applied)}" if applied else "schema is up to date"
        )

    run(go())
