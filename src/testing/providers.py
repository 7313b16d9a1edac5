"""Server providers: where the harness gets its Redis and Postgres, and how one is chosen."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast, get_args

from portside.ports import ConfigurationError
from portside.testing.dsn import check_postgres_dsn, check_redis_url, redact

__all__ = [
    "MODES",
    "POSTGRES_ENV",
    "REDIS_ENV",
    "SERVERS_ENV",
    "ExternalProvider",
    "Mode",
    "ProviderName",
    "ProviderUnavailable",
    "Selection",
    "ServerProvider",
    "select_provider",
]

ProviderName = Literal["containers", "local", "external"]
Mode = Literal["auto", "containers", "local", "external"]
MODES: tuple[str, ...] = get_args(Mode)
AUTO_ORDER: tuple[ProviderName, ...] = ("containers", "local", "external")

SERVERS_ENV = "PORTSIDE_SERVERS"
REDIS_ENV = "PORTSIDE_REDIS_URL"
POSTGRES_ENV = "PORTSIDE_POSTGRES_DSN"


class ProviderUnavailable(Exception):
    """A provider cannot serve here.

    Args:
        reason: What is missing, e.g. "no Docker engine at unix:///var/run/docker.sock".
        fix: How to make the provider usable.
    """

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


class ServerProvider(Protocol):
    """A source of one Redis and one Postgres server for this process (one xdist worker)."""

    name: ProviderName

    def probe(self) -> str:
        """Check cheaply (no server start) that this provider can work here.

        Returns:
            What it will use, for the pytest header.

        Raises:
            ProviderUnavailable: With the reason and the fix.
        """
        ...

    def redis_url(self) -> str:
        """The Redis server's URL, starting the server on first call."""
        ...

    def postgres_dsn(self) -> str:
        """A DSN (superuser or CREATEDB role) of the Postgres server, starting it on first call."""
        ...

    def close(self) -> None:
        """Stop what this provider started. Safe to call twice."""
        ...


class ExternalProvider:
    """Servers someone else runs, given by ``PORTSIDE_REDIS_URL`` and ``PORTSIDE_POSTGRES_DSN``.

    Safe to share between xdist workers and sessions: every test has its own key prefix and
    database, and template database names are unique per session and worker.
    """

    name: ProviderName = "external"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env

    def probe(self) -> str:
        missing = [var for var in (REDIS_ENV, POSTGRES_ENV) if not self._env.get(var)]
        if missing:
            raise ProviderUnavailable(
                f"{' and '.join(missing)} not set",
                f"export {REDIS_ENV}=redis://127.0.0.1:6379/0 and "
                f"{POSTGRES_ENV}=postgresql://postgres@127.0.0.1:5432/postgres",
            )
        self.redis_url()
        self.postgres_dsn()
        return (
            f"{REDIS_ENV}={redact(self._env[REDIS_ENV])}, "
            f"{POSTGRES_ENV}={redact(self._env[POSTGRES_ENV])}"
        )

    def redis_url(self) -> str:
        return check_redis_url(self._require(REDIS_ENV), REDIS_ENV)

    def postgres_dsn(self) -> str:
        return check_postgres_dsn(self._require(POSTGRES_ENV), POSTGRES_ENV)

    def close(self) -> None:
        """Nothing to stop: the servers are not ours."""

    def _require(self, var: str) -> str:
        value = self._env.get(var)
        if not value:
            raise ConfigurationError(
                f"{var} is not set, so the external provider has no server to use",
                fix=f"export {var}, or choose another provider with --portside-servers",
                field=var,
            )
        return value


@dataclass
class Selection:
    """The outcome of choosing a provider, kept for the pytest header and error messages."""

    mode: str
    source: str
    provider: ServerProvider | None = None
    detail: str = ""
    tried: list[tuple[str, ProviderUnavailable]] = field(default_factory=list)
    fallbacks: list[ServerProvider] = field(default_factory=list)

    def header(self) -> str:
        """One line for ``pytest_report_header``."""
        skipped = "; ".join(f"{name}: {exc.reason}" for name, exc in self.tried)
        if self.provider is None:
            return f"portside servers: none usable (mode {self.mode} from {self.source}; {skipped})"
        why = f"mode {self.mode} from {self.source}"
        if skipped:
            why += f"; skipped {skipped}"
        return f"portside servers: {self.provider.name} ({why}) -> {self.detail}"

    def error(self) -> ConfigurationError:
        """The error raised by fixtures when no provider is usable."""
        lines = [f"  - {name}: {exc.reason}. Fix: {exc.fix}" for name, exc in self.tried]
        return ConfigurationError(
            f"no portside server provider is usable (--portside-servers={self.mode}, from "
            f"{self.source}); tried:\n" + "\n".join(lines),
            fix="apply one of the fixes above, or pick a provider with --portside-servers, "
            f"the ini option portside_servers or ${SERVERS_ENV}",
            field="portside_servers",
        )


ProviderFactory = Callable[[], ServerProvider]


def select_provider(
    mode: str, source: str, factories: Mapping[ProviderName, ProviderFactory]
) -> Selection:
    """Choose the provider for ``mode``: the named one, or for ``auto`` the first usable one.

    Args:
        mode: ``auto`` or a provider name.
        source: Where ``mode`` came from (command line, env, ini, default), for messages.
        factories: How to build each provider.

    Raises:
        ConfigurationError: If ``mode`` is not a known mode.
    """
    if mode not in MODES:
        raise ConfigurationError(
            f"unknown portside servers mode {mode!r} (from {source})",
            fix=f"use one of {', '.join(MODES)}",
            field="portside_servers",
        )
    order: Sequence[ProviderName] = AUTO_ORDER if mode == "auto" else (cast(ProviderName, mode),)
    selection = Selection(mode=mode, source=source)
    for name in order:
        provider = factories[name]()
        if selection.provider is not None:
            selection.fallbacks.append(provider)
            continue
        try:
            selection.detail = provider.probe()
        except ProviderUnavailable as exc:
            selection.tried.append((name, exc))
        except ConfigurationError as exc:
            selection.tried.append((name, ProviderUnavailable(exc.message, exc.fix or "")))
        else:
            selection.provider = provider
    return selection
