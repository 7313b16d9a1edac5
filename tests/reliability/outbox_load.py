"""Outbox writers that count what committed, and subscribers that check order and dedupe."""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import asyncpg.exceptions

from portside.ports import BackendUnavailableError, OutboxEvent, OutboxPort
from portside.testing import wait_for

__all__ = ["EventWriter", "StoredEvents", "Subscriber", "read_stored"]

EVENT_TYPE = "reliability.event"
# What a commit can fail with while the server is being killed, restarted or terminating
# sessions. Anything else (a portside ValidationError above all) fails the test.
CONNECTION_FAILURES = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    # What asyncpg raises when a statement meets the server's "terminating connection"
    # message that arrived on the connection after BEGIN.
    asyncpg.exceptions.InternalClientError,
    BackendUnavailableError,
    ConnectionError,
    OSError,
    TimeoutError,
)


@dataclass
class EventWriter:
    """Appends 1-``per_tx`` events per transaction to one random stream, like an application.

    A transaction whose commit returned is *confirmed*; one that raised is *in doubt* (its
    commit may or may not have happened). After a failure the writer waits until the
    database accepts connections again, as a caller with a health check would.
    """

    name: str
    outbox: OutboxPort
    streams: list[str]
    reachable: Callable[[], Awaitable[bool]] | None = None
    deadline: float = 60.0
    per_tx: int = 3
    seed: int = 0
    rotate: int | None = None
    """Take streams in turn (``seed``, ``seed + rotate``, ...) instead of at random, so that
    writers started with seeds 0..rotate-1 cover every stream."""
    confirmed: set[str] = field(default_factory=set)
    in_doubt: set[str] = field(default_factory=set)
    failures: Counter[str] = field(default_factory=Counter)

    async def write(self, count: int) -> None:
        """Write until at least ``count`` events are confirmed."""
        rng = random.Random(f"{self.name}-{self.seed}")
        serial = itertools.count()
        for turn in itertools.count():
            if len(self.confirmed) >= count:
                return
            if self.rotate is None:
                stream = rng.choice(self.streams)
            else:
                stream = self.streams[(self.seed + turn * self.rotate) % len(self.streams)]
            size = min(rng.randint(1, self.per_tx), count - len(self.confirmed))
            tokens = [f"{self.name}-{next(serial)}" for _ in range(size)]
            try:
                async with self.outbox.transaction() as tx:
                    for token in tokens:
                        await self.outbox.append(tx, stream, EVENT_TYPE, {"token": token})
            except CONNECTION_FAILURES as exc:
                self.failures[type(exc).__name__] += 1
                self.in_doubt.update(tokens)
                if self.reachable is not None:
                    await wait_for(
                        self.reachable,
                        timeout=self.deadline,
                        message=f"Postgres to accept connections again ({self.name})",
                    )
                continue
            self.confirmed.update(tokens)


@dataclass
class Subscriber:
    """An outbox handler recording every delivery, redeliveries included."""

    name: str
    deliveries: list[OutboxEvent] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    order_errors: list[str] = field(default_factory=list)
    _next: dict[str, int] = field(default_factory=lambda: defaultdict(lambda: 1))

    async def __call__(self, event: OutboxEvent) -> None:
        self.deliveries.append(event)
        if event.id in self.seen:
            return  # at-least-once: a redelivery of an event already handled
        expected = self._next[event.stream]
        if event.seq != expected:
            self.order_errors.append(f"{event.stream}: got seq {event.seq}, expected {expected}")
        self.seen.add(event.id)
        self._next[event.stream] = event.seq + 1

    @property
    def redeliveries(self) -> int:
        return len(self.deliveries) - len(self.seen)

    def distinct_per_stream(self) -> dict[str, list[int]]:
        """First deliveries' seqs, per stream, in the order they arrived."""
        firsts: dict[str, list[int]] = defaultdict(list)
        once: set[str] = set()
        for event in self.deliveries:
            if event.id not in once:
                once.add(event.id)
                firsts[event.stream].append(event.seq)
        return firsts

    def changed_redeliveries(self) -> list[str]:
        """Redeliveries whose stream, seq or payload differ from the first delivery."""
        first: dict[str, OutboxEvent] = {}
        problems = []
        for event in self.deliveries:
            original = first.setdefault(event.id, event)
            if (event.stream, event.seq, event.payload) != (
                original.stream,
                original.seq,
                original.payload,
            ):
                problems.append(event.id)
        return problems


@dataclass(frozen=True)
class StoredEvents:
    """The events table as committed: ids, tokens and per-stream seqs."""

    ids: set[str]
    tokens: set[str]
    seqs: dict[str, list[int]]
    unpublished: int

    def gaps(self) -> list[str]:
        """Streams whose seqs are not exactly 1..n."""
        return [
            stream
            for stream, seqs in self.seqs.items()
            if sorted(seqs) != list(range(1, len(seqs) + 1))
        ]


async def read_stored(dsn: str) -> StoredEvents:
    """Read ``portside_outbox_events`` back."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id, stream, seq, payload->>'token' AS token, "
            "published_at IS NULL AS pending FROM portside_outbox_events"
        )
    finally:
        await conn.close()
    seqs: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        seqs[row["stream"]].append(row["seq"])
    return StoredEvents(
        ids={row["id"] for row in rows},
        tokens={row["token"] for row in rows},
        seqs=dict(seqs),
        unpublished=sum(1 for row in rows if row["pending"]),
    )
