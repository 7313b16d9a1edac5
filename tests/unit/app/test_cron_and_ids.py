"""A5 deterministic job ids (the cron checks live in tests/unit/ports/test_cron.py)."""

from __future__ import annotations

import pytest

from portside.app.job_ids import deterministic_job_id
from portside.ports.validation import check_job_id


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
