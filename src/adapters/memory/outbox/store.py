"""The outbox fake's storage: committed events, seq counters, stream locks, transactions."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from portside.adapters.memory.clock import VirtualClock
from portside.ports import OutboxEvent, TransientError, ValidationError

__all__ = ["InMemoryOutboxStore", "InMemoryTransaction"]


class InMemoryTransaction:
    """The unit of work ``InMemoryOutbox.transaction()`` yields.

    Events appended to it are visible to nobody until it commits; a rollback drops them and
    gives their ``seq`` numbers back, so streams stay gap-free.
    """

    __slots__ = ("held", "staged", "state", "store", "waiting_for")

    def __init__(self, store: InMemoryOutboxStore) -> None:
        self.store = store
        self.staged: list[OutboxEvent] = []
        self.held: dict[str, int] = {}
        self.state = "open"
        self.waiting_for: str | None = None

    @property
    def events(self) -> list[OutboxEvent]:
        """The events appended so far (not yet committed)."""
        return list(self.staged)

    def __repr__(self) -> str:
        return f"InMemoryTransaction({self.state}, {len(self.staged)} event(s))"


@dataclass
class _StreamLock:
    owner: InMemoryTransaction | None = None
    queue: deque[tuple[InMemoryTransaction, asyncio.Future[None]]] = field(default_factory=deque)


class InMemoryOutboxStore:
    """Events and counters shared by every outbox made with ``share()`` (one "database")."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.claims: dict[str, asyncio.Future[None]] = {}
        self.locks: dict[str, _StreamLock] = {}
        self.waiters: list[asyncio.Future[None]] = []
        self.reset()

    def reset(self) -> None:
        """Forget every committed event and counter.

        Transactions still open keep their locks; call it between tests, not inside one.
        """
        self.events: dict[str, dict[int, OutboxEvent]] = {}
        self.last_seq: dict[str, int] = {}
        self.allocated: dict[str, int] = {}
        self.pending: dict[str, deque[OutboxEvent]] = {}
        self.pending_total = 0

    # -- append locks: one open transaction per stream, like the row lock on its counter -----

    async def lock(self, tx: InMemoryTransaction, stream: str) -> None:
        """Let ``tx`` number events of ``stream``; waits while another transaction holds it."""
        if stream in tx.held:
            return
        lock = self.locks.setdefault(stream, _StreamLock())
        if lock.owner is not None:
            self._refuse_deadlock(tx, lock.owner, stream)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            lock.queue.append((tx, waiter))
            tx.waiting_for = stream
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._release(stream, tx)
                else:
                    lock.queue.remove((tx, waiter))
                raise
            finally:
                tx.waiting_for = None
        lock.owner = tx
        tx.held[stream] = self.allocated.get(stream, 0)

    def _refuse_deadlock(
        self, tx: InMemoryTransaction, holder: InMemoryTransaction, stream: str
    ) -> None:
        seen: set[int] = set()
        current: InMemoryTransaction | None = holder
        while current is not None and id(current) not in seen:
            if current is tx:
                raise TransientError(
                    f"deadlock: this transaction waits for stream {stream!r} while holding a "
                    "stream the holder waits for",
                    fix="append to streams in the same order in every transaction, and retry",
                )
            seen.add(id(current))
            waits = current.waiting_for
            current = self.locks[waits].owner if waits is not None else None

    def _release(self, stream: str, tx: InMemoryTransaction) -> None:
        lock = self.locks[stream]
        if lock.owner is not tx:
            return
        lock.owner = None
        while lock.queue:
            successor, waiter = lock.queue.popleft()
            if not waiter.done():
                lock.owner = successor
                waiter.set_result(None)
                return
        del self.locks[stream]

    def next_seq(self, tx: InMemoryTransaction, stream: str) -> int:
        """Hand ``tx`` (which holds ``stream``) the stream's next seq."""
        assert tx.held.get(stream) is not None and self.locks[stream].owner is tx
        seq = self.allocated.get(stream, 0) + 1
        self.allocated[stream] = seq
        return seq

    # -- ending a transaction ----------------------------------------------------------------

    def commit(self, tx: InMemoryTransaction) -> None:
        """Make ``tx``'s events visible, in seq order, and wake publishers and subscribers."""
        tx.state = "committed"
        for event in tx.staged:
            self.events.setdefault(event.stream, {})[event.seq] = event
            self.last_seq[event.stream] = event.seq
            self.pending.setdefault(event.stream, deque()).append(event)
            self.pending_total += 1
        self._end(tx)
        if tx.staged:
            self.wake()

    def rollback(self, tx: InMemoryTransaction) -> None:
        """Drop ``tx``'s events and give their seq numbers back."""
        tx.state = "rolled back"
        for stream, before in tx.held.items():
            self.allocated[stream] = before
        self._end(tx)

    def _end(self, tx: InMemoryTransaction) -> None:
        for stream in tx.held:
            self._release(stream, tx)

    def check_open(self, tx: object) -> InMemoryTransaction:
        """``tx`` if it is an open transaction of this store, else a ValidationError."""
        if not isinstance(tx, InMemoryTransaction) or tx.store is not self:
            raise ValidationError(
                f"tx is a {type(tx).__name__}, not a transaction of this outbox",
                fix="append inside `async with outbox.transaction() as tx:` and pass that tx",
                field="tx",
            )
        if tx.state != "open":
            raise ValidationError(
                f"tx is already {tx.state}",
                fix="append inside the `async with outbox.transaction()` block, before it ends",
                field="tx",
            )
        return tx

    # -- notifications -----------------------------------------------------------------------

    def changed(self) -> asyncio.Future[None]:
        """A future resolved at the next commit (or close)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return waiter

    def wake(self) -> None:
        """Resolve every :meth:`changed` future."""
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
