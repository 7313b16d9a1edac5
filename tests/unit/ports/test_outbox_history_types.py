"""Outbox and history value types refuse bad values with portside errors too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from portside.ports import OutboxEvent, ValidationError
from portside.ports.history import NewDeadLetter, RunFinish, RunStart

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("model", "kwargs", "field", "message"),
    [
        (
            OutboxEvent,
            {"id": "e", "stream": "s", "seq": "x", "type": "t", "payload": {}, "created_at": NOW},
            "seq",
            "OutboxEvent.seq is invalid",
        ),
        (
            RunStart,
            {
                "job_id": "1",
                "queue": "q",
                "name": "n",
                "attempt": 0,
                "run_mode": "manual",
                "started_at": NOW,
            },
            "attempt",
            "RunStart.attempt is invalid",
        ),
        (
            RunStart,
            {
                "job_id": "1",
                "queue": "q",
                "name": "n",
                "attempt": 1,
                "run_mode": "cron",
                "started_at": NOW,
            },
            "run_mode",
            "RunStart.run_mode is invalid",
        ),
        (
            RunStart,
            {
                "job_id": "1",
                "queue": "q",
                "name": "n",
                "attempt": 1,
                "run_mode": "manual",
                "started_at": datetime(2026, 1, 1),
            },
            "started_at",
            "timezone",
        ),
        (RunFinish, {"status": "done", "finished_at": NOW}, "status", "RunFinish.status"),
        (
            NewDeadLetter,
            {
                "queue": "q",
                "job_id": "1",
                "name": "n",
                "data": {},
                "error_class": "E",
                "error_message": "m",
                "failure_kind": "fatal",
                "attempts_made": 1,
                "failed_at": NOW,
            },
            "failure_kind",
            "NewDeadLetter.failure_kind is invalid",
        ),
    ],
)
def test_bad_values_name_the_field(
    model: Any, kwargs: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        model(**kwargs)
    assert message in str(info.value), str(info.value)
    assert info.value.field == field
