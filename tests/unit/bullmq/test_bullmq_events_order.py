"""Attempt numbers reconstructed from the order of BullMQ stream entries (Q8)."""

from __future__ import annotations

from portside.adapters.bullmq.events import resolve_attempts, start_id


def _entries(*rows: tuple[str, str] | tuple[str, str, str]) -> list[tuple[str, dict[str, str]]]:
    out = []
    for index, row in enumerate(rows):
        fields = {"event": row[0], "jobId": row[1]}
        if len(row) == 3:
            fields["attemptsMade"] = row[2]
        out.append((f"{index}-0", fields))
    return out


def test_q8_attempts_of_a_retried_job_read_late() -> None:
    """Q8: read after the job finished, each event still gets the attempt it belonged to."""
    entries = _entries(
        ("added", "a"),
        ("active", "a"),
        ("retrying", "a", "1"),
        ("active", "a"),
        ("progress", "a"),
        ("retrying", "a", "2"),
        ("active", "a"),
        ("completed", "a"),
    )
    assert resolve_attempts(entries, {"a": 3}) == [None, 1, 1, 2, 2, 2, 3, 3]


def test_q8_attempts_of_a_running_job_come_from_the_hash() -> None:
    """Q8: with nothing after an ``active`` entry, the attempt is the hash's count plus one."""
    assert resolve_attempts(_entries(("active", "a"), ("progress", "a")), {"a": 4}) == [5, 5]


def test_q8_a_stall_keeps_the_attempt_number() -> None:
    """Q8: a stalled attempt is restarted under the same number (BullMQ uses no attempt)."""
    entries = _entries(("active", "a"), ("stalled", "a"), ("active", "a"), ("completed", "a"))
    assert resolve_attempts(entries, {"a": 1}) == [1, 1, 1, 1]


def test_q8_removed_job_falls_back_to_the_following_entries() -> None:
    """Q8: a job deleted by retention still gets its attempt from the entries around it."""
    entries = _entries(("active", "a"), ("retrying", "a", "1"), ("active", "a"), ("failed", "a"))
    assert resolve_attempts(entries, {"a": None}) == [1, 1, 2, 2]


def test_q8_jobs_are_independent() -> None:
    """Q8: interleaved jobs do not disturb each other."""
    entries = _entries(("active", "a"), ("active", "b"), ("completed", "b"), ("completed", "a"))
    assert resolve_attempts(entries, {"a": 1, "b": 1}) == [1, 1, 1, 1]


def test_q8_start_id_covers_the_whole_millisecond() -> None:
    """Q8: the clock fallback starts just before the call's millisecond."""
    assert start_id(1000) == "999-18446744073709551615"
