"""Retry delays computed from BullMQ ``backoff`` options (Q3)."""

from __future__ import annotations

import pytest

from portside.adapters.bullmq.options import to_bullmq_opts
from portside.adapters.bullmq.retry_delays import UnknownBackoffError, retry_delay
from portside.ports import Backoff, JobOptions


def test_q3_schedule_1s_5s_30s_repeats_the_last_entry() -> None:
    """Q3: the explicit list gives 1 s, 5 s, 30 s, then 30 s again."""
    backoff = {"type": "schedule", "delays": [1000, 5000, 30000]}
    assert [retry_delay(backoff, n) for n in (1, 2, 3, 4)] == [1000, 5000, 30000, 30000]


def test_q3_exponential_and_fixed_follow_bullmq() -> None:
    """Q3: exponential doubles from the base delay; fixed stays; a number is fixed."""
    exponential = {"type": "exponential", "delay": 1000}
    assert [retry_delay(exponential, n) for n in (1, 2, 3)] == [1000, 2000, 4000]
    assert retry_delay({"type": "fixed", "delay": 250}, 7) == 250
    assert retry_delay(300, 2) == 300
    assert retry_delay(None, 1) == 0


def test_q3_matches_the_port_formula() -> None:
    """Q3: the worker's delays equal ``Backoff.delay_for`` of the port (what the fake uses)."""
    for backoff in (Backoff.fixed(2), Backoff.exponential(1.5), Backoff.schedule(1, 5, 25)):
        stored = to_bullmq_opts(JobOptions(backoff=backoff), custom_id=False)["backoff"]
        for retry in range(1, 6):
            assert retry_delay(stored, retry) == round(backoff.delay_for(retry) * 1000)


def test_q3_jitter_stays_within_bounds() -> None:
    """Q3: Node's ``jitter`` option spreads delays below the nominal one."""
    backoff = {"type": "exponential", "delay": 1000, "jitter": 0.5}
    for _ in range(50):
        assert 1000 <= retry_delay(backoff, 2) <= 2000


def test_q3_unknown_custom_type_is_reported() -> None:
    """Q3: a Node-only custom strategy cannot be computed here."""
    with pytest.raises(UnknownBackoffError):
        retry_delay({"type": "my-node-strategy"}, 1)
