"""Renamed port fields keep their old names for one release, with a DeprecationWarning."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portside.ports import DeadLetter, NewDeadLetter, QueueRunStats

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _letter_fields() -> dict[str, object]:
    return {
        "queue": "q",
        "job_id": "j",
        "name": "n",
        "data": {},
        "error_class": "E",
        "error_message": "m",
        "failure_kind": "permanent",
        "failed_at": NOW,
    }


def test_dead_letter_attempts_is_now_attempts_made() -> None:
    with pytest.deprecated_call(match="attempts_made"):
        new = NewDeadLetter(**_letter_fields(), attempts=2)
    assert new.attempts_made == 2
    with pytest.deprecated_call(match="NewDeadLetter.attempts is deprecated"):
        assert new.attempts == 2
    stored = DeadLetter(id="1", **_letter_fields(), attempts_made=3)
    with pytest.deprecated_call(match="DeadLetter.attempts is deprecated"):
        assert stored.attempts == 3


def test_queue_run_stats_attempts_is_now_finished() -> None:
    with pytest.deprecated_call(match="use finished"):
        stats = QueueRunStats(queue="q", attempts=4, failed=1)
    assert stats.finished == 4
    assert stats.failure_rate == 0.25
    with pytest.deprecated_call(match="QueueRunStats.attempts is deprecated"):
        assert stats.attempts == 4
