"""BullMQ lock and stall tuning from the environment (Q10: how fast a crashed worker's jobs
come back)."""

from __future__ import annotations

import pytest

from portside.app.settings import (
    BULLMQ_LOCK_DURATION_ENV,
    BULLMQ_MAX_STALLED_COUNT_ENV,
    BULLMQ_STALLED_INTERVAL_ENV,
    Settings,
)
from portside.app.wiring import build_infra
from portside.ports import ConfigurationError


def test_q10_tuning_variables_reach_the_bullmq_adapter() -> None:
    """Q10: the three variables become BullMQQueue's lock_duration, stalled_interval and
    max_stalled_count in the Infra the CLI builds."""
    env = {
        "PORTSIDE_REDIS_URL": "redis://127.0.0.1:1/0",
        "PORTSIDE_POSTGRES_DSN": "postgresql://127.0.0.1:1/db",
        BULLMQ_LOCK_DURATION_ENV: " 3.5 ",
        BULLMQ_STALLED_INTERVAL_ENV: "1",
        BULLMQ_MAX_STALLED_COUNT_ENV: "0",
    }
    settings = Settings.from_env(env)
    assert settings.bullmq_tuning() == {
        "lock_duration": 3.5,
        "stalled_interval": 1.0,
        "max_stalled_count": 0,
    }
    infra = build_infra(settings)
    tuning = infra.queue.settings  # type: ignore[attr-defined]
    assert (tuning.lock_duration, tuning.stalled_interval, tuning.max_stalled_count) == (3.5, 1, 0)


def test_q10_unset_tuning_keeps_bullmq_defaults() -> None:
    """Q10: with no variable (or an empty one) the adapter keeps BullMQ's 30 s / 30 s / 1."""
    settings = Settings.from_env({BULLMQ_LOCK_DURATION_ENV: "  "})
    assert settings.bullmq_tuning() == {}
    assert settings.bullmq_lock_duration is None


@pytest.mark.parametrize(
    ("name", "raw", "words"),
    [
        (BULLMQ_LOCK_DURATION_ENV, "30s", "is not a number of seconds from 0.1 to 86400"),
        (BULLMQ_LOCK_DURATION_ENV, "0", "is not a number of seconds"),
        (BULLMQ_LOCK_DURATION_ENV, "nan", "is not a number of seconds"),
        (BULLMQ_STALLED_INTERVAL_ENV, "inf", "is not a number of seconds"),
        (BULLMQ_STALLED_INTERVAL_ENV, "-1", "is not a number of seconds"),
        (BULLMQ_MAX_STALLED_COUNT_ENV, "1.5", "is not a whole number from 0 to 1000"),
        (BULLMQ_MAX_STALLED_COUNT_ENV, "-1", "is not a whole number"),
        (BULLMQ_MAX_STALLED_COUNT_ENV, "9" * 5000, "is not a whole number"),
    ],
)
def test_q10_bad_tuning_names_the_variable_and_the_fix(name: str, raw: str, words: str) -> None:
    """Q10: a bad value fails at startup, naming the variable, the value and what to set."""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: raw})
    message = str(caught.value)
    assert caught.value.field == name
    assert message.startswith(f"{name} {raw[:50]!r} {words}")
    assert f"set {name} to" in message
    assert "or unset it" in message
