"""A fuzz over the OpenAPI schema against the real server on real Redis and Postgres: no 5xx,
only documented answers (issue 8: bad requests get clear 4xx, never a 500)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.integration.http.support import TOKEN, RunningApi
from tests.unit.http.openapi_fuzz import FuzzRequest, check_response, requests

pytestmark = pytest.mark.integration


async def _send(client: httpx.AsyncClient, request: FuzzRequest) -> tuple[int, str, bytes]:
    async with client.stream(
        request.method,
        request.path,
        params=request.params,
        headers=request.raw_headers(),
        content=request.content,
    ) as response:
        content_type = response.headers.get("content-type", "")
        if content_type.startswith("text/event-stream"):
            return response.status_code, content_type, b""  # a live stream: do not wait on it
        return response.status_code, content_type, await response.aread()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzz_against_real_servers_never_gets_a_5xx(
    api_server: RunningApi, data: st.DataObject
) -> None:
    document: dict[str, Any] = api_server.app.openapi()
    request = data.draw(requests(document, TOKEN))
    async with api_server.client(timeout=15) as client:
        status, content_type, body = await _send(client, request)
    event(f"{request.method.upper()} {request.template} -> {status}")
    check_response(document, request, status, content_type, body)
