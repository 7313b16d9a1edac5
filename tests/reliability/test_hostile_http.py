"""A6: hostile bodies, ids and queries against the real API get a 4xx problem, never a 500."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.adapters.bullmq import BullMQQueue
from portside.adapters.postgres import PostgresOutbox
from portside.adapters.postgres.history import PostgresHistory
from portside.app.http import HttpSettings, create_app
from portside.app.http.server import ApiServer
from portside.examples.agents import AgentRuns
from portside.examples.ingestion import build_registry
from portside.infra import Infra, use_infra
from tests.reliability.conftest import Figures
from tests.reliability.hostile import BAD_JSON_TOKENS, raw_json_documents
from tests.reliability.scale import Scale
from tests.reliability.sync_env import Loop, examples

pytestmark = pytest.mark.reliability

TOKEN = "reliability-admin-token-0123456789"
INGEST = {"organizationId": "org-1", "integrationId": "xero-1", "date": "2024-05-01"}
RUN = {"agent": "researcher", "input": "summarise the week", "steps": 1}
BODIES: dict[str, dict[str, Any]] = {
    "/jobs/ingest": INGEST,
    "/jobs/aggregate": INGEST,
    "/runs": RUN,
}
JSON_HEADERS = {"Content-Type": "application/json"}


class Api:
    """The API served on a free port, driven from a synchronous test."""

    def __init__(self, loop: Loop, url: str) -> None:
        self.loop = loop
        self.client = httpx.AsyncClient(base_url=url, timeout=30)

    def post(self, path: str, body: bytes) -> httpx.Response:
        return self.loop.run(self.client.post(path, content=body, headers=JSON_HEADERS))

    def get(self, path: str) -> httpx.Response:
        return self.loop.run(self.client.get(path))


@pytest.fixture
def api(redis_url: str, redis_prefix: str, postgres_dsn: str) -> Iterator[Api]:
    with asyncio.Runner() as runner:
        infra = Infra(
            queue=BullMQQueue(redis_url, prefix=redis_prefix),
            outbox=PostgresOutbox(postgres_dsn),
            history=PostgresHistory(postgres_dsn),
            name="reliability",
        )
        with use_infra(infra):
            app = create_app(
                infra,
                build_registry(),
                HttpSettings(admin_token=TOKEN),
                runs=AgentRuns(),
                publish_outbox=True,
            )
            server = ApiServer(app)
            runner.run(server.start())
            client = Api(Loop(runner), server.url)
            try:
                yield client
            finally:
                runner.run(client.client.aclose())
                runner.run(server.stop())
                runner.run(infra.close())


def _check_refusal(response: httpx.Response, context: str) -> None:
    assert response.status_code < 500, f"{context}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        problem = response.json()
        assert problem.get("error"), (context, problem)
        assert problem.get("detail"), (context, problem)


def _still_serving(api: Api) -> None:
    health = api.get("/health/queues")
    assert health.status_code == 200, health.text
    accepted = api.post("/jobs/ingest", json.dumps(INGEST).encode())
    assert accepted.status_code == 202, accepted.text
    job = api.get(f"/jobs/{accepted.json()['jobId']}")
    assert job.status_code == 200, job.text


def _cases() -> list[tuple[str, str, bytes]]:
    """(label, path, body): each token as the whole body, as an extra field, and in place of
    the first field, for every endpoint that takes a body."""
    cases = []
    for path, valid in BODIES.items():
        first = next(iter(valid))
        for index, token in enumerate(BAD_JSON_TOKENS):
            extra = json.dumps({**valid, "extra": 0}).encode().replace(b"0}", token + b"}")
            field = json.dumps({**valid, first: 0}).encode().replace(b"0", token, 1)
            cases += [
                (f"{path} whole #{index}", path, token),
                (f"{path} extra #{index}", path, extra),
                (f"{path} {first} #{index}", path, field),
            ]
    return cases


def test_a6_hostile_bodies_get_a_4xx_problem_never_a_500(api: Api, figures: Figures) -> None:
    """Every hostile token of the suite, as the whole body, as an extra field and in place of
    a required field, on every endpoint that takes a body; the server keeps serving."""
    statuses: Counter[int] = Counter()
    for label, path, body in _cases():
        response = api.post(path, body)
        _check_refusal(response, label)
        statuses[response.status_code] += 1
    _still_serving(api)
    figures.update(
        inputs_tried=sum(statuses.values()),
        statuses={str(code): count for code, count in sorted(statuses.items())},
        server_errors=sum(count for code, count in statuses.items() if code >= 500),
    )


HOSTILE_IDS = ["%FF", "%ED%A0%80", "%C0%AF", "%00", "a%0Ab", "%F4%90%80%80", "x" * 300, "1" * 30]


@pytest.mark.parametrize("raw_id", HOSTILE_IDS)
def test_a6_hostile_ids_in_paths_and_queries_get_a_4xx(
    api: Api, raw_id: str, figures: Figures
) -> None:
    """Percent-encoded invalid UTF-8, NUL, newlines and over-long ids in the URL: 4xx, and
    the server keeps serving."""
    requests = [
        ("GET", f"/jobs/{raw_id}"),
        ("GET", f"/jobs/{raw_id}?queue={raw_id}"),
        ("GET", f"/runs/{raw_id}"),
        ("GET", f"/runs/{raw_id}/events?from_seq=1"),
        ("POST", f"/jobs/ingest?jobId={raw_id}"),
        ("POST", f"/jobs/{raw_id}"),
    ]
    statuses: Counter[int] = Counter()
    for method, url in requests:
        body = json.dumps(INGEST).encode()
        request = api.client.request(
            method, url, content=body if method == "POST" else None, headers=JSON_HEADERS
        )
        response = api.loop.run(request)
        _check_refusal(response, f"{method} {url}")
        statuses[response.status_code] += 1
    _still_serving(api)
    figures.update(inputs_tried=len(requests), statuses=dict(statuses))


def test_a6_generated_hostile_bodies_never_get_a_5xx(
    api: Api, scale: Scale, figures: Figures
) -> None:
    """Hypothesis puts hostile tokens and random bytes into otherwise valid bodies: every
    answer is a documented 2xx or a 4xx problem, and an accepted job can be read back."""
    statuses: Counter[int] = Counter()

    @examples(scale, factor=2)
    @given(data=st.data(), path=st.sampled_from(sorted(BODIES)))
    def check(data: st.DataObject, path: str) -> None:
        body = data.draw(raw_json_documents(BODIES[path]))
        response = api.post(path, body)
        _check_refusal(response, f"POST {path} {body[:120]!r}")
        if response.status_code == 202 and path.startswith("/jobs/"):
            assert api.get(f"/jobs/{response.json()['jobId']}").status_code == 200
        statuses[response.status_code] += 1

    check()
    _still_serving(api)
    figures.update(
        inputs_tried=sum(statuses.values()),
        statuses={str(code): count for code, count in sorted(statuses.items())},
        server_errors=sum(count for code, count in statuses.items() if code >= 500),
    )
