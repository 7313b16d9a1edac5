"""Q11 cron checks and A5 deterministic job ids."""

from __future__ import annotations

import pytest

from portside.app.cron import check_cron_pattern
from portside.app.job_ids import deterministic_job_id
from portside.ports import ValidationError
from portside.ports.validation import check_job_id


@pytest.mark.parametrize(
    "pattern",
    ["* * * * *", "0 6 * * *", "*/5 * * * *", "0 0 1 JAN,JUL MON-FRI", "30 0 6 * * *", "0 0 L * ?"],
)
def test_q11_valid_cron_patterns_pass(pattern: str) -> None:
    assert check_cron_pattern(pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("60 * * * *", "minute value 60 is outside 0-59"),
        ("* * 0 * *", "day of month value 0 is outside 1-31"),
        ("* * * 13 *", "month value 13 is outside 1-12"),
        ("*/0 * * * *", "step in '*/0' must be at least 1"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("a * * * *", "minute value 'a' is not a number"),
        ("* * * * * * *", "has 7 fields"),
    ],
)
def test_q11_invalid_cron_patterns_name_the_field(pattern: str, words: str) -> None:
    with pytest.raises(ValidationError, match=r"schedule\.pattern") as caught:
        check_cron_pattern(pattern)
    assert words in str(caught.value)


def test_a5_ids_are_readable_deterministic_and_valid_for_bullmq() -> None:
    keys = {"organizationId": "org-1", "integrationId": "xero-7", "date": "2024-05-01"}

    job_id = deterministic_job_id("ingest", keys)

    assert job_id == "ingest.org-1.xero-7.2024-05-01"
    assert deterministic_job_id("ingest", dict(keys)) == job_id
    assert check_job_id(job_id) == job_id


@pytest.mark.parametrize(
    "keys",
    [
        {"org": "a:b"},
        {"org": "with space"},
        {"org": "x" * 300},
        {"org": None},
        {"n": 12, "flag": True},
        {"org": "a.b"},
    ],
)
def test_a5_unsafe_values_fall_back_to_a_hash_id(keys: dict[str, object]) -> None:
    job_id = deterministic_job_id("ingest", keys)

    assert job_id.startswith("ingest~")
    assert check_job_id(job_id) == job_id
    assert job_id == deterministic_job_id("ingest", keys)


def test_a5_different_values_never_share_an_id() -> None:
    assert deterministic_job_id("j", {"a": "a.b"}) != deterministic_job_id("j", {"a": "a_b"})
    assert deterministic_job_id("j", {"a": 1}) != deterministic_job_id("j", {"a": "1"})
