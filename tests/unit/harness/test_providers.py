"""Provider selection, the pytest header and the "nothing usable" error (H1)."""

from __future__ import annotations

import pytest

from portside.ports import ConfigurationError
from portside.testing.harness import Harness
from portside.testing.provider_containers import ContainersProvider, docker_host
from portside.testing.providers import (
    ExternalProvider,
    ProviderFactory,
    ProviderName,
    ProviderUnavailable,
    select_provider,
)


class Recorder:
    """A provider whose probe and start behaviour a test chooses."""

    def __init__(
        self, name: ProviderName, *, unusable: str | None = None, broken: bool = False
    ) -> None:
        self.name: ProviderName = name
        self.unusable = unusable
        self.broken = broken
        self.closed = False
        self.started: list[str] = []

    def probe(self) -> str:
        if self.unusable:
            raise ProviderUnavailable(self.unusable, f"fix {self.name}")
        return f"{self.name} servers"

    def redis_url(self) -> str:
        if self.broken:
            raise RuntimeError(f"{self.name} redis would not start")
        self.started.append("redis")
        return f"redis://{self.name}:6379/0"

    def postgres_dsn(self) -> str:
        self.started.append("postgres")
        return f"postgresql://postgres@{self.name}:5432/postgres"

    def close(self) -> None:
        self.closed = True


def _returning(provider: Recorder) -> ProviderFactory:
    return lambda: provider


def factories(*providers: Recorder) -> dict[ProviderName, ProviderFactory]:
    return {p.name: _returning(p) for p in providers}


def test_h1_auto_prefers_containers_then_local_then_external() -> None:
    containers = Recorder("containers", unusable="no Docker engine")
    local = Recorder("local")
    external = Recorder("external")
    selection = select_provider("auto", "default", factories(containers, local, external))
    assert selection.provider is local
    assert selection.header() == (
        "portside servers: local (mode auto from default; skipped containers: no Docker "
        "engine) -> local servers"
    )


def test_h1_auto_falls_through_to_external() -> None:
    selection = select_provider(
        "auto",
        "$PORTSIDE_SERVERS",
        factories(
            Recorder("containers", unusable="no Docker engine"),
            Recorder("local", unusable="no valkey-server or redis-server found"),
            Recorder("external"),
        ),
    )
    assert selection.provider is not None
    assert selection.provider.name == "external"
    assert "skipped containers: no Docker engine; local: no valkey-server" in selection.header()


def test_h1_a_named_mode_tries_only_that_provider() -> None:
    local = Recorder("local", unusable="no postgres")
    selection = select_provider(
        "local",
        "--portside-servers",
        factories(Recorder("containers"), local, Recorder("external")),
    )
    assert selection.provider is None
    assert [name for name, _ in selection.tried] == ["local"]


def test_h1_nothing_usable_is_one_error_listing_every_attempt_and_fix() -> None:
    selection = select_provider(
        "auto",
        "default",
        factories(
            Recorder("containers", unusable="no Docker engine"),
            Recorder("local", unusable="no postgres found"),
            Recorder("external", unusable="PORTSIDE_REDIS_URL not set"),
        ),
    )
    message = str(selection.error())
    assert "no portside server provider is usable" in message
    for line in (
        "- containers: no Docker engine. Fix: fix containers",
        "- local: no postgres found. Fix: fix local",
        "- external: PORTSIDE_REDIS_URL not set. Fix: fix external",
    ):
        assert line in message
    assert "--portside-servers" in message
    assert selection.header().startswith("portside servers: none usable")


def test_h1_unknown_mode_is_rejected_with_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown portside servers mode 'docker'.*auto"):
        select_provider("docker", "ini option portside_servers", {})


def test_h1_auto_falls_back_when_the_chosen_provider_fails_to_start() -> None:
    local = Recorder("local", broken=True)
    external = Recorder("external")
    harness = Harness(
        "auto", "default", "gw0", factories(Recorder("containers", unusable="x"), local, external)
    )
    keyspace = harness.keyspace()
    try:
        assert keyspace.url == "redis://external:6379/0"
        assert harness.selection.provider is external
        assert any("redis would not start" in exc.reason for _, exc in harness.selection.tried)
    finally:
        harness.close()
    assert local.closed
    assert external.closed


def test_h1_a_named_mode_does_not_fall_back() -> None:
    harness = Harness("local", "default", "gw0", factories(Recorder("local", broken=True)))
    try:
        with pytest.raises(RuntimeError, match="would not start"):
            harness.keyspace()
    finally:
        harness.close()


def test_h1_servers_start_lazily() -> None:
    local = Recorder("local")
    harness = Harness("local", "default", "main", factories(local))
    assert local.started == []
    harness.close()
    assert local.started == []


def test_h1_external_needs_both_variables() -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        ExternalProvider({"PORTSIDE_REDIS_URL": "redis://127.0.0.1:6379/0"}).probe()
    assert caught.value.reason == "PORTSIDE_POSTGRES_DSN not set"
    assert "export PORTSIDE_REDIS_URL=" in caught.value.fix


def test_h1_external_rejects_urls_of_the_wrong_kind() -> None:
    provider = ExternalProvider(
        {"PORTSIDE_REDIS_URL": "http://x", "PORTSIDE_POSTGRES_DSN": "postgresql://p@h/db"}
    )
    with pytest.raises(ConfigurationError, match="PORTSIDE_REDIS_URL='http://x' is not a redis"):
        provider.probe()


def test_h1_external_hides_passwords_in_the_header() -> None:
    provider = ExternalProvider(
        {
            "PORTSIDE_REDIS_URL": "redis://:s3cret@cache:6379/0",
            "PORTSIDE_POSTGRES_DSN": "postgresql://app:hunter2@db:5432/app",
        }
    )
    detail = provider.probe()
    assert "s3cret" not in detail
    assert "hunter2" not in detail
    assert "postgresql://app:***@db:5432/app" in detail


def test_h1_containers_probe_fails_fast_without_an_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert docker_host() == "unix:///nonexistent/docker.sock"
    with pytest.raises(ProviderUnavailable, match="no Docker engine at unix:///nonexistent"):
        ContainersProvider().probe()


def test_h1_containers_probe_reports_an_engine_that_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    with pytest.raises(ProviderUnavailable, match="did not answer") as caught:
        ContainersProvider().probe()
    assert "--portside-servers=local" in caught.value.fix
