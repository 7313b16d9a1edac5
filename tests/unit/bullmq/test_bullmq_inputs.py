"""The BullMQ adapter accepts and refuses jobs exactly as the shared port checks do (Q1, Q2)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest

import portside.adapters.bullmq as bullmq_adapter
from portside.adapters.bullmq import BullMQQueue
from portside.adapters.bullmq.names import map_queue
from portside.adapters.bullmq.producer import prepare, prepare_bulk
from portside.ports import Job, JobOptions, NewJob, ValidationError
from portside.ports import inputs as shared
from portside.ports.inputs import check_job, check_new_job

QUEUE = map_queue("agents-run:orchestrator", "bull")

BAD_JOBS: list[tuple[Any, Any, Any]] = [
    ("", {}, None),
    ("bad\nname", {}, None),
    (7, {}, None),
    ("x", {"n": float("nan")}, None),
    ("x", {"n": 2**60}, None),
    ("x", ["not", "a", "dict"], None),
    ("x", {}, {"delay": -1}),
    ("x", {}, {"job_id": "a:b"}),
    ("x", {}, {"priority": 2_097_152}),
    ("x", {}, "fast"),
]


def _error(call: Any, *args: Any) -> tuple[str | None, str]:
    with pytest.raises(ValidationError) as info:
        call(*args)
    return info.value.field, str(info.value)


@pytest.mark.parametrize(("name", "data", "options"), BAD_JOBS)
def test_q2_single_job_errors_match_the_shared_check(name: Any, data: Any, options: Any) -> None:
    """Q2: enqueue refuses what the fakes refuse, with the same field and message."""
    assert _error(prepare, QUEUE, name, data, options) == _error(check_job, name, data, options)


@pytest.mark.parametrize(("name", "data", "options"), BAD_JOBS)
def test_q1_bulk_entry_errors_match_the_shared_check(name: Any, data: Any, options: Any) -> None:
    """Q1, Q2: a bad bulk entry is named ``jobs[1]...`` exactly as the fakes name it."""
    entry = {"name": name, "data": data, "options": options}
    jobs = [NewJob(name="ok", data={}), entry]
    assert _error(prepare_bulk, QUEUE, jobs) == _error(check_new_job, entry, "jobs[1]")


def test_q1_accepted_jobs_carry_the_checked_name_and_options() -> None:
    """Q1: what passes the shared check is what the adapter sends."""
    prepared = prepare(QUEUE, "charge", {"n": 1}, {"job_id": "order-42", "priority": 3})
    checked = check_job("charge", {"n": 1}, {"job_id": "order-42", "priority": 3})
    assert (prepared.ref.id, prepared.ref.name) == ("order-42", checked.name)
    assert checked.options == JobOptions(job_id="order-42", priority=3)


SHARED_CHECKS = (
    "coerce_options",
    "coerce_new_job",
    "encode_job",
    "encode_new_job",
    "coerce_rate_limit",
    "check_sequence",
    "check_seconds",
    "check_callable",
    "check_lookup_id",
    "check_concurrency",
)


def _adapter_modules() -> list[Any]:
    found = pkgutil.walk_packages(bullmq_adapter.__path__, f"{bullmq_adapter.__name__}.")
    return [bullmq_adapter, *(importlib.import_module(info.name) for info in found)]


def test_q2_adapter_inputs_are_the_shared_functions() -> None:
    """Q2: the adapter's argument checks are the port's, not copies that could drift."""
    used: set[str] = set()
    for module in _adapter_modules():
        for name in SHARED_CHECKS:
            if hasattr(module, name):
                assert getattr(module, name) is getattr(shared, name), (module.__name__, name)
                used.add(name)
    # coerce_options and coerce_new_job run inside encode_job / encode_new_job.
    assert used == set(SHARED_CHECKS) - {"coerce_options", "coerce_new_job"}


@pytest.mark.parametrize("value", [0, 10_001, True, 2.5])
def test_q6_concurrency_is_bounded(value: object) -> None:
    """Q6: a BullMQ worker takes 1 to 10000 jobs at once."""
    adapter = BullMQQueue("redis://127.0.0.1:1")

    async def handler(job: Job) -> None:
        return None

    field, message = _error(
        lambda: adapter.consume("q", handler, concurrency=value)  # type: ignore[arg-type]
    )
    assert field == "concurrency"
    assert "concurrency must be an integer from 1 to 10000" in message
