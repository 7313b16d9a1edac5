"""Issue 8 done-when: malformed JSON, huge bodies, wrong types, unknown ids and a missing
token get clear 4xx from the real server on real Redis and Postgres, never a 500."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from tests.integration.http.support import TOKEN, RunningApi

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


async def _raw(api: RunningApi, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` bytes over a fresh TCP connection; the status and the body read."""
    parts = urlsplit(api.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        status = int(head.split(b" ", 2)[1])
        body = await asyncio.wait_for(reader.read(4096), timeout=10)
    finally:
        writer.close()
    return status, body


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "error"),
    [
        ("POST", "/jobs/ingest", b"{nope", 400, "malformed_json"),
        ("POST", "/runs", b'{"input": "x",', 400, "malformed_json"),
        ("POST", "/jobs/ingest", b"[]", 422, "invalid_request"),
        ("POST", "/jobs/ingest", b'{"organizationId": 5}', 422, "invalid_payload"),
        ("POST", "/jobs/ingest?delay=soon", b"{}", 422, "invalid_request"),
        ("POST", "/runs", b'{"input": "x", "steps": "five"}', 422, "invalid_request"),
        ("POST", "/runs", b'{"input": "nul \\u0000 byte"}', 422, "invalid_request"),
        ("POST", "/jobs/no-such-job", b"{}", 404, "unknown_job"),
        ("GET", "/jobs/no-such-id", None, 404, "unknown_job"),
        ("GET", "/jobs/a%00b", None, 404, "unknown_job"),
        ("GET", "/runs/run-0123456789abcdef0123456789abcdef", None, 404, "unknown_run"),
        ("GET", "/runs/run%00x/events", None, 404, "unknown_run"),
        ("GET", "/runs/run-x/events?from_seq=-1", None, 422, "invalid_request"),
        ("GET", "/admin/failed-jobs", None, 401, "unauthorized"),
    ],
)
async def test_bad_requests_get_clear_4xx(
    api_server: RunningApi, method: str, url: str, body: bytes | None, status: int, error: str
) -> None:
    async with api_server.client() as client:
        response = await client.request(method, url, content=body, headers=JSON)
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["error"] == error
    assert problem["detail"]


async def test_admin_with_the_token_reaches_real_postgres(api_server: RunningApi) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with api_server.client() as client:
        listed = await client.get("/admin/failed-jobs", headers=auth)
        assert (listed.status_code, listed.json()) == (200, {"items": []})
        for failure_id in ("nope", "00000000-0000-0000-0000-000000000000", "%00"):
            retried = await client.post(f"/admin/failed-jobs/{failure_id}/retry", headers=auth)
            assert retried.status_code == 404, retried.text
        bad_filter = await client.get("/admin/failed-jobs?queue=a%00b", headers=auth)
        assert bad_filter.status_code == 422
        wrong = await client.get("/admin/failed-jobs", headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401


async def test_a_huge_declared_body_is_refused_before_it_is_sent(api_server: RunningApi) -> None:
    status, body = await _raw(
        api_server,
        b"POST /jobs/ingest HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 500000000\r\n\r\n",
    )
    assert status == 413
    assert b"body_too_large" in body


async def test_a_huge_chunked_body_is_cut_off_at_the_limit(api_server: RunningApi) -> None:
    chunk = b" " * 65536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    request = (
        b"POST /runs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + framed * 20  # 1.25 MiB, over the 1 MiB limit
    )
    status, body = await _raw(api_server, request)
    assert status == 413
    assert b"body_too_large" in body
