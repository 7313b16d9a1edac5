"""Per-test Redis isolation: a unique key prefix per test, its keys unlinked afterwards."""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

from portside.ports import ConfigurationError
from portside.testing.background import BackgroundLoop

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["PREFIX_PATTERN", "KeyspaceIsolation"]

PREFIX_PATTERN = re.compile(r"^pt-[a-z0-9]+-[0-9]+-[0-9a-f]+$")
"""Every prefix the harness hands out matches this (no ``:``, safe as a BullMQ ``prefix``)."""

_SCAN_COUNT = 1000


class KeyspaceIsolation:
    """Hands out unique key prefixes on one Redis server and deletes their keys.

    Prefixes look like ``pt-<worker>-<n>-<run>``: ``run`` is random per session and worker, so
    several sessions and xdist workers can share one server.

    Args:
        loop: The harness's background loop; the admin client lives there.
        url: The Redis server (``redis://host:port/db``).
        worker: The xdist worker id (``gw0``) or ``main``.
        run: Random hex unique to this session and worker.
    """

    def __init__(self, loop: BackgroundLoop, url: str, worker: str, run: str) -> None:
        self._loop = loop
        self._url = url
        self._stem = f"pt-{_slug(worker)}"
        self._run = run
        self._counter = itertools.count(1)
        self._client: Redis | None = None
        self._live: set[str] = set()

    @property
    def url(self) -> str:
        """The server's URL."""
        return self._url

    def new_prefix(self) -> str:
        """A prefix no other test of any session uses."""
        prefix = f"{self._stem}-{next(self._counter)}-{self._run}"
        self._live.add(prefix)
        return prefix

    def cleanup(self, prefix: str) -> int:
        """Unlink every key starting with ``prefix``; return how many were removed."""
        self._live.discard(prefix)
        removed: int = self._loop.run(self._unlink(prefix), timeout=30)
        return removed

    def count_keys(self, prefix: str) -> int:
        """How many keys start with ``prefix`` (used by tests of the harness)."""
        found: int = self._loop.run(self._count(prefix), timeout=30)
        return found

    def close(self) -> None:
        """Clean the prefixes still in use and close the admin client."""
        for prefix in list(self._live):
            self.cleanup(prefix)
        if self._client is not None:
            self._loop.run(self._client.aclose(), timeout=10)
            self._client = None

    async def _admin(self) -> Redis:
        if self._client is None:
            try:
                from redis.asyncio import Redis
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ConfigurationError(
                    "the portside harness needs the 'redis' package for Redis fixtures",
                    fix="pip install 'portside[bullmq]'",
                ) from exc
            client: Any = Redis.from_url(self._url)
            self._client = client
        return self._client

    async def _unlink(self, prefix: str) -> int:
        client = await self._admin()
        removed = 0
        batch: list[bytes] = []
        async for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=_SCAN_COUNT):
            batch.append(key)
            if len(batch) >= _SCAN_COUNT:
                removed += await client.unlink(*batch)
                batch.clear()
        if batch:
            removed += await client.unlink(*batch)
        return removed

    async def _count(self, prefix: str) -> int:
        client = await self._admin()
        found = 0
        async for _ in client.scan_iter(match=_glob_escape(prefix) + "*", count=_SCAN_COUNT):
            found += 1
        return found


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower()) or "main"


def _glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?\\])", r"\\\1", text)
