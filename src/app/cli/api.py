"""``portside api``: serve the HTTP app (API and console) with uvicorn, for production (OPS2)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import typer

from portside.app.cli._common import AppOption, PostgresOption, RedisOption, user_errors
from portside.app.settings import Settings

__all__ = ["api", "app_from_env"]


def app_from_env() -> Any:
    """The HTTP app from the ``PORTSIDE_*`` environment (uvicorn's factory; one per worker).

    The adapters it builds are closed when the app shuts down.
    """
    from fastapi import FastAPI

    from portside.app.http import HttpSettings, create_app
    from portside.app.loader import load_application
    from portside.app.logs import configure_logging
    from portside.app.wiring import build_infra

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    application = load_application(settings.require_app())
    infra = build_infra(settings, name="api")
    app = create_app(
        infra,
        application.public_registry(),
        HttpSettings.from_env(),
        runs=application.runs,
        publish_outbox=True,
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[Any]:
        try:
            async with inner(served) as state:
                yield state
        finally:
            await infra.close()

    app.router.lifespan_context = lifespan
    return app


def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes.")] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = True,
    proxy_headers: Annotated[
        bool,
        typer.Option(
            "--proxy-headers/--no-proxy-headers",
            help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips.",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str, typer.Option(help="Proxies whose forwarded headers are trusted (comma-separated).")
    ] = "127.0.0.1",
    app: AppOption = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Serve the HTTP API and the operator console (/ui) with uvicorn.

    Configuration comes from the environment as for the worker (PORTSIDE_APP, PORTSIDE_REDIS_URL,
    PORTSIDE_POSTGRES_DSN) plus PORTSIDE_ADMIN_TOKEN (admin API and console actions) and
    PORTSIDE_API_TOKEN (the public job endpoints, when set).
    """
    import uvicorn

    with user_errors():
        settings = Settings.from_env(app=app, redis_url=redis_url, postgres_dsn=postgres_dsn)
        settings.require_app()
        settings.require_redis_url()
        settings.require_postgres_dsn()
    for name, value in (
        ("PORTSIDE_APP", settings.app),
        ("PORTSIDE_REDIS_URL", settings.redis_url),
        ("PORTSIDE_POSTGRES_DSN", settings.postgres_dsn),
    ):
        if value is not None:
            os.environ[name] = value  # the workers uvicorn starts read the same settings
    uvicorn.run(
        "portside.app.cli.api:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
    )
