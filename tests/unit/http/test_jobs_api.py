"""A6: POST /jobs/{name} validates against the registry and answers 202; GET /jobs/{id}."""

from __future__ import annotations

import pytest

from tests.unit.http.support import Api

INGEST = {"organizationId": "org-1", "integrationId": "int-1", "date": "2024-05-01"}


async def test_a6_enqueue_answers_202_with_the_job_id_and_status_follows_it(api: Api) -> None:
    response = await api.client.post("/jobs/ingest", json=INGEST)
    assert response.status_code == 202
    body = response.json()
    assert body["jobId"].startswith("ingest.")
    assert body["queue"] == "ingestion:ingest"
    assert body["statusUrl"] == f"/jobs/{body['jobId']}"

    waiting = (await api.client.get(body["statusUrl"])).json()
    assert waiting["state"] == "waiting"
    assert waiting["attemptsMade"] == 0
    assert waiting["data"] == INGEST  # run-mode metadata is not shown

    await api.drain()
    done = (await api.client.get(body["statusUrl"])).json()
    assert done["state"] == "completed"
    assert done["attemptsMade"] == 1
    assert done["result"]["records"] > 0
    assert done["failedReason"] is None
    assert done["finishedAt"] is not None


async def test_a6_failure_reason_and_kind_are_reported(api: Api) -> None:
    bad = {**INGEST, "integrationId": "revoked-xero"}  # the fake source rejects its token
    job_id = (await api.client.post("/jobs/ingest", json=bad)).json()["jobId"]
    await api.drain()
    status = (await api.client.get(f"/jobs/{job_id}")).json()
    assert status["state"] == "failed"
    assert status["failureKind"] == "permanent"
    assert "invalid token" in status["failedReason"]


async def test_q1_job_id_makes_enqueue_idempotent(api: Api) -> None:
    first = await api.client.post("/jobs/ingest?jobId=ingest-once", json=INGEST)
    second = await api.client.post("/jobs/ingest?jobId=ingest-once", json=INGEST)
    assert first.status_code == second.status_code == 202
    assert first.json()["jobId"] == second.json()["jobId"] == "ingest-once"
    assert len(await api.drain()) == 2  # the ingest and the aggregate it queues, once each


async def test_a6_unknown_job_is_404_naming_the_registered_ones(api: Api) -> None:
    response = await api.client.post("/jobs/no-such-job", json={})
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "unknown_job"
    assert "ingest" in body["detail"]


async def test_internal_jobs_cannot_be_enqueued_by_clients(api: Api) -> None:
    for name in ("agent-run", "webhook-deliver"):
        assert (await api.client.post(f"/jobs/{name}", json={})).status_code == 404


async def test_q2_invalid_payload_is_422_with_field_errors(api: Api) -> None:
    response = await api.client.post(
        "/jobs/ingest", json={"organizationId": "org 1", "date": "yesterday", "extra": 1}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_payload"
    where = {tuple(field["loc"]) for field in body["fields"]}
    assert where == {
        ("body", "organizationId"),
        ("body", "integrationId"),
        ("body", "date"),
        ("body", "extra"),
    }
    assert all(field["msg"] and field["type"] for field in body["fields"])
    assert await api.queue.counts("ingestion:ingest") == await api.queue.counts("nothing")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "malformed_json"),
        (b'{"a": ', 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "malformed_json"),
        (b"[1, 2]", 422, "invalid_request"),
        (b'"text"', 422, "invalid_request"),
        (b"null", 422, "invalid_request"),
    ],
)
async def test_bad_bodies_are_clear_4xx(api: Api, body: bytes, status: int, error: str) -> None:
    response = await api.client.post(
        "/jobs/ingest", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


async def test_numbers_json_cannot_carry_are_rejected(api: Api) -> None:
    """NaN and integers beyond 2**53 parse in Python but are not portable JSON: 422."""
    response = await api.client.post(
        "/jobs/sync-housing-abs-daily", content=b'{"date": NaN}', headers={}
    )
    assert response.status_code == 422


async def test_empty_body_means_an_empty_payload(api: Api) -> None:
    response = await api.client.post("/jobs/sync-housing-abs-daily")
    assert response.status_code == 202  # SyncPayload's fields are all optional


async def test_invalid_job_id_is_422_naming_the_field(api: Api) -> None:
    """OPS3: the schema's jobId pattern (no ':', not all digits) is what the API enforces."""
    for bad in ("a:b", "123", " "):
        response = await api.client.post("/jobs/ingest", params={"jobId": bad}, json=INGEST)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["fields"][0]["loc"] == ["query", "jobId"]
    accepted = await api.client.post("/jobs/ingest", params={"jobId": "x-123"}, json=INGEST)
    assert accepted.status_code == 202


async def test_wrong_query_types_are_422(api: Api) -> None:
    response = await api.client.post("/jobs/ingest?delay=soon", json=INGEST)
    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["query", "delay"]


async def test_a6_unknown_job_id_is_404(api: Api) -> None:
    for job_id in ("ingest.nope", "no-prefix", "123", "a%00b", "x" * 256):
        response = await api.client.get(f"/jobs/{job_id}")
        assert response.status_code == 404, job_id
        assert response.json()["error"] == "unknown_job"
    assert (await api.client.get("/jobs/" + "x" * 300)).status_code == 422


async def test_status_lookup_can_be_narrowed_to_a_queue(api: Api) -> None:
    job_id = (await api.client.post("/jobs/ingest", json=INGEST)).json()["jobId"]
    found = await api.client.get(f"/jobs/{job_id}", params={"queue": "ingestion:ingest"})
    assert found.status_code == 200
    elsewhere = await api.client.get(f"/jobs/{job_id}", params={"queue": "sync:energy"})
    assert elsewhere.status_code == 404
    unknown = await api.client.get(f"/jobs/{job_id}", params={"queue": "nope"})
    assert unknown.json()["error"] == "unknown_queue"


async def test_ids_from_other_producers_are_found_on_any_queue(api: Api) -> None:
    ref = await api.queue.enqueue("sync:housing", "sync-housing-abs-daily", {})
    response = await api.client.get(f"/jobs/{ref.id}")
    assert response.status_code == 200
    assert response.json()["queue"] == "sync:housing"


async def test_a_trailing_slash_is_a_404_not_a_redirect(api: Api) -> None:
    """Found by the fuzz: ``/jobs/0%2F`` decodes to ``/jobs/0/``."""
    for url in ("/jobs/0%2F", "/jobs/x/", "/runs/"):
        response = await api.client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"] == "not_found"


class _Unreachable:
    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def get_job(self, queue: str, job_id: str) -> None:
        raise ConnectionRefusedError(111, "Connection refused")


async def test_an_unreachable_backend_is_503_not_500(api: Api) -> None:
    from portside.app.http.app import api_state_of

    state = api_state_of(api.app)
    state.infra = _Proxy(api.infra, queue=_Unreachable(api.queue))  # type: ignore[assignment]
    response = await api.client.get("/jobs/ingest.x")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "unavailable"


class _Proxy:
    def __init__(self, inner: object, **overrides: object) -> None:
        self._inner = inner
        self._overrides = overrides

    def __getattr__(self, name: str) -> object:
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._inner, name)
