"""In-memory cache (CachePort) with expiry on an injectable clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from portside.ports import CachePort
from portside.ports.inputs import check_cache_key, check_cache_value, check_ttl

__all__ = ["InMemoryCache"]


class InMemoryCache:
    """A ``CachePort`` in a dict. ``now`` returns seconds (a virtual clock in tests).

    Args:
        now: Monotonic seconds; defaults to ``time.monotonic``.
    """

    def __init__(self, now: Callable[[], float] | None = None) -> None:
        self._now = now or time.monotonic
        self.entries: dict[str, tuple[bytes, float]] = {}
        self.closed = False

    def reset(self) -> None:
        """Forget every entry."""
        self.entries.clear()

    async def get(self, key: str) -> bytes | None:
        """The value, or None if absent or expired."""
        entry = self.entries.get(check_cache_key(key))
        if entry is None:
            return None
        value, expires_at = entry
        if self._now() >= expires_at:
            del self.entries[key]
            return None
        return value

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        key = check_cache_key(key)
        value = check_cache_value(value)
        self.entries[key] = (value, self._now() + check_ttl(ttl))

    async def delete(self, *keys: str) -> int:
        """Remove the keys; return how many existed (and had not expired)."""
        removed = 0
        for key in map(check_cache_key, keys):
            if await self.get(key) is not None:
                removed += 1
            self.entries.pop(key, None)
        return removed

    async def close(self) -> None:
        """Nothing to release; remembered for tests."""
        self.closed = True


_check: CachePort = InMemoryCache()
