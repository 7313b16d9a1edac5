"""A7: example jobs on the fakes: idempotent writes and visible failure classification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from portside.adapters.memory import InMemoryQueue
from portside.adapters.memory.history import InMemoryHistory
from portside.app import Registry, WorkerRuntime, dispatch
from portside.examples.ingestion import FakeSourceClient, InMemoryExampleStore, build_registry
from portside.infra import Infra

INGEST = {"organizationId": "org-1", "integrationId": "xero-1", "date": "2024-05-01"}


@pytest.fixture
def store() -> InMemoryExampleStore:
    return InMemoryExampleStore()


@pytest.fixture
def registry(store: InMemoryExampleStore) -> Registry:
    return build_registry(source=FakeSourceClient(), store=store)


async def test_a7_ingest_stores_records_and_queues_the_aggregate(
    app_infra: Infra,
    fake_queue: InMemoryQueue,
    store: InMemoryExampleStore,
    registry: Registry,
    make_runtime: Callable[..., WorkerRuntime],
) -> None:
    async with make_runtime(registry):
        ref = await dispatch(registry, app_infra.queue, "ingest", INGEST)
        await fake_queue.drain("ingestion:ingest")
        await fake_queue.drain("ingestion:aggregate")

    info = await app_infra.queue.get_job("ingestion:ingest", ref.id)
    assert info is not None
    assert info.state == "completed"
    assert info.result["records"] == len(store.records) > 0
    (aggregate_job,) = fake_queue.jobs("ingestion:aggregate")
    assert aggregate_job.state == "completed"
    (totals,) = store.aggregates.values()
    assert totals[0] == len(store.records)
    assert aggregate_job.result == {
        "records": totals[0],
        "total": str(totals[1]),
        "changed": True,
    }


async def test_a7_replaying_ingest_and_syncs_changes_nothing(
    app_infra: Infra,
    fake_queue: InMemoryQueue,
    store: InMemoryExampleStore,
    registry: Registry,
    make_runtime: Callable[..., WorkerRuntime],
) -> None:
    async with make_runtime(registry):
        for _ in range(2):
            await dispatch(registry, app_infra.queue, "ingest", INGEST)
            for name in (
                "sync-energy-wholesale-5m",
                "sync-energy-retail-prd-hourly",
                "sync-housing-abs-daily",
            ):
                await dispatch(registry, app_infra.queue, name, {"date": "2024-05-01"})
            await fake_queue.drain()

    results: dict[str, list[Any]] = {}
    for job in fake_queue.jobs():
        results.setdefault(job.name, []).append(job.result)
    first_ingest, replay = results["ingest"]
    assert first_ingest["changed"] > 0
    assert replay["changed"] == 0
    assert replay["aggregateJobId"] is None  # nothing changed, nothing to re-aggregate
    for name, rows in (
        ("sync-energy-wholesale-5m", 5 * 288),
        ("sync-energy-retail-prd-hourly", 20),
        ("sync-housing-abs-daily", 48),
    ):
        first, again = results[name]
        assert (first["rows"], first["changed"]) == (rows, rows)
        assert (again["rows"], again["changed"]) == (rows, 0)
    assert len(store.wholesale) == 5 * 288


@pytest.mark.parametrize(
    ("integration", "statuses", "kind"),
    [
        ("revoked-xero", ["failed"], "permanent"),
        ("flaky2-xero", ["retrying", "retrying", "completed"], None),
        ("down-xero", ["retrying", "retrying", "failed"], "transient"),
    ],
)
async def test_q4_source_failures_are_classified_by_the_registry(
    app_infra: Infra,
    fake_queue: InMemoryQueue,
    history: InMemoryHistory,
    registry: Registry,
    make_runtime: Callable[..., WorkerRuntime],
    integration: str,
    statuses: list[str],
    kind: str | None,
) -> None:
    outcomes = []
    async with make_runtime(registry, queues=["ingestion:ingest"]):
        await dispatch(
            registry, app_infra.queue, "ingest", {**INGEST, "integrationId": integration}
        )
        outcomes += await fake_queue.drain("ingestion:ingest")
        for delay in (1, 5):
            await fake_queue.advance(delay)
            outcomes += await fake_queue.drain("ingestion:ingest")

    assert [o.status for o in outcomes] == statuses
    failures = await history.list_failures()
    if kind is None:
        assert failures == []
    else:
        (failure,) = failures
        assert failure.failure_kind == kind
        assert failure.attempts_made == len(statuses)


async def test_a7_sql_store_refuses_an_outbox_without_sql(
    app_infra: Infra,
    fake_queue: InMemoryQueue,
    history: InMemoryHistory,
    make_runtime: Callable[..., WorkerRuntime],
) -> None:
    registry = build_registry()  # SqlExampleStore on the in-memory outbox
    async with make_runtime(registry, queues=["sync:housing"]):
        await dispatch(registry, app_infra.queue, "sync-housing-abs-daily", {"date": "2024-05-01"})
        await fake_queue.drain("sync:housing")

    (run,) = await history.list_runs()
    assert run.error_class == "ConfigurationError"
    assert "InMemoryExampleStore" in (run.error_message or "")


async def test_a7_fake_source_is_deterministic() -> None:
    import datetime as dt

    one, two = FakeSourceClient(), FakeSourceClient()
    day = dt.date(2024, 5, 1)

    assert await one.fetch_records("o", "i", day) == await two.fetch_records("o", "i", day)
    assert await one.fetch_wholesale_prices(day) == await two.fetch_wholesale_prices(day)
    assert await one.fetch_records("o", "i", day) != await one.fetch_records("o", "j", day)
