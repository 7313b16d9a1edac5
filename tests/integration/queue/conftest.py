"""Fixtures of the BullMQ adapter's integration tests: raw Redis access, worker processes, Node."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from portside.adapters.bullmq import BullMQQueue
from portside.ports import QueueEvent

HERE = Path(__file__).parent
WORKER_SCRIPT = HERE / "queue_worker_process.py"
NODE_DIR = Path(
    os.environ.get("PORTSIDE_NODE_BULLMQ", "~/.cache/portside/node-bullmq")
).expanduser()
NODE_OTEL_DIR = Path(
    os.environ.get("PORTSIDE_NODE_BULLMQ_OTEL", "~/.cache/portside/node-bullmq-otel")
).expanduser()
NODE_OTEL_PINS = {
    "bullmq": "5.81.5",
    "ioredis": "5.11.1",
    "bullmq-otel": "1.3.1",  # 2.x needs bullmq 6
    "@opentelemetry/api": "1.9.1",
    "@opentelemetry/core": "2.12.1",
    "@opentelemetry/sdk-trace-base": "2.12.1",
}
"""OBS1 interop: BullMQ with its OpenTelemetry add-on, pinned (the versions the tests ran on)."""
DEADLINE = 30.0


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[redis.Redis]:
    """A plain client on the test's Redis, to look at BullMQ's keys directly."""
    client = redis.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def make_adapter(
    redis_url: str, redis_prefix: str
) -> AsyncIterator[Callable[..., BullMQQueue]]:
    """Build more adapters on the test's prefix (with tuning); all are closed afterwards."""
    made: list[BullMQQueue] = []

    def make(**tuning: Any) -> BullMQQueue:
        adapter = BullMQQueue(redis_url, prefix=redis_prefix, **tuning)
        made.append(adapter)
        return adapter

    try:
        yield make
    finally:
        for adapter in made:
            await adapter.close()


async def next_event(
    stream: Any, predicate: Callable[[QueueEvent], bool], what: str, timeout: float = DEADLINE
) -> QueueEvent:
    """The first event of ``stream`` matching ``predicate``; fails naming ``what``."""
    seen: list[tuple[str, str, int]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                event: QueueEvent = await anext(stream)
                seen.append((event.kind, event.job_id, event.attempt))
                if predicate(event):
                    return event
    except TimeoutError:
        raise AssertionError(f"waited {timeout:g} s for {what}; saw {seen}") from None


@pytest.fixture
def events_until() -> Callable[..., Any]:
    """``await events_until(stream, predicate, what)``: the first matching event, or fail."""
    return next_event


@dataclass
class WorkerProcess:
    """A portside worker in a child process (see ``queue_worker_process.py``)."""

    process: asyncio.subprocess.Process

    async def line(self, prefix: str, timeout: float = DEADLINE) -> str:
        """The next stdout line starting with ``prefix`` (fails after ``timeout``)."""
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await self.process.stdout.readline()
                    if not raw:
                        stderr = b""
                        if self.process.stderr is not None:
                            stderr = await self.process.stderr.read()
                        raise AssertionError(
                            f"worker process ended before printing {prefix!r}: "
                            f"{stderr.decode(errors='replace')[-2000:]}"
                        )
                    text = raw.decode().strip()
                    if text.startswith(prefix):
                        return text
        except TimeoutError:
            raise AssertionError(f"worker process printed no {prefix!r} in {timeout:g} s") from None

    async def exit_code(self, timeout: float = DEADLINE) -> int:
        """Wait for the process to end and return its exit code."""
        try:
            async with asyncio.timeout(timeout):
                return await self.process.wait()
        except TimeoutError:
            raise AssertionError(f"worker process did not exit within {timeout:g} s") from None


@pytest.fixture
async def worker_process(redis_url: str, redis_prefix: str) -> AsyncIterator[Callable[..., Any]]:
    """Start ``queue_worker_process.py`` children; any still running are killed afterwards."""
    started: list[asyncio.subprocess.Process] = []

    async def start(queue: str, mode: str, **tuning: Any) -> WorkerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER_SCRIPT),
            redis_url,
            redis_prefix,
            queue,
            mode,
            json.dumps(tuning),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        started.append(process)
        return WorkerProcess(process)

    try:
        yield start
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()
                await process.wait()


@dataclass(frozen=True)
class NodeBullMQ:
    """A Node.js with npm ``bullmq@5`` installed; runs scripts from ``node/``."""

    node_modules: Path
    version: str

    async def run(self, script: str, *args: str, timeout: float = 60.0) -> Any:
        """Run ``node/<script>`` with ``args``; returns the JSON its last stdout line holds."""
        env = {**os.environ, "NODE_PATH": str(self.node_modules)}
        process = await asyncio.create_subprocess_exec(
            "node",
            str(HERE / "node" / script),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            async with asyncio.timeout(timeout):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"node {script} did not finish within {timeout:g} s") from None
        assert process.returncode == 0, f"node {script} failed: {err.decode()[-3000:]}"
        return json.loads(out.decode().strip().splitlines()[-1])


def _npm_install(directory: Path, specs: list[str], marker: str, why: str) -> Path:
    """``npm install specs`` into ``directory`` once (xdist workers take turns); the
    ``package.json`` of the ``marker`` package. Skips when node or npm cannot do it."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(f"{why} needs node and npm on PATH")
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers install once, one at a time
        package = directory / "node_modules" / marker / "package.json"
        if not package.exists():
            manifest = directory / "package.json"
            if not manifest.exists():
                manifest.write_text('{"name": "portside-node-interop", "private": true}\n')
            wanted = " ".join(specs)
            try:
                result = subprocess.run(
                    ["npm", "install", "--no-audit", "--no-fund", "--save-exact", *specs],
                    cwd=directory,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                pytest.skip(f"npm install {wanted} took over 300 s (no registry access?)")
            if result.returncode != 0 or not package.exists():
                pytest.skip(f"npm install {wanted} failed: {result.stderr.strip()[-500:]}")
    return package


def _install_node_bullmq() -> NodeBullMQ:
    package = _npm_install(NODE_DIR, ["bullmq@5"], "bullmq", "Node interop (Q12)")
    version = json.loads(package.read_text())["version"]
    if not version.startswith("5."):
        pytest.skip(f"{NODE_DIR} holds bullmq {version}, not 5.x; delete it to reinstall")
    return NodeBullMQ(node_modules=NODE_DIR / "node_modules", version=version)


@pytest.fixture(scope="session")
def node_bullmq() -> NodeBullMQ:
    """Node BullMQ 5 from the cache dir (installed on first use); skips if unavailable."""
    return _install_node_bullmq()


@pytest.fixture(scope="session")
def node_bullmq_otel() -> NodeBullMQ:
    """Node BullMQ 5 with bullmq-otel and the OpenTelemetry SDK (``NODE_OTEL_PINS``),
    installed on first use into ``NODE_OTEL_DIR``; skips if unavailable."""
    specs = [f"{name}@{version}" for name, version in NODE_OTEL_PINS.items()]
    _npm_install(NODE_OTEL_DIR, specs, "bullmq-otel", "Node tracing interop (OBS1)")
    for name, version in NODE_OTEL_PINS.items():
        found = json.loads((NODE_OTEL_DIR / "node_modules" / name / "package.json").read_text())
        if found["version"] != version:
            held = found["version"]
            pytest.skip(f"{NODE_OTEL_DIR} holds {name} {held}, not {version}; delete it")
    return NodeBullMQ(node_modules=NODE_OTEL_DIR / "node_modules", version=NODE_OTEL_PINS["bullmq"])
