"""The console in a real headless browser (Debian's chromium driven by playwright) against the
HTTP app on real Redis and Postgres (OPS1): pause a queue, retry a dead letter, filter runs,
and a live outbox tail.

Set ``PORTSIDE_CONSOLE_SCREENSHOTS=docs/img`` to save screenshots of the main views.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portside.app.http import HttpSettings, create_app
from portside.app.http.server import ApiServer
from portside.examples.ingestion import build_registry
from portside.infra import Infra
from portside.ports import FinishedRun, Job, NewDeadLetter
from portside.testing import wait_for

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
TOKEN = "console-admin-token-0123456789"
QUEUE = "ingestion:ingest"

if not os.path.exists(CHROMIUM) or shutil.which(CHROMIUM) is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)", allow_module_level=True)

from playwright.async_api import Browser, Page, async_playwright  # noqa: E402


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def console(infra: Infra) -> AsyncIterator[str]:
    """The app (API and console) on a real server; yields its URL."""
    app = create_app(infra, build_registry(), HttpSettings(admin_token=TOKEN))
    async with ApiServer(app) as server:
        yield server.url


async def _signed_in(browser: Browser, url: str) -> Page:
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{url}/ui/login?next=/ui/queues")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{url}/ui/queues")
    return page


async def _screenshot(page: Page, name: str) -> None:
    target = os.environ.get("PORTSIDE_CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


async def test_ops1_pause_button_pauses_the_queue_in_redis(
    browser: Browser, console: str, infra: Infra
) -> None:
    """OPS1: clicking Pause (and confirming) pauses the queue in Redis; the page says so."""
    page = await _signed_in(browser, console)
    csp = (await page.request.get(f"{console}/ui/queues")).headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    row = page.locator(f'tr[data-queue="{QUEUE}"]')
    await _screenshot(page, "queues")
    await row.locator("button", has_text="Pause").click()

    async def paused() -> bool:
        return await infra.queue.is_paused(QUEUE)

    await wait_for(paused, timeout=10, message=f"queue {QUEUE} to be paused in Redis")
    await row.locator("[data-field=paused]", has_text="paused").wait_for(timeout=10_000)
    await row.locator("button", has_text="Resume").click()

    async def resumed() -> bool:
        return not await infra.queue.is_paused(QUEUE)

    await wait_for(resumed, timeout=10, message=f"queue {QUEUE} to run again")


async def test_ops1_retry_a_dead_letter_and_the_job_runs(
    browser: Browser, console: str, infra: Infra
) -> None:
    """OPS1: Retry on a dead letter sends the job back; a worker runs it; the letter is marked
    retried. Untrusted job data is shown escaped."""
    data = {"organizationId": "org-1", "integrationId": "<script>alert(1)</script>"}
    letter = await infra.require_history().add_failure(
        NewDeadLetter(
            queue=QUEUE,
            job_id="ingest-dead-1",
            name="ingest",
            data=data,
            error_class="SourceAuthError",
            error_message="invalid token",
            failure_kind="permanent",
            attempts_made=1,
            failed_at=datetime.now(UTC),
        )
    )
    ran: list[str] = []

    async def handler(job: Job) -> Any:
        ran.append(job.data["integrationId"])
        return "ok"

    worker = infra.queue.consume(QUEUE, handler)
    await worker.start()
    try:
        page = await _signed_in(browser, console)
        await page.goto(f"{console}/ui/dead-letters")
        row = page.locator(f'tr[data-failure="{letter.id}"]')
        assert "<script>alert(1)</script>" in await row.inner_text()  # shown as text
        await _screenshot(page, "dead-letters")
        # The page reloads once the action answered: wait for that, or a later goto races it.
        async with page.expect_navigation():
            await row.locator("button", has_text="Retry").click()
        await wait_for(lambda: len(ran) == 1, timeout=15, message="the retried job to run")
        assert ran == [data["integrationId"]]
        stored = await infra.require_history().get_failure(letter.id)
        assert stored is not None
        assert stored.retried_at is not None
        assert stored.retry_job_id is not None

        async def completed() -> bool:
            info = await infra.queue.get_job(QUEUE, stored.retry_job_id or "")
            return info is not None and info.state == "completed"

        await wait_for(completed, timeout=10, message="the retried job to complete")
        await page.goto(f"{console}/ui/queues/{QUEUE}/jobs/{stored.retry_job_id}")
        assert data["integrationId"] in await page.locator("#job-data").inner_text()
        await _screenshot(page, "job")
    finally:
        await worker.close()


async def test_ops1_filter_runs_by_business_key_and_status(
    browser: Browser, console: str, infra: Infra
) -> None:
    """OPS1: the run-history filters (business key, status) narrow the table."""
    history = infra.require_history()
    start = datetime.now(UTC) - timedelta(minutes=5)
    for index, (org, status) in enumerate(
        (("org-1", "completed"), ("org-2", "failed"), ("org-2", "completed"))
    ):
        await history.record_run(
            FinishedRun(
                job_id=f"run-{index}",
                queue=QUEUE,
                name="ingest",
                attempt=1,
                run_mode="backfill" if index else "scheduled",
                started_at=start + timedelta(seconds=index),
                finished_at=start + timedelta(seconds=index + 1),
                status=status,
                keys={"organizationId": org, "date": "2026-01-31"},
            )
        )
    page = await _signed_in(browser, console)
    await page.goto(f"{console}/ui/runs")
    assert await page.locator("#runs tbody tr[data-run]").count() == 3
    await page.fill("input[name=keys]", "organizationId=org-2")
    await page.select_option("select[name=status]", "completed")
    await page.click("#run-filters button[type=submit]")
    await page.wait_for_url("**/ui/runs?*")
    rows = page.locator("#runs tbody tr[data-run]")
    assert await rows.count() == 1
    assert "run-2" in await rows.first.inner_text()
    await _screenshot(page, "runs")


async def test_ops1_live_outbox_tail_shows_a_new_event(
    browser: Browser, console: str, infra: Infra
) -> None:
    """OPS1: the stream page's live tail (SSE) shows an event committed while it is open."""
    outbox = infra.outbox
    async with outbox.transaction() as tx:
        await outbox.append(tx, "run-console", "run.created", {"step": 0})
    page = await _signed_in(browser, console)
    await page.goto(f"{console}/ui/outbox/run-console")
    await page.locator('#tail tr[data-seq="1"]').wait_for(timeout=10_000)
    async with outbox.transaction() as tx:
        await outbox.append(tx, "run-console", "step.completed", {"note": "<b>live</b>"})
    fresh = page.locator('#tail tr[data-seq="2"]')
    await fresh.wait_for(timeout=10_000)
    assert "<b>live</b>" in await fresh.inner_text()
    await _screenshot(page, "outbox-tail")
