"""Job schedulers of the BullMQ adapter: checked by the port's cron rules, read leniently (Q11)."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from portside.adapters.bullmq.names import map_queue
from portside.adapters.bullmq.schedules import Schedules
from portside.ports import Schedule, ValidationError

QUEUE = map_queue("daily", "bull")


class _SchedulerQueue:
    """Stands in for ``bullmq.Queue``: records upserts, returns the records it was given."""

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        self.records = records or []
        self.upserts: list[tuple[Any, ...]] = []

    async def upsertJobScheduler(self, *args: Any) -> None:
        self.upserts.append(args)

    async def getJobSchedulers(self, start: int, end: int, asc: bool) -> list[dict[str, Any]]:
        return self.records


def _schedules(monkeypatch: pytest.MonkeyPatch, queue: _SchedulerQueue) -> Schedules:
    schedules = Schedules(cast(Redis, None))
    monkeypatch.setattr(schedules, "_queue", lambda target: queue)
    return schedules


async def test_q11_cron_schedule_is_sent_with_its_pattern_and_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Q11: the pattern and IANA zone reach ``upsertJobScheduler`` as Node's repeat options."""
    queue = _SchedulerQueue()
    schedule = Schedule(
        scheduler_id="nightly", name="sync", pattern="0 3 * * *", timezone="Australia/Sydney"
    )
    await _schedules(monkeypatch, queue).upsert(QUEUE, schedule)
    ((scheduler_id, repeat, name, data, _opts),) = queue.upserts
    assert (scheduler_id, name, data) == ("nightly", "sync", {})
    assert repeat == {"pattern": "0 3 * * *", "tz": "Australia/Sydney"}


async def test_q11_a_schedule_may_be_given_as_a_dict_like_the_fakes_accept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Q11: the adapter takes what the in-memory fake takes: a Schedule or a dict of its fields."""
    queue = _SchedulerQueue()
    await _schedules(monkeypatch, queue).upsert(
        QUEUE, {"scheduler_id": "tick", "name": "tick", "every": 1.5}
    )
    assert queue.upserts[0][1] == {"every": 1500}
    with pytest.raises(ValidationError) as bad:
        await _schedules(monkeypatch, queue).upsert(
            QUEUE, {"scheduler_id": "tick", "name": "tick", "pattern": "0 24 * * *"}
        )
    assert bad.value.field == "schedule.pattern"
    assert len(queue.upserts) == 1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"pattern": "0 24 * * *"}, "schedule.pattern", "pattern '0 24 * * *': hour value 24"),
        ({"pattern": "0 0 9 * * 5-7"}, "schedule.pattern", "day of week 7"),
        ({"pattern": "0 0 30 2 *"}, "schedule.pattern", "never matches a real date"),
        (
            {"pattern": "0 3 * * *", "timezone": "Mars/Base"},
            "schedule.timezone",
            "unknown timezone",
        ),
    ],
)
async def test_q11_unchecked_schedules_are_refused_by_the_port_rules_before_any_write(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], field: str, message: str
) -> None:
    """Q11: a Schedule built without validation (model_construct) still meets the port's
    cron and time-zone checks, named ``schedule.pattern``/``schedule.timezone``, and nothing
    is written."""
    queue = _SchedulerQueue()
    schedule = Schedule.model_construct(scheduler_id="s", name="n", every=None, **fields)
    with pytest.raises(ValidationError) as info:
        await _schedules(monkeypatch, queue).upsert(QUEUE, schedule)
    assert info.value.field == field
    assert message in str(info.value)
    assert queue.upserts == []


async def test_q12_node_scheduler_with_a_pattern_portside_refuses_is_skipped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Q11, Q12: Node BullMQ reads day-of-week 7 in a 6-field pattern, portside refuses it;
    listing leaves that scheduler out (logging why) and returns the others."""
    node_only = {"key": "weekend", "name": "weekend", "pattern": "0 0 9 * * 5-7", "next": 1}
    readable = {
        "key": "nightly",
        "name": "sync",
        "pattern": "0 3 * * *",
        "tz": "UTC",
        "next": 2,
        "template": {"data": {"source": "node"}},
    }
    queue = _SchedulerQueue([node_only, readable])
    with caplog.at_level(logging.WARNING, logger="portside.adapters.bullmq"):
        listed = await _schedules(monkeypatch, queue).list(QUEUE)
    assert listed == [
        Schedule(
            scheduler_id="nightly",
            name="sync",
            data={"source": "node"},
            pattern="0 3 * * *",
            timezone="UTC",
        )
    ]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "'weekend'" in record.getMessage()
    assert "daily" in record.getMessage()
    assert "day of week 7" in record.getMessage()
