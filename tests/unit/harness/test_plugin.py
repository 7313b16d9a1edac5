"""The plugin's option, ini setting, environment variable, header and errors (H1)."""

from __future__ import annotations

import pytest

NOTHING_USABLE = {
    "DOCKER_HOST": "unix:///nonexistent/docker.sock",
    "PORTSIDE_REDIS_SERVER": "/nonexistent/valkey-server",
    "PORTSIDE_REDIS_URL": "",
    "PORTSIDE_POSTGRES_DSN": "",
    "PORTSIDE_SERVERS": "",
}
EXTERNAL = {
    "PORTSIDE_REDIS_URL": "redis://127.0.0.1:1/0",
    "PORTSIDE_POSTGRES_DSN": "postgresql://postgres@127.0.0.1:1/postgres",
}


INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> pytest.MonkeyPatch:
    """An environment where no provider is usable, and an ini file for the inner runs."""
    for name, value in NOTHING_USABLE.items():
        monkeypatch.setenv(name, value)
    pytester.makeini(INI)
    return monkeypatch


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An in-process inner run without the plugins that only slow it down."""
    return pytester.runpytest("-p", "no:randomly", "-p", "no:hypothesispytest", *args)


def header_line(result: pytest.RunResult) -> str:
    return next(line for line in result.outlines if line.startswith("portside servers:"))


def test_h1_header_says_which_provider_and_why(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    for name, value in EXTERNAL.items():
        env.setenv(name, value)
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    line = header_line(result)
    assert line.startswith("portside servers: external (mode auto from default; skipped ")
    assert "containers: no Docker engine at unix:///nonexistent/docker.sock" in line
    assert "local: PORTSIDE_REDIS_SERVER='/nonexistent/valkey-server' is not an executable" in line
    assert line.endswith(
        "-> PORTSIDE_REDIS_URL=redis://127.0.0.1:1/0, "
        "PORTSIDE_POSTGRES_DSN=postgresql://postgres@127.0.0.1:1/postgres"
    )


def test_h1_command_line_beats_env_beats_ini(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    pytester.makeini(INI + "portside_servers = containers\n")
    pytester.makepyfile("def test_nothing(): pass")
    assert "mode containers from ini option portside_servers" in header_line(run(pytester))
    env.setenv("PORTSIDE_SERVERS", "local")
    assert "mode local from $PORTSIDE_SERVERS" in header_line(run(pytester))
    assert "mode external from --portside-servers" in header_line(
        run(pytester, "--portside-servers=external")
    )


def test_h1_tests_without_servers_run_when_no_provider_is_usable(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_pure(): pass")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert header_line(result).startswith("portside servers: none usable (mode auto")


def test_h1_a_server_fixture_fails_with_every_attempt_and_fix(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_needs_redis(redis_url): pass")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ConfigurationError: no portside server provider is usable "
            "(--portside-servers=auto, from default); tried:",
            "*- containers: no Docker engine at unix:///nonexistent/docker.sock. Fix: start*",
            "*- local: PORTSIDE_REDIS_SERVER=*is not an executable file. Fix: point*",
            "*- external: PORTSIDE_REDIS_URL and PORTSIDE_POSTGRES_DSN not set. Fix: export*",
        ]
    )


def test_h1_an_invalid_mode_in_the_environment_is_a_usage_error(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    env.setenv("PORTSIDE_SERVERS", "docker")
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*unknown portside servers mode 'docker' (from $PORTSIDE_SERVERS)*"]
    )


def test_h1_an_invalid_mode_on_the_command_line_lists_the_choices(
    pytester: pytest.Pytester, env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester, "--portside-servers=docker")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid choice: 'docker'*auto*containers*local*external*"])
