"""``portside dev``: documented options, and bad input refused (exit 2, one line) before any
server starts. The full command runs in tests/integration/http/test_dev_command.py."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from portside.app.cli import app
from portside.app.cli.dev import _application, _main_job_of
from portside.app.loader import load_application


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in (
        "PORTSIDE_APP",
        "PORTSIDE_REDIS_URL",
        "PORTSIDE_POSTGRES_DSN",
        "PORTSIDE_LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_dev_is_listed_and_documents_its_options(runner: CliRunner) -> None:
    listed = runner.invoke(app, ["--help"])
    assert "dev" in listed.output
    result = runner.invoke(app, ["dev", "--help"])
    assert result.exit_code == 0
    for option in ("--once", "--port", "--host", "--job", "--data", "--grace", "--app"):
        assert option in result.output
    assert "embedded" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{oops"], "--data is not valid JSON"),
        (["--data", "[1]"], "--data must be a JSON object"),
        (["--job", "no-such-job"], "unknown job 'no-such-job'"),
        (["--job", "agent-run"], "unknown job 'agent-run'"),
        (["--data", '{"organizationId": "o"}'], "invalid payload for job 'ingest'"),
        (["--app", "nowhere:registry"], "cannot be imported"),
        (["--once", "--app", "portside.examples.ingestion:registry"], "the application has none"),
        (["--app", "portside.examples.ingestion:registry", "--job", "agent-run"], "unknown job"),
        (["--port", "70000"], "Invalid value for '--port'"),
        (["--log-level", "LOUD"], "log level 'LOUD' is unknown"),
    ],
)
def test_bad_input_exits_2_with_one_line(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["dev", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:"), result.output
    assert message in lines[0]


def test_the_worker_runs_the_internal_jobs_the_api_only_the_public_ones() -> None:
    _, worker, public = _application("portside.examples.dev:application")
    assert {"agent-run", "webhook-deliver"} <= set(worker.names())
    assert "agent-run" not in public
    assert "webhook-deliver" not in public
    assert set(public.names()) == set(worker.names()) - {"agent-run", "webhook-deliver"}


def test_the_main_job_and_its_payload_come_from_the_application_unless_given() -> None:
    examples = load_application("portside.examples.dev:application")
    name, data = _main_job_of(examples, None, None)
    assert name == "ingest"
    assert data["organizationId"] == "org-demo"
    given = _main_job_of(examples, None, '{"organizationId": "o"}')
    assert given == ("ingest", {"organizationId": "o"})
    assert _main_job_of(examples, "sync-housing-abs-daily", None) == ("sync-housing-abs-daily", {})
    bare = load_application("portside.examples.ingestion:registry")
    assert _main_job_of(bare, None, None) == (None, {})
