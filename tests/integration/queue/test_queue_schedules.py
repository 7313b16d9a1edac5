"""Repeatable jobs as BullMQ job schedulers on real Redis (Q11)."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as redis

from portside.ports import Backoff, Job, JobOptions, QueuePort, Schedule, ValidationError

pytestmark = pytest.mark.integration


async def _done(job: Job) -> Any:
    return job.data


async def test_q11_every_schedule_runs_and_materialises_its_next_run(
    queue_adapter: QueuePort, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q11: the first run is due at once; taking it schedules the next one (as Node's worker
    does), and the scheduler reads back exactly as it was written."""
    options = JobOptions(attempts=4, backoff=Backoff.schedule(1, 5, 25), timeout=30)
    schedule = Schedule(
        scheduler_id="sync-energy-wholesale-5m",
        name="sync-energy-wholesale-5m",
        data={"source": "aemo"},
        every=300,
        options=options,
    )
    await queue_adapter.upsert_schedule("sync", schedule)
    assert await queue_adapter.list_schedules("sync") == [schedule]
    queue_adapter.consume("sync", _done)
    outcomes = await queue_adapter.drain("sync")  # type: ignore[attr-defined]
    assert [(o.name, o.status, o.result) for o in outcomes] == [
        ("sync-energy-wholesale-5m", "completed", {"source": "aemo"})
    ]
    assert outcomes[0].job_id.startswith("repeat:sync-energy-wholesale-5m:")
    delayed = [str(m) for m in await raw_redis.zrange(f"{redis_prefix}:sync:delayed", 0, -1)]
    assert len(delayed) == 1
    assert delayed[0].startswith("repeat:sync-energy-wholesale-5m:")
    assert delayed[0] != outcomes[0].job_id
    info = await queue_adapter.get_job("sync", delayed[0])
    assert info is not None
    assert (info.state, info.max_attempts) == ("delayed", 4)


async def test_q11_cron_schedule_is_idempotent(queue_adapter: QueuePort) -> None:
    """Q11: re-running the bootstrap keeps one scheduler and one pending job."""
    schedule = Schedule(
        scheduler_id="sync-housing-abs-daily",
        name="sync-housing-abs-daily",
        pattern="0 3 * * *",
        timezone="Australia/Sydney",
    )
    for _ in range(3):
        await queue_adapter.upsert_schedule("daily", schedule)
    assert await queue_adapter.list_schedules("daily") == [schedule]
    assert (await queue_adapter.counts("daily")).delayed == 1
    changed = schedule.model_copy(update={"pattern": "30 4 * * *"})
    await queue_adapter.upsert_schedule("daily", changed)
    assert [s.pattern for s in await queue_adapter.list_schedules("daily")] == ["30 4 * * *"]
    assert (await queue_adapter.counts("daily")).delayed == 1


async def test_q11_bad_schedules_name_the_field(queue_adapter: QueuePort) -> None:
    """Q11: a bad cron pattern, an unknown timezone or a fixed job id are refused clearly."""
    with pytest.raises(ValidationError) as pattern:
        await queue_adapter.upsert_schedule(
            "bad", Schedule(scheduler_id="s", name="n", pattern="every tuesday")
        )
    assert pattern.value.field == "pattern"
    with pytest.raises(ValidationError) as zone:
        await queue_adapter.upsert_schedule(
            "bad", Schedule(scheduler_id="s", name="n", pattern="0 3 * * *", timezone="Mars/Base")
        )
    assert zone.value.field == "timezone"
    with pytest.raises(ValidationError) as job_id:
        await queue_adapter.upsert_schedule(
            "bad",
            Schedule(scheduler_id="s", name="n", every=60, options=JobOptions(job_id="fixed")),
        )
    assert job_id.value.field == "schedule.options.job_id"
    assert await queue_adapter.list_schedules("bad") == []
