"""The cache port: a tiny key/value store with per-key expiry, for read-through caching (A8)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["CachePort"]


@runtime_checkable
class CachePort(Protocol):
    """Bytes under string keys, each with a time to live."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None if absent or expired."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds (> 0), replacing any previous value."""
        ...

    async def delete(self, *keys: str) -> int:
        """Remove the keys; return how many existed."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
