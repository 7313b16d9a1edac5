"""``redis+cluster://`` URLs: a Redis Cluster, served one hash slot per adapter (S1).

Format::

    redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][?OPTIONS]
    rediss+cluster://...?ssl_ca_certs=CA&ssl_certfile=CERT&ssl_keyfile=KEY   (TLS, S3)

With ``rediss+cluster`` every connection (the slot owner's and the ``CLUSTER SLOTS``
probes of the seeds) uses TLS with the ``ssl_*`` options of the query (see ``tls.py``); the
nodes must announce their TLS ports (``tls-cluster yes``).

BullMQ keeps every key of a queue in one hash slot by a hash tag in the prefix
(``{bull}``), so all of an adapter's queues live in the slot of its prefix's tag, on the
shard that owns that slot. Every new connection asks the listed nodes (``CLUSTER SLOTS``)
which master owns the slot now, so a reconnect after a failover or a resharding reaches the
new owner. To spread queues over shards, use one adapter per tag (``{tenant-a}``,
``{tenant-b}``).

Redirects: a ``MOVED`` reply on any of the adapter's connections (the slot now lives on
another master) closes that connection and surfaces as a connection error
(``SlotMovedError``), so every caller's existing reconnect-and-retry path runs, and the
reconnect goes straight to the master the redirect named. A command that got ``MOVED`` did
not run, so sending it again is safe. ``ASK`` and ``TRYAGAIN`` (the slot is being migrated
right now) are handled the same way (``SlotMigratingError``): the command is sent again
after the reconnect back-off, until the migration has finished and ``MOVED`` points to the
new owner (the pooled client waits up to ``command_timeout`` for that, see
``migration_retry.py``). A blocked command (``BZPOPMIN``, ``XREAD``) on a master that gives
the slot away is answered with ``MOVED`` by the server, so a worker never stays parked on
the old owner.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import AskError, MovedError, RedisError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError

from portside.adapters.bullmq.transport.redis_internals import ReconnectingConnection
from portside.adapters.bullmq.transport.sentinel import parse_address, typed_option
from portside.adapters.bullmq.transport.tls import is_tls_url, reject_tls_options, tls_options
from portside.ports import ConfigurationError

__all__ = [
    "SCHEME",
    "ClusterUrl",
    "SlotMigratingError",
    "SlotMovedError",
    "SlotOwnerPool",
    "parse_cluster_url",
    "prefix_slot",
]

SCHEME = "redis+cluster"
_FORMAT = "redis+cluster://[user:password@]host:port[,host:port...]"


@dataclass(frozen=True)
class ClusterUrl:
    """A parsed ``redis+cluster://`` URL."""

    seeds: tuple[tuple[str, int], ...]
    options: dict[str, Any] = field(default_factory=dict)
    tls: bool = False


def _invalid(url: str, problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"redis_url {url!r} is not a valid cluster URL: {problem}",
        fix=f"write it as {_FORMAT}, e.g. 'redis+cluster://10.0.0.1:7000,10.0.0.2:7000'",
        field="redis_url",
    )


def parse_cluster_url(url: str, safe: str) -> ClusterUrl:
    """Parse ``url`` (``safe`` is it with the password hidden, for messages)."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    seeds = tuple(parse_address(host, safe, 6379, _invalid) for host in hosts.split(",") if host)
    if not seeds:
        raise _invalid(safe, "it names no node")
    if parts.path.strip("/") not in ("", "0"):
        raise _invalid(safe, "a cluster has only database 0")
    options: dict[str, Any] = {}
    if userinfo:
        user, has_password, password = userinfo.partition(":")
        if user:
            options["username"] = unquote(user)
        if has_password:
            options["password"] = unquote(password)
    for name, value in parse_qsl(parts.query):
        options[name] = typed_option(name, value, safe, _invalid)
    tls = is_tls_url(url)
    if not tls:
        reject_tls_options(options, safe, _invalid)
    return ClusterUrl(seeds, options, tls)


def prefix_slot(prefix: str) -> int:
    """The hash slot of every key under ``prefix``.

    Raises:
        ConfigurationError: the prefix has no hash tag (``{...}``), so a queue's keys would
            spread over slots and BullMQ's scripts could not run.
    """
    start = prefix.find("{")
    end = prefix.find("}", start + 1)
    if start < 0 or end <= start + 1:
        raise ConfigurationError(
            f"prefix {prefix!r} has no hash tag, so a queue's keys would land in different "
            "slots of the cluster",
            fix="put a hash tag in the prefix, e.g. prefix='{bull}' (and the same prefix in "
            "Node BullMQ's options), or one tag per group of queues: '{tenant-a}'",
            field="prefix",
        )
    return key_slot(prefix.encode())


class SlotMovedError(RedisConnectionError):
    """The slot moved to another master (``MOVED``): reconnect there and send again."""


class SlotMigratingError(RedisConnectionError):
    """The slot is being migrated (``ASK``/``TRYAGAIN``): reconnect and send again later."""


class SlotOwnerConnection(ReconnectingConnection):
    """A connection to the master that owns the pool's slot, asked again on every connect."""

    def __init__(self, **kwargs: Any) -> None:
        self.connection_pool: SlotOwnerPool = kwargs.pop("connection_pool")
        super().__init__(**kwargs)

    async def open(self, options: dict[str, Any]) -> None:
        await self.open_at(await self.connection_pool.find_owner(), options)

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        """The reply, with a cluster redirect turned into a connection error (the
        connection is closed, the pool told where the slot went)."""
        try:
            return await super().read_response(*args, **kwargs)
        except MovedError as exc:
            await self.disconnect(nowait=True)
            host = _endpoint(exc.host, self.host)
            self.connection_pool.moved_to((host, int(exc.port)))
            raise SlotMovedError(
                f"slot {exc.slot_id} moved from {self.host}:{self.port} to {host}:{exc.port}"
            ) from exc
        except (AskError, TryAgainError) as exc:
            await self.disconnect(nowait=True)
            raise SlotMigratingError(
                f"slot {self.connection_pool.slot} is being migrated ({exc})"
            ) from exc


