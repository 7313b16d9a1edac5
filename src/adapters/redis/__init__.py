"""Redis adapters other than the queue: the read-through cache's store."""

from __future__ import annotations

from portside.adapters.redis.cache import RedisCache

__all__ = ["RedisCache"]
