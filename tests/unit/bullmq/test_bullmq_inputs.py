"""The BullMQ adapter accepts and refuses jobs exactly as the shared port checks do (Q1, Q2)."""

from __future__ import annotations

from typing import Any

import pytest

from portside.adapters.bullmq import inputs
from portside.adapters.bullmq.names import map_queue
from portside.adapters.bullmq.producer import prepare, prepare_bulk
from portside.ports import JobOptions, NewJob, ValidationError
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


def test_q2_adapter_inputs_are_the_shared_functions() -> None:
    """Q2: the adapter's argument checks are the port's, not copies that could drift."""
    assert inputs.coerce_options is shared.coerce_options
    assert inputs.coerce_new_job is shared.coerce_new_job
    assert inputs.encode_job is shared.encode_job
    assert inputs.encode_new_job is shared.encode_new_job
    assert inputs.coerce_rate_limit is shared.coerce_rate_limit
    assert inputs.check_sequence is shared.check_sequence
    assert inputs.check_seconds is shared.check_seconds
    assert inputs.check_callable is shared.check_callable
    assert inputs.check_id is shared.check_lookup_id
    assert inputs.check_concurrency is shared.check_concurrency


@pytest.mark.parametrize("value", [0, 10_001, True, 2.5])
def test_q6_concurrency_is_bounded(value: object) -> None:
    """Q6: a BullMQ worker takes 1 to 10000 jobs at once."""
    field, message = _error(inputs.check_concurrency, value)
    assert field == "concurrency"
    assert "concurrency must be an integer from 1 to 10000" in message
