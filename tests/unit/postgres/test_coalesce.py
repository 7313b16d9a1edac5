"""A3: the coalescer behind PostgresHistory's writes, on fake batch writers (no database)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from portside.adapters.postgres.coalesce import Coalescer
from portside.ports import BackendUnavailableError
from portside.testing import wait_for


class Writer:
    """Doubles numbers; records every batch and single write; can be held or told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.singles: list[int] = []
        self.bad: set[int] = set()
        self.entered = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def many(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.bad & set(items):
            raise ConnectionError("batch failed")
        return [item * 2 if item >= 0 else ValueError(f"negative {item}") for item in items]

    async def one(self, item: int) -> int:
        self.singles.append(item)
        if item in self.bad:
            raise ValueError(f"bad {item}")
        return item * 2


async def held_batch(
    writer: Writer, coalescer: Coalescer[int, int], items: Sequence[int]
) -> list[asyncio.Task[int]]:
    """Submit ``items`` and return once their batch is in flight, held by the writer's gate."""
    writer.gate = asyncio.Event()
    tasks = [asyncio.create_task(coalescer.submit(item)) for item in items]
    async with asyncio.timeout(5):
        await writer.entered.wait()
    return tasks


async def test_a3_calls_in_one_loop_turn_share_one_batch_and_get_their_own_results() -> None:
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one)

    results = await asyncio.gather(*(coalescer.submit(n) for n in range(50)))

    assert results == [n * 2 for n in range(50)]
    assert writer.batches == [list(range(50))]
    assert writer.singles == []


async def test_a3_calls_made_while_a_batch_is_in_flight_form_the_next_batch() -> None:
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one)
    first = await held_batch(writer, coalescer, [1, 2])
    later = [asyncio.create_task(coalescer.submit(n)) for n in (3, 4, 5)]

    assert writer.gate is not None
    writer.gate.set()

    assert await asyncio.gather(*first, *later) == [2, 4, 6, 8, 10]
    assert writer.batches == [[1, 2], [3, 4, 5]]


async def test_a3_an_error_for_one_item_reaches_only_its_caller() -> None:
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one)

    results = await asyncio.gather(
        *(coalescer.submit(n) for n in (1, -1, 2)), return_exceptions=True
    )

    assert results[0] == 2
    assert results[2] == 4
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "negative -1"
    assert writer.singles == []


async def test_a3_a_failed_batch_is_replayed_item_by_item() -> None:
    """One bad row fails the statement; replayed alone, only its caller gets the error."""
    writer = Writer()
    writer.bad = {7}
    coalescer = Coalescer(writer.many, writer.one)

    results = await asyncio.gather(
        *(coalescer.submit(n) for n in (6, 7, 8)), return_exceptions=True
    )

    assert results[0] == 12
    assert results[2] == 16
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "bad 7"
    assert writer.batches == [[6, 7, 8]]
    assert sorted(writer.singles) == [6, 7, 8]


async def test_a3_a_lone_item_is_written_alone_and_gets_its_own_error() -> None:
    writer = Writer()
    writer.bad = {9}
    coalescer = Coalescer(writer.many, writer.one)

    with pytest.raises(ValueError, match="bad 9"):
        await coalescer.submit(9)

    assert writer.batches == []
    assert writer.singles == [9]


async def test_a3_items_with_equal_keys_never_share_a_batch() -> None:
    """Two updates of one row go out in submission order, in separate statements."""
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one, key=lambda n: n % 10)

    await asyncio.gather(*(coalescer.submit(n) for n in (1, 2, 11, 3)))

    assert writer.batches == [[1, 2], [11, 3]]


async def test_a3_batches_hold_at_most_max_batch_items() -> None:
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one, max_batch=4)

    await asyncio.gather(*(coalescer.submit(n) for n in range(10)))

    assert writer.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_a3_a_cancelled_caller_is_left_out_and_others_still_complete() -> None:
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one)
    first = await held_batch(writer, coalescer, [1, 2])
    gone = asyncio.create_task(coalescer.submit(3))
    kept = asyncio.create_task(coalescer.submit(4))
    await wait_for(
        lambda: len(coalescer._pending) == 2, timeout=5, message="two calls behind the batch"
    )
    gone.cancel()
    assert writer.gate is not None
    writer.gate.set()

    assert await asyncio.gather(*first, kept) == [2, 4, 8]
    assert gone.cancelled()
    assert writer.batches == [[1, 2]]
    assert writer.singles == [4]


async def test_a3_idle_waits_for_writes_under_way() -> None:
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one)
    pending = await held_batch(writer, coalescer, [1, 2])
    idle = asyncio.create_task(coalescer.idle())
    await asyncio.sleep(0)
    assert not idle.done()

    assert writer.gate is not None
    writer.gate.set()
    await idle

    assert all(task.done() for task in pending)
    await coalescer.idle()  # nothing under way: returns at once


async def test_a3_callers_are_released_when_the_writer_task_is_cancelled() -> None:
    """Event-loop shutdown cancels the writer: its callers get an error instead of hanging."""
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one)
    waiting = await held_batch(writer, coalescer, [1, 2])
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "portside-history-batch"]
    task.cancel()

    results = await asyncio.gather(*waiting, return_exceptions=True)

    assert [type(result) for result in results] == [BackendUnavailableError] * 2


async def test_a3_up_to_max_in_flight_batches_are_written_at_once() -> None:
    """A3: while one batch is held, the next callers form a second batch written beside it,
    not after it; beyond max_in_flight, callers wait for a writer to free up."""
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one, max_in_flight=2)
    first = await held_batch(writer, coalescer, [1, 2])
    second = [asyncio.create_task(coalescer.submit(n)) for n in (3, 4)]
    await wait_for(lambda: len(writer.batches) == 2, timeout=5, message="a second batch")
    third = [asyncio.create_task(coalescer.submit(n)) for n in (5, 6)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert writer.batches == [[1, 2], [3, 4]]
    assert writer.gate is not None
    writer.gate.set()
    assert await asyncio.gather(*first, *second, *third) == [2, 4, 6, 8, 10, 12]
    assert writer.batches == [[1, 2], [3, 4], [5, 6]]
    await coalescer.idle()


async def test_a3_keyed_items_keep_one_batch_in_flight() -> None:
    """A3: a keyed coalescer (updates of rows) never writes two batches at once, so two
    writes of one key cannot overtake each other."""
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one, key=lambda item: item % 2, max_in_flight=4)
    first = await held_batch(writer, coalescer, [1, 2])
    later = [asyncio.create_task(coalescer.submit(n)) for n in (3, 4)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert writer.batches == [[1, 2]]
    assert writer.gate is not None
    writer.gate.set()
    assert await asyncio.gather(*first, *later) == [2, 4, 6, 8]


@pytest.mark.parametrize("max_in_flight", [1, 3])
async def test_a3_a_caller_right_after_a_finished_batch_gets_a_writer(max_in_flight: int) -> None:
    """A3: submitting again as soon as one's own write returned (the writer task has not yet
    been reaped) still starts a writer."""
    writer = Writer()
    coalescer = Coalescer(writer.many, writer.one, max_in_flight=max_in_flight)
    for n in range(5):
        assert await asyncio.wait_for(coalescer.submit(n), timeout=5) == n * 2
    assert writer.singles == [0, 1, 2, 3, 4]
