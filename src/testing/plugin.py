"""pytest plugin entry point (``pytest11``): portside's options, header and fixtures."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

import pytest

from portside.ports import ConfigurationError
from portside.testing.fixtures import (
    HARNESS_KEY,
    cache_adapter,
    drain_outbox_once_fixture,
    drain_queue_fixture,
    fake_infra,
    history_adapter,
    infra,
    outbox_adapter,
    paused_fixture,
    portside_harness,
    postgres_dsn,
    queue_adapter,
    queue_events,
    redis_prefix,
    redis_url,
    wait_for_fixture,
)
from portside.testing.harness import Harness
from portside.testing.provider_containers import ContainersProvider
from portside.testing.provider_local import LocalProvider
from portside.testing.providers import (
    MODES,
    SERVERS_ENV,
    ExternalProvider,
    ProviderFactory,
    ProviderName,
)
from portside.testing.schema import INI_OPTION, template_migrations

__all__ = [
    "cache_adapter",
    "drain_outbox_once_fixture",
    "drain_queue_fixture",
    "fake_infra",
    "history_adapter",
    "infra",
    "outbox_adapter",
    "paused_fixture",
    "portside_harness",
    "postgres_dsn",
    "pytest_addoption",
    "pytest_configure",
    "pytest_report_header",
    "pytest_sessionfinish",
    "pytest_unconfigure",
    "queue_adapter",
    "queue_events",
    "redis_prefix",
    "redis_url",
    "wait_for_fixture",
]

_INI = "portside_servers"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("portside", "portside test harness")
    group.addoption(
        "--portside-servers",
        dest="portside_servers",
        choices=MODES,
        default=None,
        help="where Redis and Postgres come from: auto (containers, then local, then external), "
        f"containers, local or external. Also the ini option {_INI} and ${SERVERS_ENV}.",
    )
    parser.addini(_INI, help="default for --portside-servers", default="")
    parser.addini(
        INI_OPTION,
        type="linelist",
        default=[],
        help="'module:function' entries applied (with the DSN) to the template database after "
        "portside's migrations; every test database is cloned from it",
    )


def _mode(config: pytest.Config) -> tuple[str, str]:
    """The requested mode and where it came from: command line, then env, then ini."""
    option = config.getoption("portside_servers")
    if option:
        return str(option), "--portside-servers"
    env = os.environ.get(SERVERS_ENV, "").strip()
    if env:
        return env, f"${SERVERS_ENV}"
    ini = str(config.getini(_INI)).strip()
    if ini:
        return ini, f"ini option {_INI}"
    return "auto", "default"


def _factories() -> Mapping[ProviderName, ProviderFactory]:
    return {
        "containers": ContainersProvider,
        "local": LocalProvider,
        "external": ExternalProvider,
    }


def pytest_configure(config: pytest.Config) -> None:
    mode, source = _mode(config)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    try:
        migrate = template_migrations(config.getini(INI_OPTION))
        harness = Harness(mode, source, worker, _factories(), migrate)
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[HARNESS_KEY] = harness


def pytest_report_header(config: pytest.Config) -> str:
    return config.stash[HARNESS_KEY].header()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # Here rather than at unconfigure: an xdist worker reports "finished" right after this
    # hook, and its controller then gives it only a few seconds before interrupting it.
    _close(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    _close(config)  # no-op when sessionfinish already ran (e.g. after a usage error)


def _close(config: pytest.Config) -> None:
    harness = config.stash.get(HARNESS_KEY, None)
    if harness is None:
        return
    for error in harness.close():
        sys.stderr.write(f"portside harness cleanup: {type(error).__name__}: {error}\n")
