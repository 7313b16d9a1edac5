"""Q11: scheduler bootstrap is idempotent and removes schedules the registry no longer has."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from portside.app import JobDefinition, JobSchedule, Registry, sync_schedules
from portside.app.runmode import split_run_mode
from portside.infra import Infra
from portside.ports import Schedule


class Empty(BaseModel):
    region: str = "ALL"


async def noop(payload: Any, ctx: Any) -> None:
    return None


def job(name: str, queue: str = "sync", **schedule: Any) -> JobDefinition[Empty]:
    return JobDefinition(
        name=name, queue=queue, payload=Empty, handler=noop, schedule=JobSchedule(**schedule)
    )


async def test_q11_bootstrap_twice_creates_no_duplicates(app_infra: Infra) -> None:
    registry = Registry(
        [
            job("every-5m", every=300),
            job("hourly", pattern="0 * * * *", data={"region": "NSW1"}),
            job("daily", queue="other", pattern="0 6 * * *", timezone="Australia/Sydney"),
        ]
    )

    first = await sync_schedules(registry, app_infra.queue)
    second = await sync_schedules(registry, app_infra.queue)

    assert first.created == ["other/daily", "sync/every-5m", "sync/hourly"]
    assert second.created == second.updated == second.removed == []
    assert sorted(second.unchanged) == sorted(first.created)
    schedules = {s.scheduler_id: s for s in await app_infra.queue.list_schedules("sync")}
    assert sorted(schedules) == ["every-5m", "hourly"]
    payload, mode = split_run_mode(schedules["hourly"].data)
    assert payload == {"region": "NSW1"}
    assert mode == "scheduled"
    assert schedules["every-5m"].every == 300
    assert len(await app_infra.queue.list_schedules("other")) == 1


async def test_q11_changed_and_retired_schedules_are_updated_and_removed(app_infra: Infra) -> None:
    await sync_schedules(
        Registry([job("a", every=60), job("b", every=60), job("gone", queue="old", every=60)]),
        app_infra.queue,
    )
    await app_infra.queue.upsert_schedule(
        "sync", Schedule(scheduler_id="stray", name="stray", every=10)
    )

    report = await sync_schedules(
        Registry([job("a", every=120)]), app_infra.queue, prune_queues=["old"]
    )

    assert report.updated == ["sync/a"]
    assert report.removed == ["old/gone", "sync/b", "sync/stray"]
    (only,) = await app_infra.queue.list_schedules("sync")
    assert (only.scheduler_id, only.every) == ("a", 120)
    assert await app_infra.queue.list_schedules("old") == []
    assert report.summary() == "schedules: 0 created, 1 updated, 0 unchanged, 3 removed"
