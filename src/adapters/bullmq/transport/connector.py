"""Opening the adapter's Redis connections: one pooled client, plus dedicated ones per worker.

Replies are decoded as UTF-8, but never strictly: a job hash may hold bytes that are not
UTF-8 (another producer wrote them), and a strict decoder would turn that one job into an
error for whatever read it (``get_job``, a worker's whole connection). The pooled client
replaces such bytes with U+FFFD; worker connections keep them as lone surrogates
(``surrogateescape``) so the worker can tell a corrupt payload from a valid one and write
ids back byte for byte (see ``jobs.py``).
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from portside.adapters.bullmq.settings import BullMQSettings, redacted_url

__all__ = ["RedisConnector"]


class RedisConnector:
    """Creates the adapter's Redis clients from one URL and the settings."""

    def __init__(self, url: str, settings: BullMQSettings) -> None:
        self.url = url
        self.safe_url = redacted_url(url)
        self.settings = settings

    def client(self) -> Redis:
        """The pooled client for producers and control commands (bounded retries)."""
        settings = self.settings
        retry = Retry(
            ExponentialBackoff(cap=settings.max_backoff, base=settings.retry_backoff),
            settings.retries,
        )
        # A blocking pool: when every connection is busy (a backfill checking 100 days at
        # once), callers wait for one instead of failing with MaxConnectionsError.
        pool = BlockingConnectionPool.from_url(
            self.url,
            decode_responses=True,
            encoding_errors="replace",
            socket_connect_timeout=settings.connect_timeout,
            socket_timeout=settings.command_timeout,
            retry=retry,
            retry_on_error=[RedisConnectionError, RedisTimeoutError, BusyLoadingError],
            max_connections=64,
            timeout=settings.command_timeout,
            client_name="portside",
            protocol=2,
        )
        client: Redis = Redis.from_pool(pool)
        return client

    def pool(self, client_name: str, *, keep_bytes: bool = False) -> ConnectionPool:
        """Settings for dedicated connections; replies are awaited without a socket timeout
        because the owner watches them itself.

        Args:
            keep_bytes: Decode bytes that are not UTF-8 to lone surrogates (a worker's
                connection) instead of U+FFFD.
        """
        pool: ConnectionPool = ConnectionPool.from_url(
            self.url,
            decode_responses=True,
            encoding_errors="surrogateescape" if keep_bytes else "replace",
            socket_connect_timeout=self.settings.connect_timeout,
            socket_timeout=None,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            client_name=client_name,
            protocol=2,
        )
        return pool
