"""Pure checks of the Postgres outbox: settings and reconnect backoff (O5)."""

from __future__ import annotations

import pytest

from portside.adapters.postgres.settings import OutboxSettings
from portside.adapters.reconnect import ReconnectBackoff
from portside.ports import ValidationError


def test_settings_reject_unknown_and_out_of_range_knobs() -> None:
    assert OutboxSettings.from_tuning({}).batch_size == 500
    with pytest.raises(ValidationError, match="batch_sise") as info:
        OutboxSettings.from_tuning({"batch_sise": 10})
    assert info.value.field == "batch_sise"
    assert "batch_size" in str(info.value)
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        OutboxSettings.from_tuning({"batch_size": 0})
    with pytest.raises(ValidationError, match="pool_min_size 5 exceeds"):
        OutboxSettings.from_tuning({"pool_min_size": 5, "pool_max_size": 2})


def test_o5_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = ReconnectBackoff(0.1, 1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.failures == 8
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_o5_backoff_jitter_spreads_clients_apart() -> None:
    delays = {ReconnectBackoff(1.0, 1.0).next_delay() for _ in range(50)}
    assert len(delays) > 40
