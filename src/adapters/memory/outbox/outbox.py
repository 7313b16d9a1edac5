"""The outbox fake: InMemoryOutbox, a deterministic OutboxPort with ordered streams and replay."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from portside.adapters.memory.clock import VirtualClock
from portside.adapters.memory.outbox.store import InMemoryOutboxStore, InMemoryTransaction
from portside.ports import (
    ConfigurationError,
    OutboxErrorCallback,
    OutboxEvent,
    OutboxHandler,
    OutboxPort,
    OutboxStream,
    ValidationError,
)
from portside.ports.inputs import check_append, check_callable, check_from_seq, check_seconds
from portside.ports.validation import check_stream_name

__all__ = ["InMemoryOutbox"]


class InMemoryOutbox:
    """A :class:`~portside.ports.OutboxPort` in memory, for unit tests.

    ``transaction()`` yields an :class:`InMemoryTransaction`; its events become visible (to
    ``subscribe``, ``pending`` and the publisher) only when the ``async with`` block exits
    without an exception. Publishing is explicit: ``drain_once()`` delivers synchronously;
    after ``start()`` a background task also delivers soon after each commit, the way NOTIFY
    wakes the real publisher. :meth:`share` gives a second outbox on the same storage (a
    second publisher process, O6); streams are claimed whole, so each event is delivered once
    and every stream stays in ``seq`` order across publishers.

    Args:
        clock: The clock for ``created_at``/``published_at`` and retention; a fresh
            :class:`VirtualClock` by default.
    """

    def __init__(
        self, clock: VirtualClock | None = None, *, store: InMemoryOutboxStore | None = None
    ) -> None:
        if store is None:
            store = InMemoryOutboxStore(clock if clock is not None else VirtualClock())
        elif clock is not None and clock is not store.clock:
            raise ValidationError(
                "clock differs from the shared store's clock",
                fix="pass only store=..., or use outbox.share()",
                field="clock",
            )
        self._store = store
        self.clock = store.clock
        self._handlers: list[OutboxHandler] = []
        self._on_error: OutboxErrorCallback | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._stopping = False
        self._closed = False
        self.errors: list[BaseException] = []
        """Every handler error the publisher met, oldest first (inspectable)."""

    @property
    def store(self) -> InMemoryOutboxStore:
        """The storage this outbox (and every ``share()`` of it) works on."""
        return self._store

    def share(self) -> InMemoryOutbox:
        """Another outbox (own handlers and publisher) on this one's storage and clock."""
        return InMemoryOutbox(store=self._store)

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError(
                "this InMemoryOutbox is closed",
                fix="create a new InMemoryOutbox (or a new Infra) instead of reusing a closed one",
            )

    # -- appending ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[InMemoryTransaction]:
        """A unit of work: commits when the block exits normally, rolls back on an exception."""
        self._check_open()
        tx = InMemoryTransaction(self._store)
        try:
            yield tx
        except BaseException:
            self._store.rollback(tx)
            raise
        self._store.commit(tx)

    async def append(
        self,
        tx: InMemoryTransaction,
        stream: str,
        type: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        trace_context: str | None = None,
    ) -> OutboxEvent:
        """Stage an event in ``tx`` with the stream's next gap-free ``seq`` (O1, O4).

        A second open transaction appending to the same stream waits until this one ends,
        as with the row lock on the stream's counter in Postgres.
        """
        self._check_open()
        store = self._store
        transaction = store.check_open(tx)
        name, event_type, body, _, event_key, carried = check_append(
            stream, type, payload, key, trace_context
        )
        await store.lock(transaction, name)
        event = OutboxEvent(
            id=str(uuid.uuid4()),
            stream=name,
            seq=store.next_seq(transaction, name),
            type=event_type,
            payload=body,
            key=event_key,
            created_at=self.clock.datetime(),
            trace_context=carried,
        )
        transaction.staged.append(event)
        return event

    # -- publishing --------------------------------------------------------------------------

    def add_handler(self, handler: OutboxHandler) -> Callable[[], None]:
        """Deliver every event this outbox publishes to ``handler``; returns its remover."""
        checked: OutboxHandler = check_callable(handler, "handler")
        self._handlers.append(checked)

        def remove() -> None:
            if checked in self._handlers:
                self._handlers.remove(checked)

        return remove

    async def start(self, *, on_error: OutboxErrorCallback | None = None) -> None:
        """Run the background publisher; it catches up at once, then follows commits."""
        self._check_open()
        self._on_error = None if on_error is None else check_callable(on_error, "on_error")
        if self.running:
            return
        self._stopping = False
        self._publisher = asyncio.create_task(self._publish_forever())

    @property
    def running(self) -> bool:
        """Whether the background publisher runs (between ``start`` and ``stop``)."""
        return self._publisher is not None and not self._publisher.done()

    async def stop(self) -> None:
        """Stop the background publisher after the stream it is delivering."""
        task, self._publisher = self._publisher, None
        if task is None:
            return
        self._stopping = True
        self._store.wake()
        await asyncio.gather(task, return_exceptions=True)

    async def drain_once(self, stream: str | None = None) -> int:
        """Deliver every event committed before the call (of ``stream``, or all); O3.

        Streams another publisher is delivering are waited for, not skipped, so on return
        everything committed earlier has been delivered. A handler error leaves its event
        (and the rest of its stream) pending and is raised once the other streams are done.

        Returns:
            How many events this call delivered.
        """
        self._check_open()
        store = self._store
        if stream is not None:
            name = check_stream_name(stream)
            targets = {name: store.last_seq[name]} if store.pending.get(name) else {}
        else:
            targets = {name: store.last_seq[name] for name, queue in store.pending.items() if queue}
        published = 0
        errors: list[BaseException] = []
        for name, upto in targets.items():
            count, error = await self._publish_stream(name, upto, wait=True)
            published += count
            if error is not None:
                errors.append(error)
        self.errors.extend(errors)
        if errors:
            raise errors[0]
        return published

    async def _publish_forever(self) -> None:
        store = self._store
        while not self._stopping:
            woken = store.changed()
            targets = {
                name: store.last_seq[name]
                for name, queue in store.pending.items()
                if queue and name not in store.claims
            }
            errors: list[BaseException] = []
            for name, upto in targets.items():
                if self._stop_requested():
                    break
                _, error = await self._publish_stream(name, upto, wait=False)
                if error is not None:
                    errors.append(error)
            self._report(errors)
            await woken

    def _stop_requested(self) -> bool:
        return self._stopping

    async def _publish_stream(
        self, stream: str, upto: int, *, wait: bool
    ) -> tuple[int, BaseException | None]:
        store = self._store
        while (claim := store.claims.get(stream)) is not None:
            if not wait:
                return 0, None
            await asyncio.shield(claim)
        released: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        store.claims[stream] = released
        count = 0
        try:
            queue = store.pending.get(stream)
            while queue and queue[0].seq <= upto:
                event = queue[0].model_copy(update={"published_at": self.clock.datetime()})
                try:
                    for handler in list(self._handlers):
                        await handler(event)
                except Exception as error:
                    return count, error
                queue.popleft()
                store.pending_total -= 1
                stored = store.events.get(stream)
                if stored is not None and event.seq in stored:
                    stored[event.seq] = event
                count += 1
            return count, None
        finally:
            del store.claims[stream]
            released.set_result(None)
            # Publishers that skipped this stream while it was claimed need a nudge for the
            # events committed meanwhile; what failed here waits for the next commit instead.
            rest = store.pending.get(stream)
            if rest and rest[-1].seq > upto:
                store.wake()

    def _report(self, errors: list[BaseException]) -> None:
        # A failed stream is retried at the next commit (the fake has no retry timer).
        self.errors.extend(errors)
        if self._on_error is not None:
            for error in errors:
                with contextlib.suppress(Exception):
                    self._on_error(error)

    # -- reading -----------------------------------------------------------------------------

    def subscribe(self, stream: str, from_seq: int = 1) -> AsyncIterator[OutboxEvent]:
        """Events of ``stream`` from ``from_seq``: the committed ones, then each new commit.

        Follows commits directly (it does not wait for the publisher), with no gap and no
        repeat; the iteration ends when this outbox closes.
        """
        self._check_open()
        name = check_stream_name(stream)
        from_seq = check_from_seq(from_seq)
        return self._follow(name, from_seq)

    async def _follow(self, stream: str, seq: int) -> AsyncIterator[OutboxEvent]:
        store = self._store
        while True:
            last = store.last_seq.get(stream, 0)
            if seq <= last:
                stored = store.events.get(stream, {})
                event = stored.get(seq)
                if event is None:  # removed by retention: continue with the next stored one
                    seq = min((s for s in stored if s > seq), default=last + 1)
                    continue
                yield event
                seq += 1
                continue
            if self._closed:
                return
            await store.changed()

    async def pending(self) -> int:
        """Committed events not yet published."""
        self._check_open()
        return self._store.pending_total

    async def streams(self) -> list[OutboxStream]:
        """Every stream that has had an event, by name, with its last seq and pending count."""
        self._check_open()
        store = self._store
        return [
            OutboxStream(stream=name, last_seq=last, pending=len(store.pending.get(name, ())))
            for name, last in sorted(store.last_seq.items())
        ]

    async def purge_published(self, older_than: float) -> int:
        """Delete events published at least ``older_than`` seconds ago (virtual clock)."""
        self._check_open()
        cutoff = self.clock.now() - check_seconds(older_than, "older_than")
        removed = 0
        for stored in self._store.events.values():
            doomed = [
                seq
                for seq, event in stored.items()
                if event.published_at is not None and event.published_at.timestamp() <= cutoff
            ]
            for seq in doomed:
                del stored[seq]
            removed += len(doomed)
        return removed

    # -- inspection and lifecycle ------------------------------------------------------------

    def events(self, stream: str | None = None) -> list[OutboxEvent]:
        """Stored committed events (of ``stream``), by stream then seq."""
        streams = [check_stream_name(stream)] if stream is not None else sorted(self._store.events)
        return [e for name in streams for e in self._store.events.get(name, {}).values()]

    def reset(self) -> None:
        """Forget every event and counter of the shared storage, and this outbox's errors."""
        self._store.reset()
        self.errors.clear()

    async def close(self) -> None:
        """Stop the publisher and end this outbox's subscriptions."""
        if self._closed:
            return
        await self.stop()
        self._closed = True
        self._store.wake()


def _conforms() -> OutboxPort:
    return InMemoryOutbox()
