"""The cache contract suite: what every CachePort does with entries and bad arguments (A8)."""

from __future__ import annotations

import math
from typing import Any, cast

import pytest

from portside.ports import CachePort
from portside.testing.contracts.support import expect_invalid

__all__ = ["CacheContract"]


class CacheContract:
    """A8. Needs a ``cache`` fixture yielding the ``CachePort`` under test, empty.

    Expiry itself is the adapter's own test (a real server's clock cannot be advanced).
    """

    pytestmark = pytest.mark.asyncio

    async def test_a8_set_get_delete_round_trip(self, cache: CachePort) -> None:
        """A8: a stored value reads back as bytes; delete reports how many keys existed."""
        assert await cache.get("org-1") is None
        await cache.set("org-1", b'{"plan":"pro"}', ttl=60)
        await cache.set("org-2", b"", ttl=0.5)
        assert await cache.get("org-1") == b'{"plan":"pro"}'
        assert await cache.get("org-2") == b""
        assert await cache.delete("org-1", "org-2", "never-set") == 2
        assert await cache.get("org-1") is None
        assert await cache.delete() == 0

    async def test_a8_set_replaces_the_value(self, cache: CachePort) -> None:
        """A8: a second set of a key replaces its value (invalidation by overwrite)."""
        await cache.set("k", b"one", ttl=60)
        await cache.set("k", b"two", ttl=60)
        assert await cache.get("k") == b"two"

    @pytest.mark.parametrize("ttl", [0, -1, math.inf, math.nan, True, "60"])
    async def test_a8_bad_ttl_is_refused_naming_it(self, cache: CachePort, ttl: object) -> None:
        """A8: a ttl that is not a finite number of seconds above 0 names ``ttl``."""
        with expect_invalid("ttl"):
            await cache.set("k", b"v", ttl=cast(Any, ttl))
        assert await cache.get("k") is None

    async def test_a8_bad_key_and_value_are_refused_naming_them(self, cache: CachePort) -> None:
        """A8: an empty or non-string key names ``key``; a value that is not bytes names
        ``value``; nothing is stored."""
        loose = cast(Any, cache)
        with expect_invalid("key"):
            await cache.set("", b"v", ttl=60)
        with expect_invalid("key"):
            await loose.get(7)
        with expect_invalid("key"):
            await loose.delete("ok", None)
        with expect_invalid("value", "bytes"):
            await loose.set("k", "text", ttl=60)
        assert await cache.get("k") is None
