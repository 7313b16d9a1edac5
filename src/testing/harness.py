"""The per-process harness: the chosen provider, the background loop and the isolation state."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping

from portside.ports import ConfigurationError
from portside.testing.background import BackgroundLoop
from portside.testing.databases import DatabaseIsolation, Migrate
from portside.testing.keyspace import KeyspaceIsolation
from portside.testing.providers import (
    ProviderFactory,
    ProviderName,
    ProviderUnavailable,
    Selection,
    ServerProvider,
    select_provider,
)

__all__ = ["Harness"]

_Start = Callable[["ServerProvider"], str]


class Harness:
    """Everything one pytest process (one xdist worker) shares between its tests.

    Servers start lazily: a run that only uses fakes starts nothing. ``close`` stops what was
    started and drops what was created.

    Args:
        mode: ``auto``, ``containers``, ``local`` or ``external``.
        source: Where ``mode`` came from, for the header and messages.
        worker: The xdist worker id, or ``main``.
        factories: How to build each provider.
        migrate: Schema for template databases (default: portside's migrations).
        prefetch: Clone each next test database in the background (see DatabaseIsolation).
    """

    def __init__(
        self,
        mode: str,
        source: str,
        worker: str,
        factories: Mapping[ProviderName, ProviderFactory],
        migrate: Migrate | None = None,
        *,
        prefetch: bool = True,
    ) -> None:
        self.worker = worker
        self._prefetch = prefetch
        self.run = secrets.token_hex(6)
        self.selection: Selection = select_provider(mode, source, factories)
        self._migrate = migrate
        self._loop: BackgroundLoop | None = None
        self._keyspace: KeyspaceIsolation | None = None
        self._databases: DatabaseIsolation | None = None
        self._closed = False
        self._used: list[ServerProvider] = []

    @property
    def provider(self) -> ServerProvider:
        """The chosen provider; raises the "nothing usable" error when there is none."""
        if self.selection.provider is None:
            raise self.selection.error()
        return self.selection.provider

    def header(self) -> str:
        """The pytest header line."""
        return self.selection.header()

    def keyspace(self) -> KeyspaceIsolation:
        """Redis isolation, starting the Redis server on first use."""
        if self._keyspace is None:
            url = self._start("Redis", lambda p: p.redis_url())
            self._keyspace = KeyspaceIsolation(self._background(), url, self.worker, self.run[:8])
        return self._keyspace

    def databases(self) -> DatabaseIsolation:
        """Postgres isolation, starting the Postgres server on first use."""
        if self._databases is None:
            dsn = self._start("Postgres", lambda p: p.postgres_dsn())
            self._databases = DatabaseIsolation(
                self._background(),
                dsn,
                self.worker,
                self.run,
                self._migrate,
                prefetch=self._prefetch,
            )
        return self._databases

    def close(self) -> list[BaseException]:
        """Drop databases, delete keys, stop servers; return the errors met (all steps run)."""
        if self._closed:
            return []
        self._closed = True
        errors: list[BaseException] = []
        if self._databases is not None:
            errors.extend(self._databases.close())
        if self._keyspace is not None:
            try:
                self._keyspace.close()
            except Exception as exc:
                errors.append(exc)
        if self._loop is not None:
            self._loop.close()
        for provider in self._used:
            try:
                provider.close()
            except Exception as exc:
                errors.append(exc)
        return errors

    def _background(self) -> BackgroundLoop:
        if self._loop is None:
            self._loop = BackgroundLoop(f"portside-harness-{self.worker}")
        return self._loop

    def _start(self, what: str, start: _Start) -> str:
        if self._closed:
            raise ConfigurationError(
                f"the portside harness of worker {self.worker} is closed",
                fix="request portside fixtures only while the session runs",
            )
        while True:
            provider = self.provider
            if provider not in self._used:
                self._used.append(provider)
            try:
                return start(provider)
            except Exception as exc:
                if not self._fall_back(provider, what, exc):
                    raise

    def _fall_back(self, failed: ServerProvider, what: str, exc: Exception) -> bool:
        """Under ``auto``, move on to the next usable provider after ``failed`` broke."""
        if self.selection.mode != "auto":
            return False
        self.selection.tried.append(
            (failed.name, ProviderUnavailable(f"{what} failed to start: {exc}", "see the log"))
        )
        self.selection.provider = None
        while self.selection.fallbacks:
            candidate = self.selection.fallbacks.pop(0)
            try:
                self.selection.detail = candidate.probe()
            except ProviderUnavailable as unusable:
                self.selection.tried.append((candidate.name, unusable))
                continue
            self.selection.provider = candidate
            return True
        return False
