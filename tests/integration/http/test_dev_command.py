"""``portside dev`` on a machine with no Redis or Postgres configured: embedded servers, the
main example job, the quickstart's curl commands, and a clean shutdown (issue 8)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from portside.testing import wait_for
from tests.integration.http.support import events_of

pytestmark = pytest.mark.integration

_CONFIGURED = (
    "PORTSIDE_REDIS_URL",
    "PORTSIDE_POSTGRES_DSN",
    "PORTSIDE_ADMIN_TOKEN",
    "PORTSIDE_APP",
)


def _env() -> dict[str, str]:
    """This environment minus any server URL, as on a fresh machine."""
    env = {key: value for key, value in os.environ.items() if key not in _CONFIGURED}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _accepts(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


async def test_dev_once_runs_the_main_job_on_embedded_servers_and_exits_0() -> None:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portside.app.cli", "dev", "--once",
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    seconds = time.perf_counter() - started
    text = out.decode()
    assert process.returncode == 0, (text, err.decode()[-3000:])
    print(f"portside dev --once: {seconds:.1f} s")
    assert "(embedded, discarded on exit)" in text
    # OBS2: the shipped dashboard and alert rules, where they are installed.
    shipped = re.findall(r"(?:Grafana|Alerts) +(\S+)", text)
    assert [Path(path).name for path in shipped] == [
        "grafana-dashboard.json",
        "prometheus-rules.yml",
    ]
    assert all(Path(path).is_file() for path in shipped)
    assert re.search(r"Job ingest\.dev-[0-9a-f]+ completed", text)
    result = json.loads(text[text.index("{\n") :])
    assert result["state"] == "completed"
    assert result["result"]["records"] > 0
    for url in re.findall(r"(?:Redis|Postgres) +(\S+)", text):
        assert not _accepts(url), f"{url} still accepts connections after exit"
    assert seconds < 60


class _Dev:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode().rstrip("\n"))

    def find(self, pattern: str) -> str:
        for line in self.lines:
            match = re.search(pattern, line)
            if match:
                return match.group(1)
        raise AssertionError(f"no line matches {pattern!r}: {self.lines}")


@pytest.fixture
async def dev() -> AsyncIterator[_Dev]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portside.app.cli", "dev", "--port", "0",
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    running = _Dev(process)
    try:
        await wait_for(
            lambda: (
                any(line.startswith("Serving") for line in running.lines)
                or process.returncode is not None
            ),
            timeout=60,
            message="portside dev to start serving",
        )
        assert process.returncode is None, running.lines
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_dev_serves_the_quickstart_and_stops_cleanly_on_sigterm(dev: _Dev) -> None:
    url = dev.find(r"API +(http://\S+)")
    token = dev.find(r"bearer token (\S+)")
    servers = re.findall(r"(?:Redis|Postgres) +(\S+)", "\n".join(dev.lines))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        body = {"organizationId": "org-1", "integrationId": "int-1", "date": "2024-05-01"}
        job = (await client.post("/jobs/ingest", json=body)).json()

        async def finished() -> bool:
            state = (await client.get(f"/jobs/{job['jobId']}")).json()["state"]
            return bool(state == "completed")

        await wait_for(finished, timeout=30, message="the dev worker to finish the ingest job")
        run = (await client.post("/runs", json={"input": "quickstart", "steps": 2})).json()
        kinds = [sse.event async for sse in events_of(client, run["runId"])]
        assert kinds[0] == "run.created"
        assert kinds[-1] == "run.completed"
        health = (await client.get("/health/queues")).json()
        assert {queue["queue"] for queue in health["queues"]} >= {"ingestion:ingest"}
        admin = await client.get("/admin/failed-jobs", headers={"Authorization": f"Bearer {token}"})
        assert admin.status_code == 200
    dev.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(dev.process.wait(), timeout=60) == 0
    assert not _accepts(url)
    for server in servers:
        assert not _accepts(server), f"{server} still accepts connections after exit"
