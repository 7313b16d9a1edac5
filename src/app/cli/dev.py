"""``portside dev``: embedded Redis and Postgres, migrations, schedules, worker and API at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from portside.app.application import Application
from portside.app.cli._common import (
    AppOption,
    PostgresOption,
    RedisOption,
    parse_json_object,
    run,
    user_errors,
)
from portside.app.monitoring import GRAFANA_SCHEMA_VERSION, dashboard_path, rules_path
from portside.app.registry import Registry
from portside.app.settings import Settings
from portside.ports import ValidationError

if TYPE_CHECKING:
    from portside.infra import Infra
    from portside.ports import EventStream, JobInfo, JobRef

__all__ = ["DEFAULT_APP", "dev"]

DEFAULT_APP = "portside.examples.dev:application"
"""The examples' application, loaded at run time (the core never imports the examples)."""
DEFAULT_PORT = 8000
ONCE_TIMEOUT = 60.0
_FINISHED = ("completed", "failed")


@dataclass
class _Options:
    application: Application
    worker: Registry
    public: Registry
    once: bool
    host: str
    port: int
    job: str | None
    data: dict[str, Any]
    grace: float


def _say(text: str = "") -> None:
    typer.echo(text)


@contextlib.asynccontextmanager
async def _servers(settings: Settings) -> AsyncIterator[Settings]:
    """Start embedded valkey/Postgres for whatever ``settings`` has no URL for."""
    from portside.servers import LocalPostgres, LocalRedis

    redis = LocalRedis() if settings.redis_url is None else None
    postgres = LocalPostgres() if settings.postgres_dsn is None else None
    try:
        await asyncio.gather(
            *(asyncio.to_thread(server.start) for server in (redis, postgres) if server)
        )
        resolved = settings.model_copy(
            update={
                "redis_url": redis.url if redis else settings.redis_url,
                "postgres_dsn": postgres.dsn if postgres else settings.postgres_dsn,
            }
        )
        where = "embedded, discarded on exit"
        _say("portside dev")
        _say(f"  Redis     {resolved.redis_url}  ({where if redis else 'configured'})")
        _say(f"  Postgres  {resolved.postgres_dsn}  ({where if postgres else 'configured'})")
        yield resolved
    finally:
        for server in (redis, postgres):
            if server is not None:
                await asyncio.to_thread(server.stop)


def _application(spec: str) -> tuple[Application, Registry, Registry]:
    """The application, its worker's registry (its jobs plus the API's internal ones) and
    the public one (what clients may enqueue)."""
    from portside.app.loader import load_application

    application = load_application(spec)
    return application, application.worker_registry(), application.public_registry()


def _banner(options: _Options, url: str, token: str, generated: bool, queues: list[str]) -> None:
    _say(f"  Worker    {len(queues)} queues: {', '.join(queues)}")
    _say(f"  Jobs      {', '.join(options.public.names())}  (portside dev --list)")
    _say(f"  API       {url}  (OpenAPI docs: {url}/docs)")
    origin = "generated; set PORTSIDE_ADMIN_TOKEN to choose it" if generated else "configured"
    _say(f"  Admin     bearer token {token}  ({origin})")
    _say(f"  Console   {url}/ui  (sign in with the admin token)")
    _say(f"  Probes    {url}/livez  {url}/readyz  {url}/metrics")
    _say(f"  Grafana   {dashboard_path()}  (dashboard, schemaVersion {GRAFANA_SCHEMA_VERSION})")
    _say(f"  Alerts    {rules_path()}  (Prometheus rule_files)")
    post = f"curl -s -X POST {url}/{{path}} -H 'Content-Type: application/json' -d '{{body}}'"
    application = options.application
    _say()
    _say("Try:")
    if options.job is not None:
        _say("  " + post.format(path=f"jobs/{options.job}", body=json.dumps(options.data)))
        _say(f"  curl -s {url}/jobs/<jobId>")
    if application.runs is not None:
        body = json.dumps(dict(application.sample_run or {}))
        _say("  " + post.format(path="runs", body=body))
        _say(f"  curl -sN '{url}/runs/<runId>/events?from_seq=1'")
    _say(f"  curl -s {url}/health/queues")
    _say(f"  curl -s -H 'Authorization: Bearer {token}' {url}/admin/failed-jobs")
    _say()


