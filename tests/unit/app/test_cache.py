"""A8: read-through cache with a 60 s default TTL and explicit invalidation."""

from __future__ import annotations

import asyncio

import pytest

from portside.adapters.memory import VirtualClock
from portside.adapters.memory.cache import InMemoryCache
from portside.app import DEFAULT_TTL, ReadThroughCache
from portside.ports import ValidationError


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def port(clock: VirtualClock) -> InMemoryCache:
    return InMemoryCache(clock.now)


class Source:
    def __init__(self) -> None:
        self.loads = 0

    async def load(self) -> dict[str, object]:
        self.loads += 1
        return {"plan": "pro", "version": self.loads}


async def test_a8_miss_loads_hit_serves_and_ttl_defaults_to_60s(
    port: InMemoryCache, clock: VirtualClock
) -> None:
    cache = ReadThroughCache(port, "org-settings")
    source = Source()

    first = await cache.get_or_load("org-1", source.load)
    clock.advance(DEFAULT_TTL - 1)
    second = await cache.get_or_load("org-1", source.load)
    clock.advance(1)
    third = await cache.get_or_load("org-1", source.load)

    assert DEFAULT_TTL == 60
    assert first == second == {"plan": "pro", "version": 1}
    assert third == {"plan": "pro", "version": 2}
    assert source.loads == 2
    assert await port.get("org-settings:org-1") is not None


async def test_a8_invalidate_forces_the_next_read_to_load(port: InMemoryCache) -> None:
    cache = ReadThroughCache(port, "org-settings", ttl=300)
    source = Source()
    await cache.get_or_load("org-1", source.load)

    assert await cache.invalidate("org-1", "org-2") == 1
    assert await cache.get("org-1") is None
    assert (await cache.get_or_load("org-1", source.load))["version"] == 2
    assert await cache.invalidate() == 0


async def test_a8_concurrent_misses_share_one_load(port: InMemoryCache) -> None:
    cache = ReadThroughCache(port, "rates")
    gate = asyncio.Event()
    loads = 0

    async def slow() -> int:
        nonlocal loads
        loads += 1
        await gate.wait()
        return 42

    readers = [asyncio.create_task(cache.get_or_load("k", slow)) for _ in range(5)]
    await asyncio.sleep(0)  # let every reader reach the miss before the load finishes
    gate.set()

    assert await asyncio.gather(*readers) == [42] * 5
    assert loads == 1


async def test_a8_loader_errors_are_not_cached(port: InMemoryCache) -> None:
    cache = ReadThroughCache(port, "rates")

    async def broken() -> int:
        raise RuntimeError("source down")

    with pytest.raises(RuntimeError, match="source down"):
        await cache.get_or_load("k", broken)
    assert await cache.get("k") is None


async def test_a8_bad_arguments_name_the_field(port: InMemoryCache) -> None:
    with pytest.raises(ValidationError, match="namespace"):
        ReadThroughCache(port, "a:b")
    with pytest.raises(ValidationError, match="ttl is 0"):
        ReadThroughCache(port, "ok", ttl=0)
    with pytest.raises(ValidationError, match="is not JSON"):
        await ReadThroughCache(port, "ok").set("k", object())
    with pytest.raises(ValidationError, match="ttl is -1"):
        await port.set("k", b"v", ttl=-1)
