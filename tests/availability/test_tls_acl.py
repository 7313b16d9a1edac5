"""S3: rediss:// with CA and client certificates and an ACL user, on every connection the
BullMQ adapter opens; refusals fail fast with a clear error."""

from __future__ import annotations

import asyncio
import gc
import time
from asyncio.sslproto import SSLProtocol
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from portside.adapters.bullmq import BullMQQueue
from portside.ports import ConfigurationError, Job, QueueEvent
from portside.testing import wait_for
from portside.testing.certificates import make_other_ca
from tests.availability.conftest import APP_PREFIX, APP_USER, TlsRedis

QUEUE = "jobs"
FAST = 3.0
"""A refusal must surface within this many seconds (no reconnect loop)."""


def _tls_sockets_open() -> int:
    """Sockets under TLS connections of this process's event loop that are still open."""
    return len([obj for obj in gc.get_objects() if _open_tls(obj)])


def _open_tls(obj: object) -> bool:
    try:
        if not isinstance(obj, SSLProtocol):
            return False
    except ReferenceError:  # a dead weakref.proxy (redis-py's Sentinel pools leave some)
        return False
    transport = getattr(obj, "_transport", None)
    return transport is not None and not transport.is_closing()


@pytest.fixture(autouse=True)
async def _tls_closed() -> AsyncIterator[None]:
    """After each test, wait for the TLS connections it closed to finish closing: a TLS
    shutdown still in progress when the event loop ends leaves its socket unclosed."""
    yield
    await wait_for(
        lambda: _tls_sockets_open() == 0,
        timeout=10,
        message="every TLS connection of the test to finish closing",
        interval=0.05,
    )


async def _clients(tls_redis: TlsRedis) -> list[dict[str, Any]]:
    admin = redis.Redis.from_url(tls_redis.server.url)
    try:
        listing: list[dict[str, Any]] = await admin.client_list()
        return listing
    finally:
        await admin.aclose()


async def test_s3_an_acl_user_over_tls_runs_jobs_on_every_connection(tls_redis: TlsRedis) -> None:
    """S3: an ACL user limited to ``tenant:*`` over TLS with a client certificate enqueues,
    works (pipelined and blocking worker connections), reads events and controls the queue;
    the server serves TLS only, and every connection the adapter opened is that user's."""
    adapter = BullMQQueue(tls_redis.url(), prefix=APP_PREFIX)
    done: list[str] = []

    async def handler(job: Job) -> str:
        done.append(job.id)
        return job.id

    events = adapter.events(QUEUE)
    seen: list[QueueEvent] = []

    async def read_events() -> None:
        async for event in events:
            seen.append(event)

    reader = asyncio.create_task(read_events())
    worker = adapter.consume(QUEUE, handler, concurrency=4)
    try:
        await worker.start()
        refs = [await adapter.enqueue(QUEUE, "work", {"n": n}) for n in range(20)]
        await wait_for(lambda: len(done) == 20, timeout=20, message="20 jobs done over TLS")
        await wait_for(
            lambda: sum(e.kind == "completed" for e in seen) == 20,
            timeout=20,
            message="20 completed events over TLS",
        )
        info = await adapter.get_job(QUEUE, refs[0].id)
        assert info is not None
        assert info.state == "completed"
        assert (await adapter.counts(QUEUE)).completed == 20
        await adapter.pause(QUEUE)
        await adapter.resume(QUEUE)
        clients = await _clients(tls_redis)
        named = [c for c in clients if c.get("name", "").startswith(APP_PREFIX)]
        assert len(named) >= 3, clients  # pooled, pipelined worker, blocking worker, events
        assert {c["user"] for c in named} == {APP_USER}, named
    finally:
        await worker.close()
        reader.cancel()
        await adapter.close()


async def _refused_fast(adapter: BullMQQueue, what: str) -> ConfigurationError:
    began = time.monotonic()
    with pytest.raises(ConfigurationError) as caught:
        await adapter.enqueue(QUEUE, "work", {})
    assert time.monotonic() - began < FAST, f"{what}: enqueue took too long to fail"

    async def handler(job: Job) -> None:
        return None

    worker = adapter.consume(QUEUE, handler)
    began = time.monotonic()
    with pytest.raises(ConfigurationError) as at_start:
        await worker.start()
    assert time.monotonic() - began < FAST, f"{what}: worker start took too long to fail"
    assert at_start.value.field == "redis_url"
    events = adapter.events(QUEUE)
    began = time.monotonic()
    with pytest.raises(ConfigurationError):
        await anext(aiter(events))
    assert time.monotonic() - began < FAST, f"{what}: the event stream kept reconnecting"
    await adapter.close()
    return caught.value


async def test_s3_a_wrong_password_fails_fast_with_a_clear_error(tls_redis: TlsRedis) -> None:
    """S3: a wrong password fails enqueue, a worker's start and an event stream at once with
    a ConfigurationError naming the refusal and redis_url, and never shows the password."""
    error = await _refused_fast(
        BullMQQueue(tls_redis.url(password="wrong-one"), prefix=APP_PREFIX), "wrong password"
    )
    assert "username or password was refused" in str(error)
    assert "wrong-one" not in str(error)
    assert error.field == "redis_url"


async def test_s3_a_certificate_from_another_ca_fails_fast(
    tls_redis: TlsRedis, tmp_path: Path
) -> None:
    """S3: a client certificate the server's CA did not sign is refused at once."""
    cert, key = make_other_ca(tmp_path / "stranger")
    query = f"ssl_ca_certs={tls_redis.tls.ca}&ssl_certfile={cert}&ssl_keyfile={key}"
    error = await _refused_fast(
        BullMQQueue(tls_redis.url(query=query), prefix=APP_PREFIX), "stranger certificate"
    )
    assert "refuse" in str(error)
    assert "client certificate" in str(error)


async def test_s3_an_untrusted_server_certificate_fails_fast(
    tls_redis: TlsRedis, tmp_path: Path
) -> None:
    """S3: a server certificate that the client's CA file did not sign is refused at once."""
    make_other_ca(tmp_path / "stranger")
    tls = tls_redis.tls
    query = (
        f"ssl_ca_certs={tmp_path / 'stranger' / 'stranger-ca.crt'}"
        f"&ssl_certfile={tls.client_cert}&ssl_keyfile={tls.client_key}"
    )
    error = await _refused_fast(
        BullMQQueue(tls_redis.url(query=query), prefix=APP_PREFIX), "untrusted server"
    )
    assert "certificate was not trusted" in str(error)


async def test_s3_the_acl_user_may_not_leave_its_prefix(tls_redis: TlsRedis) -> None:
    """S3: the ACL user's key pattern holds: a queue under another prefix is refused with a
    ConfigurationError naming the ACL, not retried."""
    adapter = BullMQQueue(tls_redis.url(), prefix="other")
    try:
        with pytest.raises(ConfigurationError, match="ACL user may not"):
            await adapter.enqueue(QUEUE, "work", {})
    finally:
        await adapter.close()
