"""The OpenAPI schema is accurate, and a fuzz over it never gets a 5xx (A6, issue 8)."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.unit.http.openapi_fuzz import FuzzRequest, check_response, operations, requests
from tests.unit.http.support import TOKEN, Api

TAIL_PATH = "/admin/outbox/streams/{stream}/events"
JOBS = (
    "aggregate",
    "alert-fanout",
    "analytics-aggregate",
    "analytics-ingest",
    "color-extraction",
    "ingest",
    "moderation-review",
    "phase1-task",
    "sync-energy-retail-prd-hourly",
    "sync-energy-wholesale-5m",
    "sync-housing-abs-daily",
    "weather-ingestion",
)


async def _document(api: Api) -> dict[str, Any]:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_operation_documents_its_answers_with_models(api: Api) -> None:
    document = await _document(api)
    found = {(method, path) for method, path, _ in operations(document)}
    assert found == {
        *(("post", f"/jobs/{name}") for name in JOBS),
        ("get", "/jobs/{job_id}"),
        ("post", "/runs"),
        ("get", "/runs/{run_id}"),
        ("get", "/runs/{run_id}/events"),
        ("get", "/health/queues"),
        ("get", "/livez"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/admin/failed-jobs"),
        ("post", "/admin/failed-jobs/{failure_id}/retry"),
        ("post", "/admin/failed-jobs/purge"),
        ("get", "/admin/queues"),
        ("get", "/admin/queues/{queue}"),
        ("post", "/admin/queues/{queue}/pause"),
        ("post", "/admin/queues/{queue}/resume"),
        ("post", "/admin/queues/{queue}/purge"),
        ("get", "/admin/queues/{queue}/jobs"),
        ("get", "/admin/queues/{queue}/jobs/{job_id}"),
        ("delete", "/admin/queues/{queue}/jobs/{job_id}"),
        ("post", "/admin/queues/{queue}/jobs/{job_id}/retry"),
        ("post", "/admin/queues/{queue}/jobs/{job_id}/promote"),
        ("get", "/admin/runs"),
        ("get", "/admin/schedulers"),
        ("get", "/admin/outbox/streams"),
        ("get", "/admin/outbox/streams/{stream}/events"),
    }
    for method, path, operation in operations(document):
        responses = operation["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert len(success) == 1, (method, path, success)
        for code, response in responses.items():
            if (method, path, code) == ("get", "/readyz", "503"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Readiness"}  # OBS3: same body
            elif code.startswith(("4", "5")):
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (path, code)
        if operation.get("parameters"):
            assert "422" in responses, (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_ops3_operation_ids_are_readable_camel_case_names(api: Api) -> None:
    """OPS3: every operation has a unique camelCase id a generated client can use as a
    method name (``listQueues``, ``pauseQueue``, ``retryFailedJob``)."""
    document = await _document(api)
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]+", name) for name in ids), ids
    assert {"listQueues", "pauseQueue", "resumeQueue", "purgeQueue", "listRuns"} <= set(ids)
    assert {"enqueueIngest", "enqueueSyncEnergyWholesale5m", "jobStatus"} <= set(ids)
    assert {"retryFailedJob", "tailOutboxStream"} <= set(ids)


async def test_status_codes_match_the_endpoints(api: Api) -> None:
    paths = (await _document(api))["paths"]
    assert "202" in paths["/jobs/ingest"]["post"]["responses"]
    assert "202" in paths["/runs"]["post"]["responses"]
    assert set(paths["/admin/failed-jobs"]["get"]["responses"]) >= {"200", "401", "403"}
    stream = paths["/runs/{run_id}/events"]["get"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"]
    last_event_id = [
        parameter
        for parameter in paths["/runs/{run_id}/events"]["get"]["parameters"]
        if parameter["in"] == "header"
    ]
    assert [parameter["name"] for parameter in last_event_id] == ["Last-Event-ID"]


async def test_enqueue_documents_every_registered_payload(api: Api) -> None:
    """OPS3: one enqueue operation per registered job, each with its own payload model (the
    body a job accepts depends on its name)."""
    document = await _document(api)
    bodies = {
        path.rsplit("/", 1)[-1]: item["post"]["requestBody"]
        for path, item in document["paths"].items()
        if path.startswith("/jobs/") and "post" in item
    }
    assert set(bodies) == set(JOBS)
    models = {
        job: body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for job, body in bodies.items()
    }
    assert models["ingest"] == "IngestPayload"
    assert models["aggregate"] == "AggregatePayload"
    assert models["sync-housing-abs-daily"] == "SyncPayload"
    assert bodies["ingest"]["required"] is True
    assert bodies["sync-housing-abs-daily"]["required"] is False  # every field optional
    ingest = document["components"]["schemas"]["IngestPayload"]
    assert set(ingest["required"]) == {"organizationId", "integrationId"}
    assert "date" in ingest["properties"]  # optional: the daily schedule ingests yesterday
    run = document["components"]["schemas"]["RunRequest"]
    assert {"input", "steps", "stepDelayMs", "failAtStep"} <= set(run["properties"])


async def _send(api: Api, request: FuzzRequest) -> tuple[int, str, bytes]:
    async with api.client.stream(
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
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzz_over_the_openapi_schema_never_gets_a_5xx(api: Api, data: st.DataObject) -> None:
    """Valid, broken and random requests for every operation: documented answers only, every
    4xx a Problem body, every JSON success conforming to its schema, and never a 5xx."""
    document = api.app.openapi()
    # The outbox tail never ends, and the in-process transport waits for a whole body: the
    # fuzz against real servers covers it.
    paths = {path: item for path, item in document["paths"].items() if path != TAIL_PATH}
    request = data.draw(requests({**document, "paths": paths}, TOKEN))
    status, content_type, body = await _send(api, request)
    event(f"{request.method.upper()} {request.template} -> {status}")
    check_response(document, request, status, content_type, body)
