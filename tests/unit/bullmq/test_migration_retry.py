"""S1: the pooled client's retry waits out a slot migration (ASK/TRYAGAIN) up to a
deadline, and keeps its bounded retries for every other connection error."""

from __future__ import annotations

import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from portside.adapters.bullmq.transport.cluster import SlotMigratingError
from portside.adapters.bullmq.transport.migration_retry import MigrationAwareRetry


class Flaky:
    """Fails with ``error`` the first ``times`` calls, then answers ``"OK"``."""

    def __init__(self, error: Exception, times: int) -> None:
        self.error = error
        self.times = times
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "OK"


async def _ignore(error: Exception) -> None:
    return None


async def test_s1_a_migration_longer_than_the_retries_is_waited_out() -> None:
    """S1: ASK/TRYAGAIN for more attempts than ``retries`` still ends in the reply."""
    retry = MigrationAwareRetry(base=0.001, cap=0.004, retries=2, deadline=5.0)
    command = Flaky(SlotMigratingError("slot 1 is being migrated"), times=12)
    assert await retry.call_with_retry(command, _ignore) == "OK"
    assert command.calls == 13


async def test_s1_a_migration_past_the_deadline_raises_the_last_error() -> None:
    """S1: a slot still migrating at the deadline fails with the migration error, soon
    after the deadline."""
    retry = MigrationAwareRetry(base=0.001, cap=0.01, retries=1, deadline=0.2)
    command = Flaky(SlotMigratingError("slot 1 is being migrated"), times=10_000)
    began = time.monotonic()
    with pytest.raises(SlotMigratingError):
        await retry.call_with_retry(command, _ignore)
    assert 0.2 <= time.monotonic() - began < 1.0


async def test_s1_other_connection_errors_keep_their_bounded_retries() -> None:
    """S1: a plain connection error is tried ``retries`` + 1 times, not until the deadline."""
    retry = MigrationAwareRetry(base=0.001, cap=0.004, retries=2, deadline=30.0)
    command = Flaky(RedisConnectionError("refused"), times=100)
    with pytest.raises(RedisConnectionError):
        await retry.call_with_retry(command, _ignore)
    assert command.calls == 3
