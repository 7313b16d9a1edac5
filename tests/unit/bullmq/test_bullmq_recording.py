"""Which BullMQ commands record an attempt's end, and when they fetch the next job (Q3, Q4)."""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]

from portside.adapters.bullmq.jobs import BullMQJob
from portside.adapters.bullmq.names import map_queue
from portside.adapters.bullmq.transport.scripts import script
from portside.adapters.bullmq.worker.attempts import Ending, record_commands
from portside.adapters.bullmq.worker.commands import QueueCommands

QUEUE = map_queue("agents-run:orchestrator", "bull")
COMMANDS = QueueCommands(QUEUE, lock_duration_ms=30_000, worker_name="w1")
FETCH = COMMANDS.fetch_opts("tok:0", None)


class _NoActions:
    """A worker that is never asked for anything (``JobActions``)."""

    async def progress(self, job_id: str, progress: Any) -> None:
        return None

    async def log(self, job: BullMQJob, line: str) -> None:
        return None

    async def children_values(self, job_id: str) -> dict[str, Any]:
        return {}


def _job(attempt: int = 1) -> BullMQJob:
    fields = {"name": "run", "data": "{}", "opts": '{"attempts":3}', "atm": str(attempt - 1)}
    return BullMQJob("j1", fields, QUEUE.portside, "tok:0", _NoActions())


def _script(command: tuple[Any, ...]) -> str:
    assert command[0] == "EVALSHA"
    return next(
        name
        for name in ("moveToFinished", "moveToDelayed", "retryJob")
        if script(name).sha == command[1]
    )


def test_q7_completion_fetches_the_next_job_in_the_same_script() -> None:
    """Q7: completing is one ``moveToFinished`` with fetch-next set while intake is open."""
    ending = Ending(_job(), "completed", value='{"ok":true}', result={"ok": True})
    commands, fetches = record_commands(
        COMMANDS, ending, fetch_opts=FETCH, limiter={"max": 2, "duration": 1000}, max_events=100
    )
    assert fetches
    assert len(commands) == 1
    (command,) = commands
    assert _script(command) == "moveToFinished"
    args = command[3 + command[2] :]
    assert args[:6] == ("j1", args[1], "returnvalue", '{"ok":true}', "completed", "1")
    opts = msgpack.unpackb(args[7])
    assert opts["limiter"] == {"max": 2, "duration": 1000}
    assert opts["keepJobs"] == {"count": -1}
    closed, fetches = record_commands(
        COMMANDS, ending, fetch_opts=None, limiter=None, max_events=100
    )
    assert not fetches
    assert closed[0][3 + closed[0][2] + 5] == ""


def test_q3_retry_with_backoff_emits_retrying_then_delays() -> None:
    """Q3, Q8: a retry after a delay is the ``retrying`` event, then ``moveToDelayed``."""
    fields = {"failedReason": "E: x", "stacktrace": "[]", "pskind": "transient"}
    ending = Ending(
        _job(2), "retrying", error="E: x", failure_kind="transient", delay_ms=5000, fields=fields
    )
    (event, delayed), fetches = record_commands(
        COMMANDS, ending, fetch_opts=FETCH, limiter=None, max_events=100
    )
    assert fetches
    assert event[:2] == ("XADD", QUEUE.key("events"))
    assert dict(zip(event[6::2], event[7::2], strict=True))["attemptsMade"] == "2"
    assert _script(delayed) == "moveToDelayed"


def test_q3_immediate_retry_cannot_fetch() -> None:
    """Q3: without backoff BullMQ's ``retryJob`` runs, which fetches nothing."""
    fields = {"failedReason": "E: x", "stacktrace": "[]", "pskind": "transient"}
    ending = Ending(_job(), "retrying", error="E: x", failure_kind="transient", fields=fields)
    (_, retry), fetches = record_commands(
        COMMANDS, ending, fetch_opts=FETCH, limiter=None, max_events=100
    )
    assert not fetches
    assert _script(retry) == "retryJob"


def test_q4_final_failure_stores_reason_and_classification() -> None:
    """Q4: a final failure is ``moveToFinished`` to failed with the fields portside adds."""
    fields = {"failedReason": "PermanentError: no", "stacktrace": "[]", "pskind": "permanent"}
    ending = Ending(
        _job(),
        "failed",
        value="PermanentError: no",
        error="PermanentError: no",
        failure_kind="permanent",
        fields=fields,
    )
    (command,), _ = record_commands(COMMANDS, ending, fetch_opts=FETCH, limiter=None, max_events=1)
    args = command[3 + command[2] :]
    assert args[2:5] == ("failedReason", "PermanentError: no", "failed")
    stored = msgpack.unpackb(args[8])
    assert dict(zip(stored[::2], stored[1::2], strict=True))["pskind"] == "permanent"