async def _wait_finished(
    infra: Infra, ref: JobRef, events: EventStream, stop: asyncio.Event
) -> JobInfo | None:
    """The job once completed or failed; None if ``stop`` was set first.

    Woken by each event of the job's queue, with a re-check every second in case the event
    stream missed one; gives up after ``ONCE_TIMEOUT`` seconds.
    """
    deadline = time.monotonic() + ONCE_TIMEOUT
    stopped = asyncio.ensure_future(stop.wait())
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            info = await infra.queue.get_job(ref.queue, ref.id)
            if info is not None and info.state in _FINISHED:
                return info
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"job {ref.id} did not finish within {ONCE_TIMEOUT:g} s")
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait(
                {pending, stopped}, timeout=min(1.0, remaining), return_when=asyncio.FIRST_COMPLETED
            )
            if stopped in done:
                return None
            if pending in done:
                with contextlib.suppress(StopAsyncIteration):
                    pending.result()
                pending = None
    finally:
        stopped.cancel()
        if pending is not None:
            pending.cancel()


async def _show_job(url: str, job_id: str) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.get(f"/jobs/{job_id}")
    body: dict[str, Any] = response.json()
    _say(f"GET {url}/jobs/{job_id} -> {response.status_code}")
    _say(json.dumps(body, indent=2))
    return body


async def _serve(settings: Settings, options: _Options) -> int:
    from portside.app.http import HttpSettings, create_app
    from portside.app.http.server import ApiServer
    from portside.app.logs import configure_logging
    from portside.app.runtime import WorkerRuntime
    from portside.app.scheduler import sync_schedules
    from portside.app.wiring import build_infra, migrate
    from portside.app.worker_process import install_stop_signals

    configure_logging(settings.log_level)
    http_settings = HttpSettings.from_env()
    token = http_settings.admin_token
    generated = token is None
    if token is None:
        http_settings = HttpSettings.build(
            **{**http_settings.model_dump(), "admin_token": secrets.token_urlsafe(24)}
        )
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with _servers(settings) as resolved:
        await migrate(resolved, options.application)
        async with build_infra(resolved, name="dev") as infra:
            report = await sync_schedules(options.worker, infra.queue)
            _say(f"  Schedules {report.summary()}")
            runtime = WorkerRuntime(options.worker, infra, grace=options.grace)
            await runtime.start()
            try:
                app = create_app(
                    infra,
                    options.public,
                    http_settings,
                    runs=options.application.runs,
                    publish_outbox=True,
                    local_workers=runtime.status,
                    metrics_registry=runtime.metrics.registry,
                )
                async with ApiServer(app, host=options.host, port=options.port) as server:
                    secret = http_settings.admin_token
                    assert secret is not None
                    _banner(
                        options, server.url, secret.get_secret_value(), generated, runtime.queues
                    )
                    return await _main_job(infra, options, server.url, stop)
            finally:
                await runtime.stop()


async def _main_job(infra: Infra, options: _Options, url: str, stop: asyncio.Event) -> int:
    if options.job is not None:
        info = await _run_main_job(infra, options, options.job, url, stop)
        if info is not None and options.once:
            return 0 if info.state == "completed" else 1
        if info is None and options.once and not stop.is_set():
            return 1
    if stop.is_set():
        return 0
    _say("Serving; press Ctrl-C to stop.")
    await stop.wait()
    return 0


async def _run_main_job(
    infra: Infra, options: _Options, job: str, url: str, stop: asyncio.Event
) -> JobInfo | None:
    """Enqueue ``job`` and show it once finished; None if it timed out or ``stop`` came first."""
    from portside.app.dispatching import dispatch

    registry = options.public
    definition = registry.get(job)
    events = infra.queue.events(definition.queue)
    try:
        job_id = f"{job}.dev-{uuid.uuid4().hex[:16]}"
        ref = await dispatch(registry, infra.queue, job, options.data, job_id=job_id)
        _say(f"Enqueued the main job {job!r} as {ref.id}")
        info = await _wait_finished(infra, ref, events, stop)
    except TimeoutError as error:
        _say(f"{error}; follow it with: curl -s {url}/jobs/{job_id}")
        return None
    finally:
        await events.aclose()
    if info is not None:
        _say(f"Job {ref.id} {info.state}")
        await _show_job(url, ref.id)
    return info


