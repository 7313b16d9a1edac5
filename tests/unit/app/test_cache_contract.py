"""A8: the in-memory cache passes the cache contract."""

from __future__ import annotations

import pytest

from portside.adapters.memory import InMemoryCache
from portside.testing.contracts import CacheContract


@pytest.fixture
def cache() -> InMemoryCache:
    return InMemoryCache()


class TestInMemoryCache(CacheContract):
    """Every CachePort behaviour on InMemoryCache."""
