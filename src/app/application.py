"""``Application``: what ``--app`` names: an application's jobs, schema and runs in one object.

``portside dev`` serves one (``--app``, by default the examples'
``portside.examples.dev:application``); ``portside worker``, ``dispatch``, ``backfill`` and
``schedule`` take its jobs; ``portside migrate`` applies its schema after portside's. A bare
``Registry`` is an application with jobs only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portside.app.definition import JobDefinition
from portside.app.http.runs import RunService
from portside.app.http.webhook_job import WebhookDelivery, webhook_definition
from portside.app.registry import Registry
from portside.ports import ValidationError

__all__ = ["Application", "MainJob", "Migrate", "internal_jobs"]

Migrate = Callable[[str], Awaitable[Sequence[str]]]
"""Applies a schema to the database at a DSN; returns what it applied (sync callers:
``asyncio.run``). The shape of the harness's ``portside_migrations`` entries too."""


def internal_jobs(
    runs: RunService | None, delivery: WebhookDelivery | None = None
) -> list[JobDefinition[Any]]:
    """Jobs the HTTP API causes but clients cannot enqueue: the run service's and webhook
    deliveries (``webhook-deliver``, signed with ``delivery``)."""
    return [*(runs.registry if runs is not None else ()), webhook_definition(delivery)]


@dataclass(frozen=True)
class MainJob:
    """The job ``portside dev`` enqueues once at start-up to show the application working.

    Attributes:
        name: A job of the application's registry.
        data: Its payload, made at start-up (so it can name today, say).
    """

    name: str
    data: Callable[[], Mapping[str, Any]]


@dataclass(frozen=True)
class Application:
    """An application on portside.

    Attributes:
        registry: Its jobs: what clients may enqueue with ``POST /jobs/{name}``.
        runs: Runs the HTTP API serves (``POST /runs`` ...); None: no run routes.
        migrate: Applies its own tables after portside's migrations (``portside dev`` and
            ``portside migrate`` run it), e.g. ``migrate(dsn, [MigrationSource...])`` of
            ``portside.adapters.postgres.migrations``.
        main_job: What ``portside dev`` enqueues at start-up (None: nothing unless ``--job``).
        sample_run: A ``POST /runs`` body ``portside dev`` suggests trying.
        samples: A payload per job: what ``portside dev --job NAME`` enqueues unless
            ``--data`` says otherwise, and what ``portside dev --list`` shows.
    """

    registry: Registry
    runs: RunService | None = None
    migrate: Migrate | None = None
    main_job: MainJob | None = None
    sample_run: Mapping[str, Any] | None = None
    samples: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.registry, Registry):
            raise ValidationError(
                f"Application(registry=...) got a {type(self.registry).__name__}",
                fix="pass a portside.app.Registry of the application's jobs",
                field="registry",
            )
        for name in self.samples:
            if name not in self.registry:
                raise ValidationError(
                    f"the sample payload of {name!r} names no job of the application's registry",
                    fix=f"name one of its jobs ({', '.join(self.registry.names()) or 'none'})",
                    field="samples",
                )
        main = self.main_job
        if main is not None and main.name not in self.registry:
            jobs = ", ".join(self.registry.names()) or "none"
            raise ValidationError(
                f"the main job {main.name!r} is not in the application's registry",
                fix=f"name one of its jobs ({jobs})",
                field="main_job",
            )

    def worker_registry(self, delivery: WebhookDelivery | None = None) -> Registry:
        """Every job its workers run: ``registry`` plus ``internal_jobs`` (a job of
        ``registry`` wins over an internal one of the same name)."""
        worker = Registry(self.registry)
        for definition in internal_jobs(self.runs, delivery):
            if definition.name not in worker:
                worker.register(definition)
        return worker

    def public_registry(self) -> Registry:
        """``registry`` without the internal jobs: what the API lets clients enqueue."""
        internal = {definition.name for definition in internal_jobs(self.runs)}
        return Registry(
            definition for definition in self.registry if definition.name not in internal
        )
