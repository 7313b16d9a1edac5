"""GET /metrics (a registry per app) and the API's configuration from the environment."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from portside.app.http import HttpSettings
from portside.ports import ConfigurationError
from tests.unit.http.support import Api, build_api


async def test_metrics_count_requests_by_route_template(api: Api) -> None:
    await api.client.get("/jobs/ingest.nope")
    await api.client.get("/jobs/other.nope")
    await api.client.get("/no/such/route")
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert (
        'portside_http_requests_total{method="GET",route="/jobs/{job_id}",status="404"} 2.0' in text
    )
    assert 'route="unmatched",status="404"' in text
    assert 'portside_health_queue_depth{queue="ingestion:ingest"} 0.0' in text
    assert "ingest.nope" not in text  # raw paths never become labels


async def test_each_app_has_its_own_metrics_registry(api: Api) -> None:
    other, _, _ = build_api(api.infra)
    await api.client.get("/jobs/x.y")
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        text = (await client.get("/metrics")).text
    assert 'route="/jobs/{job_id}"' not in text


def test_settings_come_from_the_environment() -> None:
    settings = HttpSettings.from_env(
        {
            "PORTSIDE_ADMIN_TOKEN": "a" * 20,
            "PORTSIDE_WEBHOOK_URLS": " http://a.test/x , https://b.test/y ,",
            "PORTSIDE_WEBHOOK_SECRET": "s" * 16,
            "PORTSIDE_HTTP_MAX_BODY_BYTES": "2048",
        }
    )
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "a" * 20
    assert settings.webhook_urls == ("http://a.test/x", "https://b.test/y")
    assert settings.max_body_bytes == 2048
    assert "aaaa" not in repr(settings)  # secrets never print


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"PORTSIDE_ADMIN_TOKEN": "short"}, "admin_token"),
        ({"PORTSIDE_WEBHOOK_URLS": "http://a.test/x"}, "PORTSIDE_WEBHOOK_SECRET"),
        (
            {"PORTSIDE_WEBHOOK_URLS": "ftp://a.test/x", "PORTSIDE_WEBHOOK_SECRET": "s" * 16},
            "webhook_urls",
        ),
        ({"PORTSIDE_HTTP_MAX_BODY_BYTES": "lots"}, "PORTSIDE_HTTP_MAX_BODY_BYTES"),
        ({"PORTSIDE_HTTP_MAX_BODY_BYTES": "10"}, "max_body_bytes"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        HttpSettings.from_env(env)
    assert raised.value.field == field


async def test_bodies_over_the_limit_are_413_declared_or_streamed(api: Api) -> None:
    limit = HttpSettings().max_body_bytes
    declared = await api.client.post("/jobs/ingest", content=b"x" * (limit + 1))
    assert declared.status_code == 413
    assert declared.json()["error"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    for url in ("/jobs/ingest", "/runs"):
        streamed = await api.client.post(
            url, content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413, url
        assert streamed.json()["error"] == "body_too_large"


async def test_a_non_numeric_content_length_is_400(api: Api) -> None:
    request = api.client.build_request("POST", "/runs", content=b"{}")
    request.headers["Content-Length"] = "ten"
    response = await api.client.send(request)
    assert response.status_code == 400
