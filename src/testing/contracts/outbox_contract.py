"""The outbox contract suite: transactional append (O1), drain (O3), ordering and replay (O4),
several publishers and retention (O6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from portside.ports import OutboxEvent, OutboxPort, ValidationError
from portside.testing.contracts.drivers import OutboxDriver
from portside.testing.contracts.support import DEADLINE, expect_invalid, wait_for_event

__all__ = ["OutboxContract"]


class _Boom(Exception):
    """Raised inside a unit of work to roll it back."""


class _Recorder:
    """An outbox handler that logs what it receives, optionally failing a number of times."""

    def __init__(self, log: list[tuple[str, OutboxEvent]] | None = None, who: str = "") -> None:
        self.log: list[tuple[str, OutboxEvent]] = [] if log is None else log
        self.who = who
        self.failures_left = 0
        self.target = 0
        self.reached = asyncio.Event()

    async def __call__(self, event: OutboxEvent) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("subscriber endpoint down")
        self.log.append((self.who, event))
        await asyncio.sleep(0)  # a yield point: another publisher may run in between
        if self.target and len(self.log) >= self.target:
            self.reached.set()

    @property
    def events(self) -> list[OutboxEvent]:
        return [event for _, event in self.log]


async def _commit(
    outbox: OutboxPort, stream: str, type: str = "step", **payload: Any
) -> OutboxEvent:
    async with outbox.transaction() as tx:
        return await outbox.append(tx, stream, type, payload)


async def _append_then_fail(outbox: OutboxPort, stream: str, type: str) -> None:
    """A unit of work that appends one event, then raises ``_Boom`` to roll back."""
    async with outbox.transaction() as tx:
        await outbox.append(tx, stream, type, {})
        raise _Boom


async def _take(events: AsyncIterator[OutboxEvent], count: int, what: str) -> list[OutboxEvent]:
    taken: list[OutboxEvent] = []
    try:
        async with asyncio.timeout(DEADLINE):
            while len(taken) < count:
                taken.append(await anext(events))
    except TimeoutError:
        seqs = [event.seq for event in taken]
        raise AssertionError(f"waited {DEADLINE:g} s for {what}; got seqs {seqs}") from None
    return taken


async def _close(events: AsyncIterator[OutboxEvent]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


def _in_stream_order(events: list[OutboxEvent]) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = {}
    for event in events:
        seqs.setdefault(event.stream, []).append(event.seq)
    return seqs


class OutboxContract:
    """O1, O3, O4 and O6. Needs an ``outbox_driver`` fixture yielding an ``OutboxDriver``."""

    pytestmark = pytest.mark.asyncio

    async def test_o1_committed_event_exists_and_is_delivered(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """O1: an appended event is invisible until commit, then pending, then delivered."""
        outbox = outbox_driver.outbox
        recorder = _Recorder()
        outbox.add_handler(recorder)
        async with outbox.transaction() as tx:
            event = await outbox.append(tx, "run-1", "run.started", {"step": 0}, key="org-1")
            assert (event.stream, event.seq, event.type) == ("run-1", 1, "run.started")
            assert (event.payload, event.key, event.published_at) == ({"step": 0}, "org-1", None)
            assert await outbox.pending() == 0, "an uncommitted event is visible"
        assert await outbox.pending() == 1
        assert await outbox.drain_once() == 1
        assert [(e.id, e.seq, e.payload) for e in recorder.events] == [(event.id, 1, {"step": 0})]
        assert recorder.events[0].published_at is not None
        assert await outbox.pending() == 0

    async def test_o1_rolled_back_event_never_exists(self, outbox_driver: OutboxDriver) -> None:
        """O1: a unit of work that fails leaves no event, and its seq is given back."""
        outbox = outbox_driver.outbox
        recorder = _Recorder()
        outbox.add_handler(recorder)
        with pytest.raises(_Boom):
            await _append_then_fail(outbox, "run-2", "run.started")
        assert await outbox.pending() == 0
        assert await outbox.drain_once() == 0
        kept = await _commit(outbox, "run-2", "run.started")
        assert kept.seq == 1
        events = outbox.subscribe("run-2")
        try:
            assert [e.id for e in await _take(events, 1, "the committed event")] == [kept.id]
        finally:
            await _close(events)
        assert await outbox.drain_once() == 1
        assert [e.id for e in recorder.events] == [kept.id]

    async def test_o1_bad_append_input_is_rejected_naming_the_field(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """O1: a bad stream, type or payload fails the append, naming the field; the unit of
        work itself stays usable."""
        outbox = outbox_driver.outbox
        loose = cast(Any, outbox)
        async with outbox.transaction() as tx:
            with expect_invalid("stream", "empty"):
                await outbox.append(tx, "", "t", {})
            with expect_invalid("type"):
                await outbox.append(tx, "run-3", "", {})
            with expect_invalid("payload.at", "not JSON"):
                await outbox.append(tx, "run-3", "t", {"at": datetime(2026, 1, 1, tzinfo=UTC)})
            with expect_invalid("payload.ratio"):
                await outbox.append(tx, "run-3", "t", {"ratio": float("inf")})
            with expect_invalid("payload"):
                await loose.append(tx, "run-3", "t", ["not", "an", "object"])
            event = await outbox.append(tx, "run-3", "t", {"ok": True})
        assert event.seq == 1
        with pytest.raises(ValidationError):
            await loose.append(object(), "run-3", "t", {})
        assert await outbox.pending() == 1

    async def test_ops1_streams_show_last_seq_and_pending(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """OPS1: ``streams`` lists each stream with its last seq and unpublished events."""
        outbox = outbox_driver.outbox
        assert await outbox.streams() == []
        await _commit(outbox, "console-a")
        await _commit(outbox, "console-a")
        await _commit(outbox, "console-b")
        listed = {s.stream: (s.last_seq, s.pending) for s in await outbox.streams()}
        assert listed == {"console-a": (2, 2), "console-b": (1, 1)}
        with pytest.raises(_Boom):
            await _append_then_fail(outbox, "console-a", "lost")
        await outbox.drain_once("console-a")
        listed = {s.stream: (s.last_seq, s.pending) for s in await outbox.streams()}
        assert listed == {"console-a": (2, 0), "console-b": (1, 1)}

    async def test_o3_drain_once_delivers_everything_committed_before(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """O3: after drain_once returns, every earlier commit was delivered, in seq order per
        stream; a second call finds nothing."""
        outbox = outbox_driver.outbox
        recorder = _Recorder()
        outbox.add_handler(recorder)
        for i in range(3):
            await _commit(outbox, "alpha", i=i)
            if i < 2:
                await _commit(outbox, "beta", i=i)
        assert await outbox.drain_once() == 5
        assert _in_stream_order(recorder.events) == {"alpha": [1, 2, 3], "beta": [1, 2]}
        assert await outbox.drain_once() == 0
        assert await outbox.pending() == 0

    async def test_o3_drain_once_of_one_stream(self, outbox_driver: OutboxDriver) -> None:
        """O3: ``drain_once(stream)`` publishes only that stream."""
        outbox = outbox_driver.outbox
        recorder = _Recorder()
        outbox.add_handler(recorder)
        for stream in ("alpha", "alpha", "beta"):
            await _commit(outbox, stream)
        assert await outbox.drain_once("alpha") == 2
        assert await outbox.pending() == 1
        assert await outbox.drain_once("beta") == 1
        assert _in_stream_order(recorder.events) == {"alpha": [1, 2], "beta": [1]}

    async def test_o3_started_publisher_delivers_commits(self, outbox_driver: OutboxDriver) -> None:
        """O3: between ``start`` and ``stop`` commits are delivered without drain_once."""
        outbox = outbox_driver.outbox
        recorder = _Recorder()
        recorder.target = 2
        outbox.add_handler(recorder)
        errors: list[BaseException] = []
        await outbox.start(on_error=errors.append)
        try:
            await _commit(outbox, "live", n=1)
            await _commit(outbox, "live", n=2)
            await wait_for_event(recorder.reached, "the publisher to deliver 2 events")
        finally:
            await outbox.stop()
        assert _in_stream_order(recorder.events) == {"live": [1, 2]}
        assert errors == []
        assert await outbox.pending() == 0

    async def test_o3_handler_error_keeps_the_event_for_redelivery(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """O3, O6: a failing handler makes drain_once raise; the event stays pending and is
        delivered again later with the same id (at-least-once)."""
        outbox = outbox_driver.outbox
        recorder = _Recorder()
        recorder.failures_left = 1
        outbox.add_handler(recorder)
        event = await _commit(outbox, "fragile")
        with pytest.raises(ConnectionError):
            await outbox.drain_once()
        assert await outbox.pending() == 1
        assert await outbox.drain_once() == 1
        assert [e.id for e in recorder.events] == [event.id]

    async def test_o4_seq_is_gap_free_per_stream(self, outbox_driver: OutboxDriver) -> None:
        """O4: each stream counts 1, 2, 3 ... on its own, rollbacks leave no gap, and several
        events of one unit of work get consecutive seqs."""
        outbox = outbox_driver.outbox
        async with outbox.transaction() as tx:
            both = [
                await outbox.append(tx, "left", "a", {}),
                await outbox.append(tx, "right", "a", {}),
                await outbox.append(tx, "left", "b", {}),
            ]
        assert [(e.stream, e.seq) for e in both] == [("left", 1), ("right", 1), ("left", 2)]
        with pytest.raises(_Boom):
            await _append_then_fail(outbox, "left", "lost")
        after = await _commit(outbox, "left")
        assert after.seq == 3
        events = outbox.subscribe("left")
        try:
            assert [e.seq for e in await _take(events, 3, "seqs 1-3 of left")] == [1, 2, 3]
        finally:
            await _close(events)

    async def test_o4_concurrent_units_of_work_on_one_stream_stay_gap_free(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """O4: a unit of work appending while another holds the stream gets the next seq
        after the first ends; a rollback of the first gives its seq to the second."""
        outbox = outbox_driver.outbox
        second_ready = asyncio.Event()

        async def second() -> OutboxEvent:
            async with outbox.transaction() as tx:
                second_ready.set()
                return await outbox.append(tx, "shared", "second", {})

        seconds: list[asyncio.Task[OutboxEvent]] = []

        async def first() -> None:
            async with outbox.transaction() as tx:
                await outbox.append(tx, "shared", "first", {})
                seconds.append(asyncio.create_task(second()))
                await wait_for_event(second_ready, "the second unit of work to start")
                raise _Boom

        with pytest.raises(_Boom):
            await first()
        event = await asyncio.wait_for(seconds[0], DEADLINE)
        assert (event.type, event.seq) == ("second", 1)
        third = await _commit(outbox, "shared", "third")
        assert third.seq == 2

    async def test_o4_subscribe_replays_then_follows_live(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """O4: ``subscribe(stream, from_seq)`` yields stored events from ``from_seq``, then new
        commits, with no gap, no repeat and no other stream's events; ids are stable."""
        outbox = outbox_driver.outbox
        stored = [await _commit(outbox, "run-9", n=n) for n in range(1, 4)]
        events = outbox.subscribe("run-9", from_seq=2)
        try:
            replayed = await _take(events, 2, "replay of seqs 2-3")
            await _commit(outbox, "run-10", n=0)
            live = [await _commit(outbox, "run-9", n=n) for n in (4, 5)]
            await outbox.drain_once()
            followed = await _take(events, 2, "live seqs 4-5")
        finally:
            await _close(events)
        assert [e.seq for e in replayed + followed] == [2, 3, 4, 5]
        assert [e.id for e in replayed + followed] == [e.id for e in stored[1:] + live]
        assert {e.stream for e in replayed + followed} == {"run-9"}

    async def test_o4_subscription_opened_before_the_first_event(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """O4: subscribing to a stream with no events yet follows it from seq 1."""
        outbox = outbox_driver.outbox
        events = outbox.subscribe("fresh")
        try:
            first = await _commit(outbox, "fresh", n=1)
            second = await _commit(outbox, "fresh", n=2)
            got = await _take(events, 2, "the two live events")
        finally:
            await _close(events)
        assert [e.id for e in got] == [first.id, second.id]

    async def test_o4_subscribe_rejects_bad_arguments(self, outbox_driver: OutboxDriver) -> None:
        """O4: a bad stream or ``from_seq`` fails at once, naming the argument."""
        outbox = outbox_driver.outbox
        loose = cast(Any, outbox)
        with expect_invalid("stream"):
            outbox.subscribe("")
        with expect_invalid("from_seq"):
            outbox.subscribe("run", from_seq=0)
        with expect_invalid("from_seq"):
            loose.subscribe("run", from_seq="3")

    async def test_o6_two_publishers_deliver_each_event_once_in_order(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """O6: two outboxes on one store draining at once deliver every event exactly once,
        each stream in seq order, with the ids append returned."""
        first = outbox_driver.outbox
        second = await outbox_driver.another_outbox()
        log: list[tuple[str, OutboxEvent]] = []
        first.add_handler(_Recorder(log, "first"))
        second.add_handler(_Recorder(log, "second"))
        appended = [await _commit(first, f"stream-{i % 4}", i=i) for i in range(40)]
        counts = await asyncio.gather(first.drain_once(), second.drain_once())
        assert sum(counts) == 40
        delivered = [event for _, event in log]
        assert sorted(e.id for e in delivered) == sorted(e.id for e in appended)
        assert _in_stream_order(delivered) == {f"stream-{s}": list(range(1, 11)) for s in range(4)}
        assert await second.pending() == 0

    async def test_o6_two_started_publishers_share_the_work(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """O6: with two publishers running, each committed event is delivered once, in order."""
        first = outbox_driver.outbox
        second = await outbox_driver.another_outbox()
        log: list[tuple[str, OutboxEvent]] = []
        recorders = [_Recorder(log, "first"), _Recorder(log, "second")]
        for recorder in recorders:
            recorder.target = 30
        recorders[1].reached = recorders[0].reached  # either may make the 30th delivery
        first.add_handler(recorders[0])
        second.add_handler(recorders[1])
        await first.start()
        await second.start()
        try:
            for i in range(30):
                await _commit(first if i % 2 else second, f"run-{i % 3}", i=i)
            await wait_for_event(recorders[0].reached, "30 deliveries across both publishers")
        finally:
            await first.stop()
            await second.stop()
        delivered = [event for _, event in log]
        assert len({e.id for e in delivered}) == len(delivered) == 30
        assert _in_stream_order(delivered) == {f"run-{s}": list(range(1, 11)) for s in range(3)}

    async def test_o6_retention_purges_published_events_only(
        self, outbox_driver: OutboxDriver
    ) -> None:
        """O6: purge_published deletes published events old enough, never pending ones; seq
        numbering carries on."""
        outbox = outbox_driver.outbox
        for n in (1, 2):
            await _commit(outbox, "old", n=n)
        await outbox.drain_once()
        pending = await _commit(outbox, "old", n=3)
        assert await outbox.purge_published(3600) == 0
        assert await outbox.purge_published(0) == 2
        assert await outbox.pending() == 1
        events = outbox.subscribe("old")
        try:
            assert [e.id for e in await _take(events, 1, "the pending event")] == [pending.id]
        finally:
            await _close(events)
        assert (await _commit(outbox, "old", n=4)).seq == 4
        with expect_invalid("older_than"):
            await outbox.purge_published(-1)
