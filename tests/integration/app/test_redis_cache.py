"""A8: the read-through cache on real Redis: TTL in Redis, invalidation, prefix isolation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from portside.adapters.redis import RedisCache
from portside.app import ReadThroughCache
from portside.ports import BackendUnavailableError
from portside.testing.contracts import CacheContract

pytestmark = pytest.mark.integration


@pytest.fixture
async def cache(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisCache]:
    port = RedisCache(redis_url, prefix=f"{redis_prefix}:cache")
    try:
        yield port
    finally:
        await port.close()


class TestRedisCache(CacheContract):
    """Every CachePort behaviour on Redis."""


async def test_a8_values_expire_after_the_default_60s_and_can_be_invalidated(
    redis_url: str, redis_prefix: str
) -> None:
    port = RedisCache(redis_url, prefix=f"{redis_prefix}:cache")
    cache = ReadThroughCache(port, "org-settings")
    loads = 0

    async def load() -> dict[str, str]:
        nonlocal loads
        loads += 1
        return {"plan": "pro"}

    redis = Redis.from_url(redis_url)
    try:
        assert await cache.get_or_load("org-1", load) == {"plan": "pro"}
        assert await cache.get_or_load("org-1", load) == {"plan": "pro"}
        key = f"{redis_prefix}:cache:org-settings:org-1"
        ttl_ms = await redis.pttl(key)
        assert 59_000 < ttl_ms <= 60_000
        assert await cache.invalidate("org-1") == 1
        assert await redis.exists(key) == 0
        await cache.get_or_load("org-1", load)
    finally:
        await redis.aclose()
        await port.close()
    assert loads == 2


async def test_a8_unreachable_redis_is_a_transient_backend_error() -> None:
    port = RedisCache("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(BackendUnavailableError, match="Redis cache get failed"):
            await port.get("k")
    finally:
        await port.close()
