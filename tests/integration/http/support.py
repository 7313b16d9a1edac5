"""Helpers of the HTTP integration tests: a real API server, a real worker process, SSE reads.

Real servers only (harness fixtures); nothing here touches the in-memory fakes (H4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from httpx_sse import ServerSentEvent, aconnect_sse

from portside.testing import wait_for

TOKEN = "integration-admin-token-0123456789"
WEBHOOK_SECRET = "integration-webhook-secret-0123"
WORKER_APP = "portside.examples.dev:application"


@dataclass
class RunningApi:
    """The API served by uvicorn on a free port."""

    url: str
    app: FastAPI

    def client(self, timeout: float = 30.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=timeout)


@dataclass
class WorkerProcess:
    """A ``portside worker`` subprocess; its JSON log lines are collected as they come."""

    process: asyncio.subprocess.Process
    events: list[dict[str, Any]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").strip()
            try:
                self.events.append(json.loads(line))
            except json.JSONDecodeError:
                self.other.append(line)

    def seen(self, name: str) -> bool:
        return any(event.get("event") == name for event in self.events)

    async def ready(self, timeout: float = 30.0) -> None:
        await wait_for(
            lambda: self.seen("worker.ready") or self.process.returncode is not None,
            timeout=timeout,
            message="the worker process to log worker.ready",
        )
        assert self.process.returncode is None, f"worker exited early: {self.other[-20:]}"

    async def stop(self, timeout: float = 30.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        with contextlib.suppress(Exception):
            await self._reader
        return code


async def start_worker(
    redis_url: str, redis_prefix: str, postgres_dsn: str, **extra_env: str
) -> WorkerProcess:
    """``portside worker --app portside.examples.dev:application`` on the test's servers."""
    env = {
        **os.environ,
        "PORTSIDE_REDIS_URL": redis_url,
        "PORTSIDE_REDIS_PREFIX": redis_prefix,
        "PORTSIDE_POSTGRES_DSN": postgres_dsn,
        "PORTSIDE_APP": WORKER_APP,
        "PORTSIDE_LOG_LEVEL": "INFO",
        "PORTSIDE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        **extra_env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "portside.app.cli",
        "worker",
        "--grace",
        "10",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    worker = WorkerProcess(process)
    await worker.ready()
    return worker


async def events_of(
    client: httpx.AsyncClient,
    run_id: str,
    *,
    from_seq: int = 1,
    last_event_id: int | None = None,
    stop_after: int | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """The run's SSE events (comments and the retry hint skipped), until the stream ends or
    the event with id ``stop_after`` was read (then the connection is dropped)."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    url = f"/runs/{run_id}/events?from_seq={from_seq}"
    async with aconnect_sse(client, "GET", url, headers=headers) as source:
        assert source.response.status_code == 200
        async for sse in source.aiter_sse():
            if not sse.data:
                continue
            yield sse
            if stop_after is not None and sse.id == str(stop_after):
                return


async def run_status(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    response = await client.get(f"/runs/{run_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
