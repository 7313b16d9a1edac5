"""The producer against a real Redis: scripts reloaded, connections lost, overlapping calls
(Q1, Q10)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
import redis.asyncio as redis

from portside.adapters.bullmq import BullMQQueue
from portside.ports import BackendUnavailableError, JobOptions, JobRef, NewJob
from portside.servers import LocalRedis, ServerNotFoundError

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    """A Redis of this test only: ``SCRIPT FLUSH`` empties the script cache of the whole
    server, which the shared per-worker server must not see."""
    server = LocalRedis()
    try:
        server.start()
    except ServerNotFoundError as exc:
        pytest.skip(f"needs a redis-server binary for a private server: {exc}")
    try:
        yield server
    finally:
        server.stop()


def _mixed(count: int) -> list[NewJob]:
    """Jobs for all three add scripts: standard, delayed and prioritized."""
    kinds = [None, JobOptions(delay=60), JobOptions(priority=2)]
    return [NewJob(name="mix", data={"i": i}, options=kinds[i % 3]) for i in range(count)]


async def test_q1_jobs_are_added_once_when_redis_has_lost_the_scripts(
    own_redis: LocalRedis,
) -> None:
    """Q1: a server that never saw the scripts, or flushed them, answers NOSCRIPT; the
    producer loads them and sends the call again, and every job exists exactly once."""
    adapter = BullMQQueue(own_redis.url, prefix="own")
    raw = redis.Redis.from_url(own_redis.url, decode_responses=True, protocol=2)
    try:
        first = await adapter.enqueue_bulk("s", _mixed(30))
        await raw.script_flush()
        single = await adapter.enqueue("s", "one", {})
        await raw.script_flush()
        second = await adapter.enqueue_bulk("s", _mixed(30))
        counts = await adapter.counts("s")
        assert (counts.waiting, counts.delayed) == (41, 20)
        ids = {ref.id for ref in [*first, single, *second]}
        assert len(ids) == 61
        assert await raw.zcard("own:s:prioritized") == 20
    finally:
        await adapter.close()
        await raw.aclose()


async def test_q10_enqueue_rides_out_a_killed_connection(
    make_adapter: Callable[..., BullMQQueue], raw_redis: redis.Redis
) -> None:
    """Q10: CLIENT KILL of the producer's connections between calls: the next enqueue and
    enqueue_bulk reconnect and succeed, and nothing is added twice."""
    adapter = make_adapter(retry_backoff=0.01)
    await adapter.enqueue("killed", "before", {})
    for _ in range(2):
        mine = [c for c in await raw_redis.client_list() if c.get("name") == "portside"]
        assert mine, "the producer should hold a connection between calls"
        for client in mine:
            await raw_redis.client_kill_filter(_id=client["id"])
        await adapter.enqueue("killed", "single", {})
        await adapter.enqueue_bulk("killed", [NewJob(name="bulk", data={"i": i}) for i in range(5)])
    assert (await adapter.counts("killed")).waiting == 13


async def test_q1_overlapping_enqueues_all_land_once(
    make_adapter: Callable[..., BullMQQueue],
) -> None:
    """Q1: many enqueues and bulks in flight together (more than one connection's worth)
    each add their own jobs and return their own refs."""
    adapter = make_adapter()

    async def bulk(b: int) -> list[JobRef]:
        return await adapter.enqueue_bulk(
            "busy", [NewJob(name="many", data={"b": b, "i": i}) for i in range(50)]
        )

    singles = await asyncio.gather(*(adapter.enqueue("busy", "one", {"i": i}) for i in range(200)))
    bulks = await asyncio.gather(*(bulk(b) for b in range(10)))

    async def twos() -> list[JobRef]:
        return await asyncio.gather(*(adapter.enqueue("busy", "two", {}) for _ in range(50)))

    mixed_bulk, mixed_twos = await asyncio.gather(bulk(10), twos())
    refs = [*singles, *(ref for batch in bulks for ref in batch), *mixed_bulk, *mixed_twos]
    assert len({ref.id for ref in refs}) == 800
    assert (await adapter.counts("busy")).waiting == 800


async def test_q10_enqueue_to_a_server_that_never_answers_times_out() -> None:
    """Q10: a server that completes the connection handshake but never answers an add makes
    enqueue and enqueue_bulk fail with BackendUnavailableError after ``command_timeout`` and
    the retries, instead of hanging."""
    received: list[bytes] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            received.append(chunk)
            if b"EVALSHA" not in chunk:  # the handshake (CLIENT SETNAME...): one OK each
                commands = chunk.count(b"\r\n*") + chunk.startswith(b"*")
                writer.write(b"+OK\r\n" * commands)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    adapter = BullMQQueue(
        f"redis://127.0.0.1:{port}/0", command_timeout=0.2, retries=1, retry_backoff=0.01
    )
    try:
        with pytest.raises(BackendUnavailableError) as info:
            await adapter.enqueue("silent", "x", {})
        assert "gave no reply" in str(info.value)
        with pytest.raises(BackendUnavailableError):
            await adapter.enqueue_bulk("silent", [NewJob(name="x", data={})])
        assert any(b"EVALSHA" in chunk for chunk in received)
    finally:
        await adapter.close()
        server.close()
        await server.wait_closed()


async def test_q10_a_slow_but_answering_server_is_not_timed_out() -> None:
    """Q10: ``command_timeout`` bounds the wait for each next reply, not the whole bulk: a
    server that answers every 0.2 s keeps a bulk alive well past a 0.6 s timeout."""

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pending = b""
        while chunk := await reader.read(65536):
            pending += chunk
            if b"MULTI" not in pending:  # the handshake: one OK per command
                writer.write(b"+OK\r\n" * (chunk.count(b"\r\n*") + chunk.startswith(b"*")))
                pending = b""
                continue
            if not pending.endswith(b"$4\r\nEXEC\r\n"):
                continue
            jobs = pending.count(b"EVALSHA")
            for reply in [b"+OK\r\n"] + [b"+QUEUED\r\n"] * jobs:
                writer.write(reply)
                await asyncio.sleep(0.2)  # the server's pace, not a wait in the test
            writer.write(b"*%d\r\n" % jobs + b"$5\r\nslow1\r\n" * jobs)
            pending = b""
        writer.close()

    server = await asyncio.start_server(slow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    adapter = BullMQQueue(f"redis://127.0.0.1:{port}/0", command_timeout=0.6, retries=0)
    try:
        refs = await adapter.enqueue_bulk("slow", [NewJob(name="x", data={}) for _ in range(6)])
        assert [ref.id for ref in refs] == ["slow1"] * 6
    finally:
        await adapter.close()
        server.close()
        await server.wait_closed()
