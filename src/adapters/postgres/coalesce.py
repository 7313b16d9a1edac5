"""Coalescing of concurrent single-row writes into one multi-row statement per batch."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from portside.ports import BackendUnavailableError

__all__ = ["Coalescer"]

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

BatchRunner = Callable[[Sequence[ItemT]], Awaitable[Sequence[ResultT | Exception]]]
"""Writes a batch; returns, per item and in input order, its result or the error for it."""


@dataclass
class _Waiter(Generic[ItemT, ResultT]):
    item: ItemT
    future: asyncio.Future[ResultT] = field(repr=False)


def _settle(future: asyncio.Future[ResultT], outcome: ResultT | BaseException) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class Coalescer(Generic[ItemT, ResultT]):
    """Runs ``submit(item)`` calls as batches: one statement for many concurrent callers.

    Items submitted in the same event-loop turn, or while ``max_in_flight`` batches are in
    flight, go into the next batch (at most ``max_batch`` items). Each caller awaits its own
    result or gets its own error. If the whole batch fails (a bad row, a lost connection),
    every item of it is replayed alone with ``run_one``, so each caller gets exactly the
    outcome its own statement has, and one bad row never fails the others.

    Several batches in flight keep a server that waits for each commit's flush to disk busy
    (its group commit flushes them together) instead of idle between one batch and the next.

    Args:
        run_batch: Writes a batch of two or more items.
        run_one: Writes one item (a batch of one, and the replay of a failed batch).
        key: Items with equal keys never share a batch (e.g. two updates of one row, which
            one multi-row UPDATE would apply only once). Keyed coalescers keep one batch in
            flight, so writes of one key stay in order.
        max_batch: The most items in one batch.
        max_in_flight: The most batches written at once.
    """

    def __init__(
        self,
        run_batch: BatchRunner[ItemT, ResultT],
        run_one: Callable[[ItemT], Awaitable[ResultT]],
        *,
        key: Callable[[ItemT], Hashable] | None = None,
        max_batch: int = 500,
        max_in_flight: int = 1,
    ) -> None:
        self._run_batch = run_batch
        self._run_one = run_one
        self._key = key
        self._max_batch = max_batch
        self._max_in_flight = 1 if key is not None else max(1, max_in_flight)
        self._pending: deque[_Waiter[ItemT, ResultT]] = deque()
        self._writers: set[asyncio.Task[None]] = set()
        self._active = 0
        """Writers not yet finished (counted down as a writer's last step, not by a callback
        that runs a loop turn later)."""

    async def submit(self, item: ItemT) -> ResultT:
        """Write ``item`` with the next batch and return its result."""
        loop = asyncio.get_running_loop()
        waiter: _Waiter[ItemT, ResultT] = _Waiter(item, loop.create_future())
        self._pending.append(waiter)
        if self._active < self._max_in_flight and (not self._active or len(self._pending) == 1):
            # A writer starts now (it takes its batch once this loop turn's submits are in);
            # while writers are busy, one more starts for the first item that has to wait.
            self._active += 1
            task = loop.create_task(self._drain(), name="portside-history-batch")
            self._writers.add(task)
            task.add_done_callback(self._writers.discard)
        return await waiter.future

    async def idle(self) -> None:
        """Wait until every submitted item was written (or failed)."""
        while self._writers:
            await asyncio.wait(list(self._writers))

    async def _drain(self) -> None:
        batch: list[_Waiter[ItemT, ResultT]] = []
        try:
            while self._pending:
                batch = self._take()
                if batch:
                    await self._write(batch)
                batch = []
        finally:
            self._active -= 1
            # Only reached with waiters left if this task was cancelled (event loop shutdown).
            for waiter in [*batch, *self._pending]:
                _settle(
                    waiter.future,
                    BackendUnavailableError(
                        "the run-history write was abandoned because its writer task ended",
                        fix="close the history store before the event loop stops",
                    ),
                )
            self._pending.clear()

    def _take(self) -> list[_Waiter[ItemT, ResultT]]:
        batch: list[_Waiter[ItemT, ResultT]] = []
        keys: set[Hashable] = set()
        while self._pending and len(batch) < self._max_batch:
            waiter = self._pending[0]
            if waiter.future.done():
                self._pending.popleft()
                continue
            if self._key is not None:
                key = self._key(waiter.item)
                if key in keys:
                    break
                keys.add(key)
            batch.append(self._pending.popleft())
        return batch

    async def _write(self, batch: list[_Waiter[ItemT, ResultT]]) -> None:
        if len(batch) == 1:
            await self._replay(batch[0])
            return
        try:
            outcomes = await self._run_batch([waiter.item for waiter in batch])
        except Exception:
            await asyncio.gather(*(self._replay(waiter) for waiter in batch))
            return
        for waiter, outcome in zip(batch, outcomes, strict=True):
            _settle(waiter.future, outcome)

    async def _replay(self, waiter: _Waiter[ItemT, ResultT]) -> None:
        if waiter.future.done():
            return
        try:
            outcome: ResultT | Exception = await self._run_one(waiter.item)
        except Exception as error:
            outcome = error
        _settle(waiter.future, outcome)
