"""``RedisCache``: the cache port on Redis (``redis.asyncio``), keys under a prefix (A8)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from portside.ports import BackendUnavailableError, CachePort, ValidationError
from portside.ports.inputs import check_cache_key, check_cache_value, check_ttl

__all__ = ["RedisCache"]


class RedisCache:
    """Values under ``<prefix>:<key>`` with ``SET ... PX`` expiry.

    The client connects on first use and reconnects by itself; a call that cannot reach
    Redis raises ``BackendUnavailableError`` (transient).

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS).
        prefix: Namespace for every key, e.g. the deployment or test prefix.
    """

    def __init__(self, url: str, *, prefix: str = "portside-cache") -> None:
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValidationError(
                f"url must be a redis:// URL, got {url!r}",
                fix="pass e.g. 'redis://127.0.0.1:6379/0'",
                field="url",
            )
        if not prefix:
            raise ValidationError("prefix is empty", fix="pass a non-empty prefix", field="prefix")
        self._url = url
        self._prefix = prefix
        self._client: Redis | None = None

    def _redis(self) -> Redis:
        if self._client is None:
            self._client = Redis.from_url(self._url, socket_connect_timeout=5, socket_timeout=5)
        return self._client

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{check_cache_key(key)}"

    async def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await getattr(self._redis(), operation)(*args, **kwargs)
        except (TimeoutError, RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise BackendUnavailableError(
                f"Redis cache {operation} failed: {exc}",
                fix="check that Redis is reachable at the configured URL",
            ) from exc

    async def get(self, key: str) -> bytes | None:
        """The value, or None if absent or expired."""
        value = await self._call("get", self._key(key))
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds (millisecond precision)."""
        key = self._key(key)
        value = check_cache_value(value)
        await self._call("set", key, value, px=max(1, round(check_ttl(ttl) * 1000)))

    async def delete(self, *keys: str) -> int:
        """Remove the keys; return how many existed."""
        if not keys:
            return 0
        return int(await self._call("delete", *(self._key(key) for key in keys)))

    async def close(self) -> None:
        """Close the connection pool."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _check(url: str) -> CachePort:
    return RedisCache(url)
