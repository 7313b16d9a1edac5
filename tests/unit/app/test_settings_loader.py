"""Configuration from the environment and options; registry loading; JSON log lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from portside.app.loader import load_registry
from portside.app.logs import JsonFormatter, configure_logging, event
from portside.app.settings import CACHE_REDIS_URL_ENV, QUEUE_SCHEMES, Settings
from portside.app.wiring import build_infra
from portside.ports import ConfigurationError


def test_settings_read_env_and_options_override() -> None:
    env = {
        "PORTSIDE_REDIS_URL": "redis://env:6379/0",
        "PORTSIDE_POSTGRES_DSN": "postgresql://env/db",
        "PORTSIDE_REDIS_PREFIX": "app",
        "PORTSIDE_APP": "pkg.mod:registry",
    }

    settings = Settings.from_env(env, redis_url="redis://option:6379/1", postgres_dsn=None)

    assert settings.redis_url == "redis://option:6379/1"
    assert settings.postgres_dsn == "postgresql://env/db"
    assert (settings.redis_prefix, settings.app, settings.log_level) == (
        "app",
        "pkg.mod:registry",
        "INFO",
    )


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PORTSIDE_REDIS_URL": "http://x"}, "PORTSIDE_REDIS_URL 'http://x' is not a redis"),
        ({"PORTSIDE_POSTGRES_DSN": "mysql://x"}, "is not a postgres/postgresql URL"),
        ({"PORTSIDE_REDIS_PREFIX": "a:b"}, "Redis prefix 'a:b' is invalid"),
        ({"PORTSIDE_LOG_LEVEL": "LOUD"}, "log level 'LOUD' is unknown"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigurationError, match="PORTSIDE_") as caught:
        Settings.from_env(env)
    assert words in str(caught.value)


def test_missing_settings_say_which_variable_or_option_to_set() -> None:
    settings = Settings.from_env({})

    with pytest.raises(ConfigurationError, match="set PORTSIDE_REDIS_URL or pass --redis-url"):
        settings.require_redis_url()
    with pytest.raises(ConfigurationError, match="PORTSIDE_POSTGRES_DSN or pass --postgres-dsn"):
        settings.require_postgres_dsn()
    with pytest.raises(ConfigurationError, match="pass --app module:registry"):
        settings.require_app()


def test_load_registry_accepts_objects_and_factories() -> None:
    direct = load_registry("portside.examples.ingestion:registry")
    built = load_registry("portside.examples.ingestion:build_registry")

    assert direct.names() == built.names()
    assert direct is not built


def test_a2_json_formatter_writes_one_object_per_line() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    try:
        event(logging.getLogger("portside.test"), "job.completed", job_id="j-1", attempt=2)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("portside.test").exception("job.crashed", extra={"portside": {}})
    finally:
        configure_logging("INFO")

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "job.completed"
    assert (first["job_id"], first["attempt"], first["level"]) == ("j-1", 2, "info")
    assert second["level"] == "error"
    assert "ValueError: boom" in second["exc"]
    record = logging.LogRecord("portside.x", logging.INFO, __file__, 1, "e", None, None)
    assert json.loads(JsonFormatter().format(record))["event"] == "e"


def test_e2_the_cache_may_have_a_redis_of_its_own() -> None:
    """E2: PORTSIDE_CACHE_REDIS_URL puts the CLI's cache on a separate Redis (allkeys-lru);
    without it the cache shares the queues' Redis; a bad URL names the variable."""
    base = {
        "PORTSIDE_REDIS_URL": "redis://queues:6379/0",
        "PORTSIDE_POSTGRES_DSN": "postgresql://127.0.0.1:1/db",
    }
    separate = build_infra(Settings.from_env({**base, CACHE_REDIS_URL_ENV: "redis://cache:6379/1"}))
    shared = build_infra(Settings.from_env(base))
    assert separate.cache._url == "redis://cache:6379/1"  # type: ignore[union-attr]
    assert shared.cache._url == "redis://queues:6379/0"  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match=CACHE_REDIS_URL_ENV) as error:
        Settings.from_env({CACHE_REDIS_URL_ENV: "http://cache"})
    assert error.value.field == CACHE_REDIS_URL_ENV


def test_s1_s2_the_app_takes_every_queue_url_the_adapter_takes() -> None:
    """S1/S2: ``portside`` commands accept Cluster and Sentinel URLs for the queues (the
    app's list of schemes is the adapter's, kept apart only to spare commands the import)."""
    from portside.adapters.bullmq.settings import QUEUE_URL_SCHEMES

    assert set(QUEUE_SCHEMES) == set(QUEUE_URL_SCHEMES)
    for url in (
        "redis+cluster://10.0.0.1:7000,10.0.0.2:7000",
        "rediss+cluster://10.0.0.1:7000?ssl_ca_certs=/ca.pem",
        "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster",
        "rediss+sentinel://10.0.0.1:26379/mymaster",
    ):
        assert Settings.from_env({"PORTSIDE_REDIS_URL": url}).redis_url == url


def test_s1_e2_a_routed_queue_url_leaves_the_cache_to_its_own_setting() -> None:
    """The cache talks to one server: with a Cluster or Sentinel URL for the queues it is
    configured only by PORTSIDE_CACHE_REDIS_URL; without that, the infra has no cache and a
    job asking for one is told which variable to set. A routed cache URL is refused."""
    base = {
        "PORTSIDE_REDIS_URL": "redis+cluster://10.0.0.1:7000",
        "PORTSIDE_REDIS_PREFIX": "{bull}",
        "PORTSIDE_POSTGRES_DSN": "postgresql://127.0.0.1:1/db",
    }
    alone = build_infra(Settings.from_env(base))
    assert alone.cache is None
    with pytest.raises(ConfigurationError, match=CACHE_REDIS_URL_ENV):
        alone.require_cache()
    cached = build_infra(Settings.from_env({**base, CACHE_REDIS_URL_ENV: "redis://cache:6379/1"}))
    assert cached.cache._url == "redis://cache:6379/1"  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError) as error:
        Settings.from_env({CACHE_REDIS_URL_ENV: "redis+cluster://10.0.0.1:7000"})
    assert error.value.field == CACHE_REDIS_URL_ENV
