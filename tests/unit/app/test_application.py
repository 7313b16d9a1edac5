"""What ``--app`` names: an ``Application`` (jobs, schema, runs, main job) or a bare registry."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from portside.app import Application, JobContext, JobDefinition, MainJob, Registry
from portside.app.loader import load_application, load_registry
from portside.app.runtime import WorkerRuntime
from portside.examples.dev import application as examples_app
from portside.ports import ConfigurationError, ValidationError

DEV_APP = "portside.examples.dev:application"


class Ping(BaseModel):
    target: str


async def ping(payload: Ping, ctx: JobContext) -> str:
    return payload.target


def _registry(*names: str) -> Registry:
    return Registry(JobDefinition(name=n, queue="pings", payload=Ping, handler=ping) for n in names)


def test_a_bare_registry_gets_webhook_deliveries_in_its_workers() -> None:
    application = Application(_registry("ping"))
    assert application.worker_registry().names() == ["ping", "webhook-deliver"]
    assert application.public_registry().names() == ["ping"]


def test_internal_jobs_never_become_public_and_the_app_s_own_win_in_workers() -> None:
    """An application that registered an internal job itself keeps its definition for its
    workers, and clients still cannot enqueue it."""
    application = Application(_registry("ping", "webhook-deliver"))
    worker = application.worker_registry()
    assert worker.get("webhook-deliver").queue == "pings"
    assert application.public_registry().names() == ["ping"]


def test_the_examples_bundle_jobs_runs_migrations_and_a_main_job() -> None:
    assert examples_app.runs is not None
    assert examples_app.migrate is not None
    assert examples_app.main_job is not None
    assert examples_app.main_job.name == "ingest"
    data = dict(examples_app.main_job.data())
    examples_app.registry.get("ingest").validate(data)
    worker = examples_app.worker_registry()
    assert {"ingest", "aggregate", "agent-run", "webhook-deliver"} <= set(worker.names())
    assert "agent-run" not in examples_app.public_registry()
    assert "agents-run:orchestrator" in worker.queues()


def test_load_application_takes_applications_registries_and_factories() -> None:
    assert load_application(DEV_APP) is examples_app
    wrapped = load_application("portside.examples.ingestion:registry")
    assert wrapped.runs is None
    assert wrapped.migrate is None
    assert wrapped.main_job is None
    assert "ingest" in wrapped.registry
    built = load_application("portside.examples.dev:build_application")
    assert built is not examples_app
    assert built.runs is not None


def test_load_registry_keeps_a_registry_and_gives_an_application_s_worker_jobs() -> None:
    from portside.examples.ingestion import registry

    assert load_registry("portside.examples.ingestion:registry") is registry
    assert load_registry(DEV_APP).names() == examples_app.worker_registry().names()


def test_something_else_is_refused_with_what_to_pass() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_application("portside.examples.dev:MAIN_JOB")
    message = str(caught.value)
    assert "is a str, not a portside Registry or Application" in message
    assert "point --app at a portside.app.Registry or Application" in message


def test_an_application_is_checked_when_it_is_made() -> None:
    with pytest.raises(ValidationError, match="main job 'pong' is not in") as caught:
        Application(_registry("ping"), main_job=MainJob("pong", dict))
    assert caught.value.fix == "name one of its jobs (ping)"
    with pytest.raises(ValidationError, match="got a list"):
        Application([])  # type: ignore[arg-type]


def test_a_main_job_makes_its_payload_when_asked() -> None:
    calls: list[int] = []

    def data() -> dict[str, str]:
        calls.append(1)
        return {"target": f"call-{len(calls)}"}

    job = MainJob("ping", data)
    assert calls == []
    assert job.data() == {"target": "call-1"}
    assert job.data() == {"target": "call-2"}


def test_a_runtime_runs_the_worker_registry_of_an_application() -> None:
    """What ``portside worker --app portside.examples.dev:application`` consumes."""
    from portside.adapters.memory import InMemoryOutbox, InMemoryQueue
    from portside.infra import Infra

    infra = Infra(queue=InMemoryQueue(), outbox=InMemoryOutbox())
    runtime = WorkerRuntime(load_registry(DEV_APP), infra)
    wanted = {"ingestion:ingest", "agents-run:orchestrator", "webhooks:deliver"}
    assert set(runtime.queues) >= wanted
