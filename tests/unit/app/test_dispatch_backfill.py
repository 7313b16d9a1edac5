"""Q1, Q2, A5: dispatch validates and enqueues; backfills use deterministic ids and dry runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import BaseModel

from portside.adapters.memory import InMemoryQueue
from portside.app import JobDefinition, Registry, RetryPolicy, dispatch, plan_backfill
from portside.app.runmode import META_KEY, split_run_mode
from portside.infra import Infra
from portside.ports import Backoff, ValidationError
from tests.unit.app.support import item_job


class Daily(BaseModel):
    organizationId: str
    integrationId: str
    date: dt.date


async def noop(payload: Any, ctx: Any) -> None:
    return None


def daily_registry() -> Registry:
    return Registry(
        [
            JobDefinition(
                name="ingest",
                queue="ingestion:ingest",
                payload=Daily,
                handler=noop,
                retry=RetryPolicy(attempts=5, backoff=Backoff.schedule(1, 5, 25)),
                id_keys=("organizationId", "integrationId", "date"),
                date_field="date",
            ),
            item_job(noop),
        ]
    )


async def test_q2_dispatch_rejects_invalid_payload_with_field_detail(app_infra: Infra) -> None:
    registry = daily_registry()

    with pytest.raises(ValidationError) as caught:
        await dispatch(registry, app_infra.queue, "ingest", {"organizationId": "o", "date": "x"})

    assert "integrationId: Field required" in str(caught.value)
    assert "date: Input should be a valid date" in str(caught.value)
    assert (await app_infra.queue.counts("ingestion:ingest")).waiting == 0


async def test_q1_dispatch_enqueues_with_retry_policy_and_manual_run_mode(
    app_infra: Infra,
) -> None:
    registry = daily_registry()
    data = {"organizationId": "org-1", "integrationId": "xero-1", "date": "2024-05-01"}

    ref = await dispatch(registry, app_infra.queue, "ingest", data)

    info = await app_infra.queue.get_job("ingestion:ingest", ref.id)
    assert info is not None
    assert info.max_attempts == 5
    payload, mode = split_run_mode(info.data)
    assert payload == data
    assert mode == "manual"
    assert info.data[META_KEY] == {"mode": "manual"}


async def test_a5_deterministic_and_explicit_ids_make_dispatch_idempotent(
    app_infra: Infra,
) -> None:
    registry = daily_registry()
    data = {"organizationId": "org-1", "integrationId": "xero-1", "date": "2024-05-01"}

    first = await dispatch(registry, app_infra.queue, "ingest", data, deterministic_id=True)
    again = await dispatch(registry, app_infra.queue, "ingest", data, deterministic_id=True)
    explicit = await dispatch(registry, app_infra.queue, "item", {"itemId": "a"}, job_id="job-a")
    explicit_again = await dispatch(
        registry, app_infra.queue, "item", {"itemId": "a"}, job_id="job-a"
    )

    assert first.id == again.id == "ingest.org-1.xero-1.2024-05-01"
    assert (await app_infra.queue.counts("ingestion:ingest")).waiting == 1
    assert explicit.id == explicit_again.id == "job-a"
    assert (await app_infra.queue.counts("items")).waiting == 1
    with pytest.raises(ValidationError, match="contains ':'"):
        await dispatch(registry, app_infra.queue, "item", {"itemId": "a"}, job_id="a:b")


async def test_a5_backfill_of_30_days_enqueues_30_jobs_once(app_infra: Infra) -> None:
    registry = daily_registry()
    base = {"organizationId": "org-1", "integrationId": "xero-1"}
    plan = plan_backfill(registry, "ingest", dt.date(2024, 5, 1), dt.date(2024, 5, 30), base)
    progress: list[int] = []

    first = await plan.run(app_infra.queue, chunk_size=7, on_progress=progress.append)
    second = await plan.run(app_infra.queue)

    assert (first.planned, first.enqueued, first.existing) == (30, 30, 0)
    assert (second.planned, second.enqueued, second.existing) == (30, 0, 30)
    assert second.existing_states == {"waiting": 30}
    assert sum(progress) == 30
    assert len(progress) == 5
    assert (await app_infra.queue.counts("ingestion:ingest")).waiting == 30
    assert first.new_job_ids[0] == "ingest.org-1.xero-1.2024-05-01"
    assert first.new_job_ids[-1] == "ingest.org-1.xero-1.2024-05-30"
    info = await app_infra.queue.get_job("ingestion:ingest", first.new_job_ids[0])
    assert info is not None
    assert split_run_mode(info.data)[1] == "backfill"
    assert "30 days, enqueued 0, 30 already present (waiting 30)" in second.summary()


async def test_a5_dry_run_enqueues_nothing_and_reports_what_would_happen(
    app_infra: Infra, fake_queue: InMemoryQueue
) -> None:
    registry = daily_registry()
    base = {"organizationId": "org-1", "integrationId": "xero-1"}
    await plan_backfill(registry, "ingest", dt.date(2024, 5, 1), dt.date(2024, 5, 2), base).run(
        app_infra.queue
    )

    plan = plan_backfill(registry, "ingest", dt.date(2024, 5, 1), dt.date(2024, 5, 4), base)
    report = await plan.run(app_infra.queue, dry_run=True)

    assert report.dry_run
    assert (report.enqueued, report.existing) == (2, 2)
    assert report.new_job_ids == [
        "ingest.org-1.xero-1.2024-05-03",
        "ingest.org-1.xero-1.2024-05-04",
    ]
    assert (await app_infra.queue.counts("ingestion:ingest")).waiting == 2
    assert "would enqueue 2" in report.summary()


@pytest.mark.parametrize(
    ("job", "start", "end", "data", "words"),
    [
        ("ingest", "2024-05-02", "2024-05-01", {}, "--from 2024-05-02 is after --to 2024-05-01"),
        ("item", "2024-05-01", "2024-05-01", {}, "job 'item' cannot be backfilled"),
        ("ingest", "2024-05-01", "2024-05-01", {"date": "x"}, "--data sets 'date'"),
        ("ingest", "2024-05-01", "2024-05-01", {}, "organizationId: Field required"),
        ("ingest", "2000-01-01", "2024-01-01", {}, "over the 3660-day limit"),
    ],
)
def test_a5_backfill_rejects_bad_requests(
    job: str, start: str, end: str, data: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        plan_backfill(
            daily_registry(), job, dt.date.fromisoformat(start), dt.date.fromisoformat(end), data
        )
    assert words in str(caught.value)
