"""Adapter construction: URL, prefix and tuning checks, the settings they make; generated ids."""

from __future__ import annotations

import pytest

from portside.adapters.bullmq import BullMQQueue, BullMQSettings
from portside.adapters.bullmq.producer import new_job_id
from portside.adapters.bullmq.settings import redacted_url
from portside.ports import ConfigurationError
from portside.ports.validation import check_job_id


def test_bad_url_names_the_field() -> None:
    """A non-Redis URL is a configuration error naming ``redis_url``."""
    with pytest.raises(ConfigurationError) as info:
        BullMQQueue("postgres://x")
    assert info.value.field == "redis_url"


def test_unknown_tuning_keyword_is_refused() -> None:
    """A misspelt tuning keyword fails loudly instead of being ignored."""
    with pytest.raises(ConfigurationError) as info:
        BullMQQueue("redis://localhost", lock_duraton=5)
    assert info.value.field == "lock_duraton"
    with pytest.raises(ConfigurationError) as bad:
        BullMQQueue("redis://localhost", block_timeout=60)
    assert bad.value.field == "block_timeout"


def test_password_never_appears_in_messages() -> None:
    """Credentials are redacted from URLs shown in errors."""
    assert redacted_url("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redacted_url("redis://:s3cret@host/0") == "redis://:***@host/0"
    assert redacted_url("redis://host:6379") == "redis://host:6379"


def test_q1_generated_ids_are_valid_bullmq_custom_ids_in_creation_order() -> None:
    """Q1: generated ids have no ':', are never integers and sort in creation order."""
    ids = [new_job_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    for job_id in ids:
        assert check_job_id(job_id) == job_id
        assert ":" not in job_id
        assert not job_id.isdigit()


def test_settings_hold_the_tuning_keywords() -> None:
    """``settings`` is the validated ``**tuning`` with BullMQ's defaults for the rest."""
    adapter = BullMQQueue("redis://localhost", lock_duration=5, max_stalled_count=0)
    assert isinstance(adapter.settings, BullMQSettings)
    assert (adapter.settings.lock_duration, adapter.settings.max_stalled_count) == (5.0, 0)
    assert adapter.settings.stalled_interval == BullMQSettings().stalled_interval == 30.0


def test_the_old_tuning_property_still_resolves() -> None:
    """``BullMQQueue.tuning`` is a deprecated alias of ``settings`` for one release."""
    adapter = BullMQQueue("redis://localhost", lock_duration=5)
    with pytest.deprecated_call(match="use BullMQQueue.settings"):
        tuning = adapter.tuning
    assert tuning is adapter.settings
