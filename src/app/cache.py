"""Read-through cache on the cache port: TTL (default 60 s), JSON values, invalidation (A8)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from portside.ports import CachePort, ValidationError
from portside.ports.inputs import check_ttl

__all__ = ["DEFAULT_TTL", "ReadThroughCache"]

DEFAULT_TTL = 60.0


class ReadThroughCache:
    """``get_or_load(key, loader)``: the cached value, or the loader's result, stored for ``ttl``.

    Values are stored as JSON under ``<namespace>:<key>``. Concurrent misses of one key in one
    process share a single load, so a cold key does not stampede the source.

    Args:
        port: Where values live (``RedisCache`` in production).
        namespace: Prefix that keeps this cache's keys apart from others'.
        ttl: Default seconds a value stays fresh.
    """

    def __init__(self, port: CachePort, namespace: str, *, ttl: float = DEFAULT_TTL) -> None:
        if not namespace or ":" in namespace:
            raise ValidationError(
                f"cache namespace {namespace!r} is invalid",
                fix="use a non-empty name without ':' such as 'org-settings'",
                field="namespace",
            )
        self._port = port
        self._namespace = namespace
        self._ttl = check_ttl(ttl)
        self._loads: dict[str, asyncio.Future[Any]] = {}

    def key(self, key: str) -> str:
        """The port key of ``key``."""
        return f"{self._namespace}:{key}"

    async def get(self, key: str) -> Any | None:
        """The cached value, or None on a miss."""
        raw = await self._port.get(self.key(key))
        return None if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        """Store ``value`` (JSON-serialisable) for ``ttl`` seconds."""
        await self._store(key, value, ttl)

    async def _store(self, key: str, value: Any, ttl: float | None) -> bytes:
        ttl = self._ttl if ttl is None else check_ttl(ttl)
        try:
            encoded = json.dumps(value, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"cache value for {key!r} is not JSON: {exc}",
                fix="cache dicts, lists, strings, numbers or pydantic model_dump(mode='json')",
                field="value",
            ) from exc
        await self._port.set(self.key(key), encoded, ttl=ttl)
        return encoded

    async def get_or_load(
        self, key: str, loader: Callable[[], Awaitable[Any]], *, ttl: float | None = None
    ) -> Any:
        """The cached value, else ``await loader()`` stored for ``ttl``.

        A miss returns the value as a hit would (decoded from JSON), so callers see one shape.
        A loader error reaches every waiter and nothing is cached.
        """
        cached = await self._port.get(self.key(key))
        if cached is not None:
            return json.loads(cached)
        pending = self._loads.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loads[key] = future
        try:
            value = json.loads(await self._store(key, await loader(), ttl))
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved: no "never retrieved" warning without waiters
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._loads[key]

    async def invalidate(self, *keys: str) -> int:
        """Drop ``keys`` so the next read loads fresh values; return how many were cached."""
        if not keys:
            return 0
        return await self._port.delete(*(self.key(key) for key in keys))
