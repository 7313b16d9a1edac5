"""A2: ``portside worker --processes N`` hands its connection strings to the worker processes
through their environment, never their command line (which ``ps`` shows to every user)."""

from __future__ import annotations

from portside.app.cli.supervisor import child_command, child_environment
from portside.app.settings import Settings

REDIS_URL = "redis://worker:redis-secret@cache.internal:6380/2"
POSTGRES_DSN = "postgresql://portside:pg-secret@db.internal:5432/jobs"


def settings() -> Settings:
    return Settings.from_env(
        {},
        app="portside.examples.ingestion:registry",
        redis_url=REDIS_URL,
        postgres_dsn=POSTGRES_DSN,
        log_level="DEBUG",
    )


def test_a2_child_command_line_holds_no_connection_string_or_password() -> None:
    """A2: the command line of a worker process names no URL, DSN or password."""
    command = child_command(settings(), ["sync:energy"], 5.0, 9100)
    line = " ".join(command)
    for secret in ("redis-secret", "pg-secret", REDIS_URL, POSTGRES_DSN):
        assert secret not in line
    assert "--redis-url" not in command
    assert "--postgres-dsn" not in command
    assert command[command.index("--app") + 1] == "portside.examples.ingestion:registry"
    assert command[command.index("--queues") + 1] == "sync:energy"
    assert command[command.index("--metrics-port") + 1] == "9100"


def test_a2_child_environment_carries_the_resolved_connection_strings() -> None:
    """A2: the options given to the supervisor reach each worker process through its
    environment, overriding the supervisor's own environment; other variables pass through."""
    parent = {
        "PORTSIDE_REDIS_URL": "redis://stale:6379/0",
        "PORTSIDE_POSTGRES_DSN": "postgresql://stale/db",
        "PATH": "/usr/bin",
    }
    env = child_environment(settings(), parent)
    assert env["PORTSIDE_REDIS_URL"] == REDIS_URL
    assert env["PORTSIDE_POSTGRES_DSN"] == POSTGRES_DSN
    assert env["PORTSIDE_REDIS_PREFIX"] == settings().redis_prefix
    assert env["PATH"] == "/usr/bin"
    assert parent["PORTSIDE_REDIS_URL"] == "redis://stale:6379/0"


def test_a2_a_child_reads_back_the_settings_the_supervisor_resolved() -> None:
    """A2: a worker process that reads its environment ends with the supervisor's settings."""
    resolved = settings()
    child = Settings.from_env(child_environment(resolved, {"PORTSIDE_APP": resolved.app or ""}))
    assert child.redis_url == REDIS_URL
    assert child.postgres_dsn == POSTGRES_DSN
    assert child.redis_prefix == resolved.redis_prefix
