"""The OpenAPI schema is accurate, and a fuzz over it never gets a 5xx (A6, issue 8)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.unit.http.openapi_fuzz import FuzzRequest, check_response, operations, requests
from tests.unit.http.support import TOKEN, Api


async def _document(api: Api) -> dict[str, Any]:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_operation_documents_its_answers_with_models(api: Api) -> None:
    document = await _document(api)
    found = {(method, path) for method, path, _ in operations(document)}
    assert found == {
        ("post", "/jobs/{name}"),
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
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (path, code)
        if operation.get("parameters"):
            assert "422" in responses, (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_status_codes_match_the_endpoints(api: Api) -> None:
    paths = (await _document(api))["paths"]
    assert "202" in paths["/jobs/{name}"]["post"]["responses"]
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
    document = await _document(api)
    operation = document["paths"]["/jobs/{name}"]["post"]
    (name,) = [p for p in operation["parameters"] if p["name"] == "name"]
    assert name["schema"]["enum"] == [
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
    ]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    refs = {item["$ref"].rsplit("/", 1)[-1] for item in body["anyOf"]}
    assert refs == {
        "AggregatePayload",
        "AlertPayload",
        "DayPayload",
        "ImagePayload",
        "IngestPayload",
        "Phase1Task",
        "ReviewPayload",
        "SourceDayPayload",
        "StationPayload",
        "SyncPayload",
    }
    ingest = document["components"]["schemas"]["IngestPayload"]
    assert set(ingest["required"]) == {"organizationId", "integrationId"}
    assert "date" in ingest["properties"]  # optional: the daily schedule ingests yesterday
    run = document["components"]["schemas"]["RunRequest"]
    assert {"input", "steps", "stepDelayMs", "failAtStep"} <= set(run["properties"])


async def _send(api: Api, request: FuzzRequest) -> tuple[int, str, bytes]:
    response = await api.client.request(
        request.method,
        request.path,
        params=request.params,
        headers=request.raw_headers(),
        content=request.content,
    )
    return response.status_code, response.headers.get("content-type", ""), response.content


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
    request = data.draw(requests(document, TOKEN))
    status, content_type, body = await _send(api, request)
    event(f"{request.method.upper()} {request.template} -> {status}")
    check_response(document, request, status, content_type, body)
