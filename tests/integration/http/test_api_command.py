"""OPS2: ``portside api`` serves the HTTP app with uvicorn on real Redis and Postgres: probes,
the admin API behind its token, the public endpoints behind ``PORTSIDE_API_TOKEN``, and a
graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import httpx

from portside.testing import wait_for
from tests.integration.http.support import TOKEN, WORKER_APP

API_TOKEN = "integration-api-token-0123456789"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_ops2_portside_api_serves_the_app_and_stops_on_sigterm(
    redis_url: str, redis_prefix: str, postgres_dsn: str
) -> None:
    """OPS2: ``portside api --port P --workers 1 --no-access-log`` answers ``/livez`` and
    ``/readyz``, refuses ``/admin`` and the job endpoints without their tokens (401, problem
    body), serves them with the tokens, and shuts down gracefully on SIGTERM."""
    port = _free_port()
    env = {
        **os.environ,
        "PORTSIDE_REDIS_URL": redis_url,
        "PORTSIDE_REDIS_PREFIX": redis_prefix,
        "PORTSIDE_POSTGRES_DSN": postgres_dsn,
        "PORTSIDE_APP": WORKER_APP,
        "PORTSIDE_ADMIN_TOKEN": TOKEN,
        "PORTSIDE_API_TOKEN": API_TOKEN,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "portside.app.cli",
        "api",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            async def live() -> bool:
                if process.returncode is not None:
                    return True
                try:
                    return (await client.get("/livez")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(live, timeout=60, message="portside api to answer /livez")
            assert process.returncode is None, "portside api exited early"

            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text

            refused = await client.get("/admin/queues")
            assert refused.status_code == 401
            assert refused.headers["content-type"].startswith("application/problem+json")
            queues = await client.get("/admin/queues", headers={"Authorization": f"Bearer {TOKEN}"})
            assert queues.status_code == 200, queues.text

            job = {"organizationId": "org-1", "integrationId": "int-1", "date": "2024-05-01"}
            assert (await client.post("/jobs/ingest", json=job)).status_code == 401
            accepted = await client.post(
                "/jobs/ingest", json=job, headers={"Authorization": f"Bearer {API_TOKEN}"}
            )
            assert accepted.status_code == 202, accepted.text

        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        async with asyncio.timeout(30):
            log = (await process.stderr.read()).decode(errors="replace")
            code = await process.wait()
        # uvicorn shuts down gracefully, then re-raises the signal it caught (exit -15).
        assert "Application shutdown complete" in log, log[-2000:]
        assert code in (0, -signal.SIGTERM), log[-2000:]
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
