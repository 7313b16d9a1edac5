"""A3, A4, Q2: a job whose stored data cannot be read is recorded, dead-lettered and failed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from portside.adapters.memory import VirtualClock
from portside.adapters.memory.history import InMemoryHistory
from portside.app import JobContext, Registry
from portside.app.attempts import AttemptRunner
from portside.app.metrics import WorkerMetrics
from portside.infra import Infra
from portside.ports import ValidationError
from tests.unit.app.support import Captured, Item, item_job


async def never(payload: Item, ctx: JobContext) -> None:
    raise AssertionError("the handler must not run for unreadable data")


@dataclass
class UnreadableJob:
    """A queue job whose ``data`` raises, as the BullMQ adapter's does for corrupt bytes."""

    id: str = "corrupt-1"
    name: str = "item"
    queue: str = "items"
    attempt: int = 1
    max_attempts: int = 3

    @property
    def data(self) -> dict[str, Any]:
        raise ValidationError(
            "the stored job data is not a JSON object",
            fix="enqueue a JSON object",
            field="data",
        )

    async def update_progress(self, progress: int | float | dict[str, Any]) -> None:
        raise AssertionError("no progress for unreadable data")

    async def log(self, line: str) -> None:
        raise AssertionError("no logs for unreadable data")

    async def children_values(self) -> dict[str, Any]:
        return {}


@dataclass
class UnreadableRawJob(UnreadableJob):
    """The adapter's job also carries the stored text."""

    raw_data: str = "[1,2]"


def runner(app_infra: Infra, clock: VirtualClock, metrics: WorkerMetrics) -> AttemptRunner:
    history = app_infra.require_history()
    return AttemptRunner(Registry([item_job(never)]), app_infra, history, metrics, clock.datetime)


@pytest.mark.parametrize(
    ("job", "raw"),
    [
        (UnreadableRawJob(), "[1,2]"),
        (UnreadableJob(), None),
        (UnreadableRawJob(raw_data='{"a":\x00'), '{"a":\\x00'),
    ],
    ids=["raw", "no-raw", "nul"],
)
async def test_a4_unreadable_job_data_is_recorded_and_dead_lettered_once(
    app_infra: Infra,
    clock: VirtualClock,
    history: InMemoryHistory,
    captured_debug: Captured,
    job: UnreadableJob,
    raw: str | None,
) -> None:
    """No retry can fix stored bytes: one failed run, one dead letter with the raw text."""
    metrics = WorkerMetrics()
    attempt = runner(app_infra, clock, metrics)

    with pytest.raises(ValidationError, match="not a JSON object") as raised:
        await attempt(job)

    assert AttemptRunner.classify(raised.value) == "permanent"
    (run,) = await history.list_runs(job_id="corrupt-1")
    assert (run.status, run.failure_kind, run.error_class, run.run_mode) == (
        "failed",
        "permanent",
        "ValidationError",
        "manual",
    )
    assert run.error_message is not None
    assert "not a JSON object" in run.error_message
    (letter,) = await history.list_failures()
    assert (letter.job_id, letter.queue, letter.name, letter.attempts_made) == (
        "corrupt-1",
        "items",
        "item",
        1,
    )
    assert letter.data == {"raw": raw}
    assert letter.error_class == "ValidationError"
    assert letter.failure_kind == "permanent"
    events = [record.getMessage() for record in captured_debug.records]
    assert events == ["job.started", "job.failed", "job.dead_lettered"]
    failed = metrics.registry.get_sample_value(
        "portside_attempts_failed_total",
        {"queue": "items", "job": "item", "classification": "permanent", "final": "true"},
    )
    assert failed == 1.0


async def test_a4_unreadable_data_of_a_job_not_on_its_first_attempt_is_final_too(
    app_infra: Infra, clock: VirtualClock, history: InMemoryHistory
) -> None:
    """Attempts left do not matter: the failure is permanent, so it is dead-lettered now."""
    attempt = runner(app_infra, clock, WorkerMetrics())

    with pytest.raises(ValidationError):
        await attempt(UnreadableRawJob(attempt=2, max_attempts=5))

    assert [run.status for run in await history.list_runs()] == ["failed"]
    assert [letter.attempts_made for letter in await history.list_failures()] == [2]
