"""``portside worker``: run the registry's consumers until SIGINT/SIGTERM (A2, Q10)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
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

__all__ = ["process_age", "worker"]


def process_age() -> float:
    """Seconds since this process started (Linux ``/proc``), 0.0 where unknown."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)


def _queues(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


async def _serve(
    settings: Settings,
    queues: list[str] | None,
    grace: float,
    metrics_port: int | None,
    started_at: float,
) -> None:
    from portside.app.loader import load_registry
    from portside.app.logs import configure_logging
    from portside.app.worker_process import install_stop_signals, run_worker

    configure_logging(settings.log_level)
    registry = load_registry(settings.require_app())
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with command_infra(settings) as infra:
        await run_worker(
            registry,
            infra,
            stop,
            queues=queues,
            grace=grace,
            metrics_port=metrics_port,
            started_at=started_at,
            run_retention=settings.run_retention(),
            outbox_retention=settings.outbox_retention(),
            lost_after=settings.lost_after(),
        )


def worker(
    app: AppOption = None,
    queues: Annotated[
        list[str] | None,
        typer.Option(
            "--queues",
            "--queue",
            "-q",
            metavar="QUEUE",
            help="Consume only these queues (repeat the option or separate with commas).",
            show_default="every queue of the registry",
        ),
    ] = None,
    grace: Annotated[
        float,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="Seconds in-flight jobs get to finish after SIGINT/SIGTERM.",
        ),
    ] = 30.0,
    processes: Annotated[
        int,
        typer.Option(
            min=1, max=64, metavar="N", help="Run this many worker processes under a supervisor."
        ),
    ] = 1,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            metavar="PORT",
            help="Serve /metrics, /livez and /readyz on this port (process i of --processes "
            "uses port+i).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            metavar="LEVEL",
            help="DEBUG, INFO, WARNING or ERROR [env: PORTSIDE_LOG_LEVEL].",
            show_default=False,
        ),
    ] = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Run the registry's jobs until SIGINT/SIGTERM.

    On a signal the worker stops fetching, waits up to --grace seconds for in-flight jobs,
    closes its connections and exits 0. Logs are JSON lines on stderr.

    Example: portside worker --app portside.examples.ingestion:registry --queues sync:energy
    """
    started_at = time.perf_counter() - process_age()
    with user_errors():
        settings = Settings.from_env(
            app=app, redis_url=redis_url, postgres_dsn=postgres_dsn, log_level=log_level
        )
        from portside.app.loader import load_registry

        # Load once here so a bad --app or --queues fails before any process starts.
        registry = load_registry(settings.require_app())
        chosen = _queues(queues)
        known = registry.queues()
        for name in chosen or ():
            if name not in known:
                from portside.app.errors import UnknownQueueError

                raise UnknownQueueError(name, known)
    if processes > 1:
        from portside.app.cli.supervisor import supervise

        raise typer.Exit(supervise(processes, settings, chosen, grace, metrics_port))
    run(_serve(settings, chosen, grace, metrics_port, started_at))
