"""A3, Q15: ``PORTSIDE_RUN_HISTORY_DAYS`` and ``PORTSIDE_OUTBOX_RETENTION`` set how long the
worker keeps finished runs and published outbox events; lost runs follow the lock settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portside.app.settings import (
    HISTORY_SYNCHRONOUS_COMMIT_ENV,
    OUTBOX_RETENTION_ENV,
    RUN_HISTORY_DAYS_ENV,
    Settings,
)
from portside.ports import ConfigurationError


def test_a3_run_history_is_kept_30_days_by_default() -> None:
    settings = Settings.from_env({})
    assert settings.run_history_days == 30
    assert settings.run_retention() == timedelta(days=30)


@pytest.mark.parametrize(
    ("raw", "days"), [("7", 7), (" 90 ", 90), ("36500", 36500), ("off", None), ("OFF", None)]
)
def test_a3_run_history_days_come_from_the_environment(raw: str, days: int | None) -> None:
    settings = Settings.from_env({RUN_HISTORY_DAYS_ENV: raw})
    assert settings.run_history_days == days
    assert settings.run_retention() == (None if days is None else timedelta(days=days))


def test_a3_an_empty_run_history_variable_means_the_default() -> None:
    assert Settings.from_env({RUN_HISTORY_DAYS_ENV: "  "}).run_history_days == 30


def test_a3_an_option_overrides_the_run_history_variable() -> None:
    settings = Settings.from_env({RUN_HISTORY_DAYS_ENV: "7"}, run_history_days="off")
    assert settings.run_retention() is None


@pytest.mark.parametrize("raw", ["0", "-3", "1.5", "thirty", "36501", "none"])
def test_a3_bad_run_history_days_name_the_variable_and_the_fix(raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({RUN_HISTORY_DAYS_ENV: raw})
    assert caught.value.field == RUN_HISTORY_DAYS_ENV
    assert RUN_HISTORY_DAYS_ENV in str(caught.value)
    assert "'off'" in str(caught.value)


def test_q15_published_outbox_events_are_kept_7_days_unless_told() -> None:
    assert Settings.from_env({}).outbox_retention() == timedelta(days=7)
    assert Settings.from_env({OUTBOX_RETENTION_ENV: "2"}).outbox_retention() == timedelta(days=2)
    assert Settings.from_env({OUTBOX_RETENTION_ENV: "off"}).outbox_retention() is None


@pytest.mark.parametrize("raw", ["0", "7d", "-1"])
def test_q15_bad_outbox_retention_names_the_variable_and_the_fix(raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({OUTBOX_RETENTION_ENV: raw})
    assert caught.value.field == OUTBOX_RETENTION_ENV
    assert "published outbox events are kept" in str(caught.value)
    assert "'off'" in str(caught.value)


def test_q15_runs_are_lost_once_lock_and_stalled_check_have_passed() -> None:
    """Q15: a running row nobody vouches for is lost after lock duration + stalled interval."""
    assert Settings.from_env({}).lost_after() == 60.0
    tuned = Settings.from_env(
        {"PORTSIDE_BULLMQ_LOCK_DURATION": "5", "PORTSIDE_BULLMQ_STALLED_INTERVAL": "2.5"}
    )
    assert tuned.lost_after() == 7.5


@pytest.mark.parametrize(("raw", "wait"), [("on", True), ("OFF", False), (" false ", False)])
def test_a3_history_commits_wait_for_the_flush_unless_told(raw: str, wait: bool) -> None:
    assert Settings.from_env({}).history_synchronous_commit is True
    settings = Settings.from_env({HISTORY_SYNCHRONOUS_COMMIT_ENV: raw})
    assert settings.history_synchronous_commit is wait


def test_a3_a_bad_history_commit_switch_names_the_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({HISTORY_SYNCHRONOUS_COMMIT_ENV: "sometimes"})
    assert caught.value.field == HISTORY_SYNCHRONOUS_COMMIT_ENV
    assert "'on' or 'off'" in str(caught.value)
