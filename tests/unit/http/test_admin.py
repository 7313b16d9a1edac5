"""A4 over HTTP: dead letters listed and retried behind the admin bearer token."""

from __future__ import annotations

import httpx
import pytest

from portside.app.http import HttpSettings
from tests.unit.http.support import TOKEN, Api, build_api

AUTH = {"Authorization": f"Bearer {TOKEN}"}
REVOKED = {"organizationId": "o", "integrationId": "revoked-1", "date": "2024-05-01"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong-token-of-the-same-length!!"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"bearer  {TOKEN[:-1]}"},
    ],
)
async def test_admin_without_the_token_is_401(api: Api, headers: dict[str, str]) -> None:
    for method, url in (("GET", "/admin/failed-jobs"), ("POST", "/admin/failed-jobs/x/retry")):
        response = await api.client.request(method, url, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthorized"


async def test_admin_is_403_when_no_token_is_configured(fake_infra: object) -> None:
    app, _, _ = build_api(fake_infra, HttpSettings(watch_queue_events=False))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/admin/failed-jobs", headers=AUTH)
    assert response.status_code == 403
    assert "PORTSIDE_ADMIN_TOKEN" in response.json()["detail"]


async def test_a4_failed_jobs_are_listed_and_retried(api: Api) -> None:
    job_id = (await api.client.post("/jobs/ingest", json=REVOKED)).json()["jobId"]
    await api.drain()

    listed = await api.client.get("/admin/failed-jobs", headers=AUTH)
    assert listed.status_code == 200
    (letter,) = listed.json()["items"]
    assert letter["jobId"] == job_id
    assert letter["failureKind"] == "permanent"
    assert letter["errorClass"] == "SourceAuthError"
    assert letter["data"]["integrationId"] == "revoked-1"

    retried = await api.client.post(f"/admin/failed-jobs/{letter['id']}/retry", headers=AUTH)
    assert retried.status_code == 200
    body = retried.json()
    assert body["how"] == "requeued"
    assert body["jobId"] == job_id
    assert body["failure"]["retriedAt"] is not None
    job = await api.queue.get_job("ingestion:ingest", job_id)
    assert job is not None
    assert job.state == "waiting"

    again = await api.client.post(f"/admin/failed-jobs/{letter['id']}/retry", headers=AUTH)
    assert again.status_code == 409
    assert again.json()["error"] == "already_retried"
    assert (await api.client.get("/admin/failed-jobs", headers=AUTH)).json()["items"] == []
    everything = await api.client.get("/admin/failed-jobs?includeRetried=true", headers=AUTH)
    assert len(everything.json()["items"]) == 1


async def test_retrying_an_unknown_dead_letter_is_404(api: Api) -> None:
    response = await api.client.post("/admin/failed-jobs/nope/retry", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_failure"


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "limit=x", "includeRetried=maybe", "queue=a%00b", "queue=:x"]
)
async def test_bad_admin_queries_are_422(api: Api, query: str) -> None:
    response = await api.client.get(f"/admin/failed-jobs?{query}", headers=AUTH)
    assert response.status_code == 422
