"""The console's pages and the admin API on the fakes (OPS1, OPS3): sign-in, security headers,
escaping, every view, job detail with stack traces and runs, schedulers, CSRF on actions."""

from __future__ import annotations

import httpx

from portside.app.http import HttpSettings
from portside.app.http.auth import CSRF_HEADER, SESSION_COOKIE
from portside.ports import JobOptions, Schedule
from tests.unit.http.support import TOKEN, Api, build_api

INGEST = "ingestion:ingest"
BAD = {"organizationId": "org-1", "integrationId": "<script>alert(1)</script>"}


async def _sign_in(api: Api) -> None:
    response = await api.client.post(
        "/ui/login",
        content=f"token={TOKEN}&next=/ui/runs",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/runs"
    assert "httponly" in response.headers["set-cookie"].lower()
    assert "samesite=strict" in response.headers["set-cookie"].lower()


async def test_ops1_pages_need_a_session_unless_public_read(api: Api) -> None:
    """OPS1: without a session the pages send the browser to the sign-in page; a wrong token
    is refused; after signing in every view renders with the strict CSP."""
    first = await api.client.get("/ui/queues")
    assert first.status_code == 303
    assert first.headers["location"].startswith("/ui/login?next=")
    wrong = await api.client.post(
        "/ui/login",
        content="token=nope&next=/ui/queues",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert wrong.status_code == 401
    assert (await api.client.get("/ui/live/queues")).status_code == 401
    await _sign_in(api)
    for path in ("/ui/queues", "/ui/runs", "/ui/dead-letters", "/ui/schedulers", "/ui/outbox"):
        page = await api.client.get(path)
        assert page.status_code == 200, path
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src 'self'" in csp
        assert "<script>" not in page.text.replace('<script src="/ui/static/console.js" defer>', "")
    assert (await api.client.get("/ui/static/console.js")).status_code == 200


async def test_ops1_public_read_shows_pages_but_actions_need_the_token(fake_infra: object) -> None:
    """OPS1: with public reading on, pages render without a session; actions still need it."""
    from portside.infra import Infra

    assert isinstance(fake_infra, Infra)
    app, _, _ = build_api(
        fake_infra,
        HttpSettings(admin_token=TOKEN, console_public_read=True, watch_queue_events=False),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portside.test") as client:
        assert (await client.get("/ui/queues")).status_code == 200
        refused = await client.post(f"/admin/queues/{INGEST}/pause", headers={CSRF_HEADER: "1"})
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"


async def test_ops1_session_actions_need_the_console_header(api: Api) -> None:
    """OPS1: the session cookie alone does not authorise an action (a cross-site form cannot
    send the console's header); with the header it does."""
    await _sign_in(api)
    assert api.client.cookies.get(SESSION_COOKIE)
    forged = await api.client.post(f"/admin/queues/{INGEST}/pause")
    assert forged.status_code == 401
    assert await api.queue.is_paused(INGEST) is False
    done = await api.client.post(f"/admin/queues/{INGEST}/pause", headers={CSRF_HEADER: "1"})
    assert done.status_code == 200
    assert done.json()["paused"] is True
    assert await api.queue.is_paused(INGEST) is True


async def test_ops1_job_detail_shows_failure_stack_trace_and_runs_escaped(api: Api) -> None:
    """OPS1: a failed job's page shows its data (escaped), options, failure, stack trace and
    run-history rows; the admin API answers the same detail."""
    ref = await api.queue.enqueue(
        INGEST, "ingest", {**BAD, "date": "not-a-date"}, options=JobOptions(attempts=1)
    )
    await api.drain()
    await _sign_in(api)
    page = await api.client.get(f"/ui/queues/{INGEST}/jobs/{ref.id}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)" not in page.text
    assert "Traceback" in page.text
    assert "Stack traces" in page.text
    detail = await api.client.get(
        f"/admin/queues/{INGEST}/jobs/{ref.id}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    body = detail.json()
    assert body["state"] == "failed"
    assert body["options"]["attempts"] == 1
    assert body["stacktrace"]
    assert "Traceback" in body["stacktrace"][0]
    assert [run["status"] for run in body["runs"]] == ["failed"]
    assert body["runs"][0]["keys"]["organizationId"] == "org-1"
    listed = await api.client.get(f"/ui/queues/{INGEST}?state=failed")
    assert ref.id in listed.text


async def test_ops1_schedulers_page_and_api_show_next_run(api: Api) -> None:
    """OPS1: job schedulers with their pattern and next run."""
    await api.queue.upsert_schedule(
        "sync:energy", Schedule(scheduler_id="nightly", name="sync", pattern="0 3 * * *")
    )
    await _sign_in(api)
    page = await api.client.get("/ui/schedulers")
    assert "nightly" in page.text
    assert "0 3 * * *" in page.text
    listed = await api.client.get("/admin/schedulers", headers={"Authorization": f"Bearer {TOKEN}"})
    (scheduler,) = [s for s in listed.json()["items"] if s["schedulerId"] == "nightly"]
    assert scheduler["nextRunAt"] is not None
    assert scheduler["lastRun"] is None


async def test_ops3_problem_json_everywhere_and_405_allow(api: Api) -> None:
    """OPS3: 401, 404 and 405 are problem documents; 405 lists every method of the path."""
    missing = await api.client.get("/admin/queues")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 401
    unknown = await api.client.get("/no/such/path")
    assert unknown.headers["content-type"] == "application/problem+json"
    wrong = await api.client.delete("/jobs/ingest")
    assert wrong.status_code == 405
    assert set(wrong.headers["allow"].split(", ")) >= {"GET", "POST"}
    assert "DELETE" not in wrong.headers["allow"]
    assert wrong.json()["error"] == "method_not_allowed"
