"""A2: JSON log lines are written in batches, once per event-loop turn, and never lost."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from portside.app import Registry, WorkerRuntime
from portside.app.logs import JsonLinesHandler, configure_logging, event, flush_logs
from portside.testing import wait_for
from tests.unit.app.support import Item, item_job

_log = logging.getLogger("portside.test.logs")


class CountingStream(io.StringIO):
    """A text stream that counts its ``write`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def events(self) -> list[str]:
        return [json.loads(line)["event"] for line in self.getvalue().splitlines()]


@pytest.fixture
def stream() -> Iterator[CountingStream]:
    """``configure_logging`` onto a counting stream; back to stderr afterwards."""
    target = CountingStream()
    configure_logging("INFO", target)
    try:
        yield target
    finally:
        configure_logging("INFO")


async def test_a2_lines_of_one_loop_turn_are_written_together_after_it(
    stream: CountingStream,
) -> None:
    for n in range(5):
        event(_log, "job.completed", n=n)
    assert stream.getvalue() == ""

    await wait_for(lambda: stream.writes > 0, timeout=5, message="the held lines to be written")

    assert stream.events() == ["job.completed"] * 5
    assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == list(range(5))
    assert stream.writes == 1


async def test_a2_a_warning_is_written_at_once_after_the_lines_before_it(
    stream: CountingStream,
) -> None:
    event(_log, "job.started")
    event(_log, "job.retrying", logging.WARNING)

    assert stream.events() == ["job.started", "job.retrying"]


async def test_a2_flush_logs_writes_held_lines_at_once(stream: CountingStream) -> None:
    event(_log, "worker.stopped")

    flush_logs()

    assert stream.events() == ["worker.stopped"]


async def test_a2_a_full_buffer_is_written_without_waiting(stream: CountingStream) -> None:
    for n in range(1000):
        event(_log, "job.completed", n=n)

    written = stream.events()
    assert 0 < len(written) < 1000
    flush_logs()
    assert len(stream.events()) == 1000


def test_a2_lines_logged_outside_an_event_loop_are_written_at_once(
    stream: CountingStream,
) -> None:
    event(_log, "cli.done")

    assert stream.events() == ["cli.done"]


async def test_a2_closing_or_replacing_the_handler_writes_what_it_held() -> None:
    """``logging.shutdown`` at exit closes handlers; ``configure_logging`` replaces its own."""
    first, second = CountingStream(), CountingStream()
    handler = JsonLinesHandler(first)
    logger = logging.getLogger("portside.test.close")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # whatever level other tests left on "portside"
    try:
        event(logger, "held")
        handler.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert first.events() == ["held"]

    configure_logging("INFO", second)
    try:
        event(_log, "before.replace")
        configure_logging("INFO")
    finally:
        configure_logging("INFO")
    assert second.events() == ["before.replace"]


async def test_a2_stop_writes_every_line_before_it_returns(
    stream: CountingStream, make_runtime: Callable[..., WorkerRuntime]
) -> None:
    """Nothing logged by the runtime is still held once ``stop()`` returns."""

    async def noop(payload: Item, ctx: object) -> None:
        return None

    runtime = make_runtime(Registry([item_job(noop)]))
    await runtime.start()
    await runtime.stop()

    assert stream.events()[-2:] == ["worker.stopping", "worker.stopped"]