class TlsSlotOwnerConnection(SlotOwnerConnection, SSLConnection):
    """``SlotOwnerConnection`` over TLS (``rediss+cluster://``)."""


class SlotOwnerPool(ConnectionPool):
    """Connections to whichever master owns ``slot`` (asked of the seed nodes); over TLS
    with ``tls`` (the ``ssl_*`` options among ``kwargs``)."""

    def __init__(
        self, seeds: list[tuple[str, int]], slot: int, *, tls: bool = False, **kwargs: Any
    ) -> None:
        connection_class = TlsSlotOwnerConnection if tls else SlotOwnerConnection
        kwargs.setdefault("connection_class", connection_class)
        self.tls = tls
        super().__init__(**kwargs)
        self.connection_kwargs["connection_pool"] = weakref.proxy(self)
        self.seeds = seeds
        self.slot = slot
        self.owner: tuple[str, int] | None = None
        self._redirected = False

    async def ensure_connection(self, connection: Any) -> None:
        """Connect ``connection``, first closing it if it still talks to a master the slot
        has left: a command without keys (``SCRIPT LOAD``) gets no ``MOVED`` and would
        quietly run on the old owner."""
        address = (connection.host, connection.port)
        if connection.is_connected and self.owner is not None and address != self.owner:
            await connection.disconnect()
        await super().ensure_connection(connection)

    def moved_to(self, address: tuple[str, int]) -> None:
        """A ``MOVED`` reply named ``address``: the next connection goes there."""
        self.owner = address
        self._redirected = True

    async def find_owner(self) -> tuple[str, int]:
        """The master serving the slot now: the node a ``MOVED`` reply just named, else
        by ``CLUSTER SLOTS`` of the first node that answers (the last owner first, then the
        seeds)."""
        if self._redirected and self.owner is not None:
            self._redirected = False
            return self.owner
        kwargs = self.connection_kwargs
        candidates = ([self.owner] if self.owner else []) + self.seeds
        tls = {"ssl": True, **tls_options(kwargs)} if self.tls else {}
        failure: BaseException | None = None
        for host, port in candidates:
            client = Redis(
                host=host,
                port=port,
                username=kwargs.get("username"),
                password=kwargs.get("password"),
                socket_connect_timeout=kwargs.get("socket_connect_timeout") or 2.0,
                socket_timeout=kwargs.get("socket_connect_timeout") or 2.0,
                decode_responses=True,
                # One try per node: the caller's own retry and back-off decide what next
                # (redis-py's default would retry each node with seconds of back-off).
                retry=Retry(NoBackoff(), 0),
                **tls,
            )
            try:
                ranges = await client.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
            except (RedisError, OSError) as exc:
                failure = exc  # kept as the cause: a refused certificate must show
                continue
            finally:
                await client.aclose()
            owner = _owner(ranges, self.slot, host)
            if owner is not None:
                self.owner = owner
                return owner
        raise RedisConnectionError(
            f"no cluster node of {self.seeds} names a master for slot {self.slot}"
            + (f" (last failure: {failure})" if failure is not None else "")
        ) from failure


def _endpoint(host: Any, asked: str) -> str:
    """The host a redirect or ``CLUSTER SLOTS`` named; an unknown endpoint (``""``, ``?`` or
    none: a node with ``cluster-preferred-endpoint-type unknown-endpoint``) means the host
    the reply came from, as the Redis Cluster specification says."""
    text = "" if host is None else str(host)
    return asked if text in ("", "?") else text


def _owner(ranges: Any, slot: int, asked: str) -> tuple[str, int] | None:
    """The master of ``slot`` in a ``CLUSTER SLOTS`` reply of the node at host ``asked``."""
    if isinstance(ranges, dict):  # redis-py may parse the reply into {(start, end): ...}
        for (start, end), nodes in ranges.items():
            if start <= slot <= end:
                host, port = nodes["primary"]
                return _endpoint(host, asked), int(port)
        return None
    for entry in ranges:
        start, end, master = entry[0], entry[1], entry[2]
        if int(start) <= slot <= int(end):
            return _endpoint(master[0], asked), int(master[1])
    return None


class BlockingSlotOwnerPool(SlotOwnerPool, BlockingConnectionPool):
    """A slot-owner pool whose callers wait for a free connection (as the plain one)."""
