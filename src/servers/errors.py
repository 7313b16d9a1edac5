"""Errors of local server management."""

from __future__ import annotations

from portside.ports import ConfigurationError

__all__ = ["ServerNotFoundError", "ServerStartError"]


class ServerNotFoundError(ConfigurationError):
    """No usable server binary (valkey-server, redis-server, postgres) was found."""


class ServerStartError(ConfigurationError):
    """A server process did not become ready; the message carries the tail of its log."""