def _main_job_of(
    application: Application, job: str | None, data: str | None
) -> tuple[str | None, dict[str, Any]]:
    """The job to enqueue at start-up and its payload: ``--job``/``--data``, else the
    application's main job."""
    main = application.main_job
    name = job if job is not None else (main.name if main is not None else None)
    if data is not None:
        return name, parse_json_object(data)
    if main is not None and name == main.name:
        return name, dict(main.data())
    if name is not None and name in application.samples:
        return name, dict(application.samples[name])
    return name, {}


def _list_jobs(application: Application, public: Registry) -> None:
    """Every job clients may enqueue, its queue, what it does and its sample payload."""
    main = application.main_job
    for definition in public:
        _say(f"{definition.name}  (queue {definition.queue})")
        if definition.description:
            _say(f"    {definition.description}")
        sample = application.samples.get(definition.name)
        if sample is None and main is not None and main.name == definition.name:
            sample = main.data()
        if sample is not None:
            _say(f"    portside dev --job {definition.name} --data '{json.dumps(dict(sample))}'")


def dev(
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Run the main example job, print its result, shut down, exit 0."
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="Interface the API listens on.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="API port; 0 picks a free one.",
            show_default="8000, or a free port with --once",
        ),
    ] = None,
    job: Annotated[
        str | None,
        typer.Option(
            help="The main job, enqueued once at start-up.",
            show_default="the application's main job (the examples: ingest)",
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Its payload as a JSON object.",
            show_default="the application's payload for its main job (a demo ingest for today)",
        ),
    ] = None,
    list_jobs: Annotated[
        bool,
        typer.Option(
            "--list", help="List the application's jobs with their sample payloads and exit."
        ),
    ] = False,
    grace: Annotated[
        float, typer.Option(min=0, help="Seconds in-flight jobs get to finish at shutdown.")
    ] = 10.0,
    app: AppOption = None,
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            help="DEBUG, INFO, WARNING or ERROR [env: PORTSIDE_LOG_LEVEL].",
            show_default="INFO, or WARNING with --once",
        ),
    ] = None,
) -> None:
    """Run everything on one machine: Redis, Postgres, the worker and the HTTP API.

    Starts embedded valkey and PostgreSQL (bundled with the dev extra) unless
    PORTSIDE_REDIS_URL / PORTSIDE_POSTGRES_DSN (or the options) point at servers, applies the
    migrations (portside's and the application's), bootstraps the job schedules, starts the
    worker (the application's jobs, its run service's and webhook deliveries) and the API,
    enqueues the main job once and prints the URLs and curl commands to try. Ctrl-C (or
    SIGTERM) shuts everything down and removes the embedded servers' data. The application is
    --app (default: the examples, portside.examples.dev:application).

    Any job can be the main job: --job NAME runs it with the application's sample payload
    for it (or --data); --list shows them all.

    Example: portside dev --once --job color-extraction
    """
    with user_errors():
        settings = Settings.from_env(
            app=app,
            redis_url=redis_url,
            postgres_dsn=postgres_dsn,
            log_level=log_level or ("WARNING" if once else None),
        )
        application, worker, public = _application(settings.app or DEFAULT_APP)
        if list_jobs:
            _list_jobs(application, public)
            raise typer.Exit(0)
        job, payload = _main_job_of(application, job, data)
        if job is not None:
            public.get(job).validate(payload)
        elif once:
            raise ValidationError(
                "--once runs the main job, and the application has none",
                fix="pass --job NAME (and --data JSON), or give the Application a main_job",
                field="--job",
            )
    options = _Options(
        application=application,
        worker=worker,
        public=public,
        once=once,
        host=host,
        port=port if port is not None else (0 if once else DEFAULT_PORT),
        job=job,
        data=payload,
        grace=grace,
    )
    code = run(_serve(settings, options))
    raise typer.Exit(code)
