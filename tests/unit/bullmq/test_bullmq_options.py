"""Translation of portside job options into BullMQ's stored ``opts`` and back (Q1, Q3, Q5, Q7)."""

from __future__ import annotations

from portside.adapters.bullmq.jobs import keep_jobs, stored_options
from portside.adapters.bullmq.options import from_bullmq_opts, to_bullmq_opts
from portside.ports import Backoff, JobOptions, Retention


def test_q3_defaults_and_milliseconds() -> None:
    """Q3: attempts and delay always travel; durations become integer milliseconds."""
    opts = to_bullmq_opts(JobOptions(attempts=4, delay=1.5), custom_id=False)
    assert opts == {"attempts": 4, "delay": 1500}


def test_q3_backoffs_use_bullmq_types() -> None:
    """Q3: fixed and exponential are BullMQ's built-ins; a list is the custom type ``schedule``."""
    fixed = to_bullmq_opts(JobOptions(backoff=Backoff.fixed(2)), custom_id=False)
    assert fixed["backoff"] == {"type": "fixed", "delay": 2000}
    exponential = to_bullmq_opts(JobOptions(backoff=Backoff.exponential(0.5)), custom_id=False)
    assert exponential["backoff"] == {"type": "exponential", "delay": 500}
    listed = to_bullmq_opts(JobOptions(backoff=Backoff.schedule(1, 5, 30)), custom_id=False)
    assert listed["backoff"] == {"type": "schedule", "delays": [1000, 5000, 30000]}


def test_q1_q5_q7_other_options() -> None:
    """Q1, Q5, Q7: priority, dedupe, retention and the portside-only timeout."""
    options = JobOptions(
        job_id="order-1",
        priority=3,
        timeout=30,
        dedupe_key="day-1",
        dedupe_ttl=60,
        remove_on_complete=Retention(count=100, age=3600),
        remove_on_fail=5,
    )
    opts = to_bullmq_opts(options, custom_id=True)
    assert opts["jobId"] == "order-1"
    assert opts["priority"] == 3
    assert opts["portside"] == {"timeout": 30000}
    assert opts["de"] == {"id": "day-1", "ttl": 60000}
    assert opts["removeOnComplete"] == {"count": 100, "age": 3600}
    assert opts["removeOnFail"] == 5
    assert "jobId" not in to_bullmq_opts(JobOptions(), custom_id=False)


def test_q11_round_trip_for_scheduler_templates() -> None:
    """Q11: options stored on a job scheduler read back as the same portside options."""
    options = JobOptions(
        attempts=5,
        priority=2,
        backoff=Backoff.schedule(1, 5, 25),
        timeout=10,
        remove_on_complete=True,
        remove_on_fail=Retention(count=3),
    )
    back = from_bullmq_opts(to_bullmq_opts(options, custom_id=False))
    assert back == options


def test_q7_keep_jobs_matches_bullmq() -> None:
    """Q7: ``removeOnComplete``/``removeOnFail`` become BullMQ's ``keepJobs``."""
    assert keep_jobs(True) == {"count": 0}
    assert keep_jobs(False) == {"count": -1}
    assert keep_jobs(None) is None  # the job sets none: the worker's retention applies
    assert keep_jobs(7) == {"count": 7}
    assert keep_jobs({"age": 60}) == {"age": 60}


def test_q3_q5_worker_settings_from_stored_opts() -> None:
    """Q3, Q5: a worker reads attempts, backoff, retention and timeout from the job's opts."""
    stored = (
        '{"attempts":3,"delay":0,"backoff":{"type":"fixed","delay":10},"portside":{"timeout":2500}}'
    )
    settings = stored_options(stored)
    assert settings.attempts == 3
    assert settings.backoff == {"type": "fixed", "delay": 10}
    assert settings.timeout == 2.5
    assert settings.keep_completed is None
    assert stored_options(stored) is settings
    node_default = stored_options('{"attempts":0}')
    assert (node_default.attempts, node_default.timeout) == (1, None)
    assert stored_options("not json").attempts == 1
