"""Translate Redis client failures into portside errors."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import AuthenticationError, BusyLoadingError, NoPermissionError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from portside.adapters.bullmq.transport.tls import is_tls_url
from portside.ports import BackendUnavailableError, ConfigurationError, PortsideError

__all__ = [
    "CONNECTION_ERRORS",
    "REDIS_ERRORS",
    "backend_error",
    "is_connection_error",
    "refusal",
    "refused",
    "translate_errors",
    "unavailable",
]

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ConnectionError,
    TimeoutError,
    OSError,
)


REDIS_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, ResponseError)
"""Connection failures plus error replies: what a background duty may ride out."""


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` means Redis could not be reached (worth a reconnect and retry)."""
    return isinstance(error, CONNECTION_ERRORS)


_SERVER_UNTRUSTED = "the server's certificate was not trusted (check ssl_ca_certs)"
_CLIENT_REFUSED = "the server refused the client certificate (check ssl_certfile and ssl_keyfile)"
_TLS_TEXT = (
    ("CERTIFICATE_VERIFY_FAILED", _SERVER_UNTRUSTED),
    ("UNKNOWN_CA", _CLIENT_REFUSED),
    ("CERTIFICATE_REQUIRED", _CLIENT_REFUSED),
    ("BAD_CERTIFICATE", _CLIENT_REFUSED),
    ("WRONG_VERSION_NUMBER", "the server does not speak TLS on that port"),
)
_RESET_OVER_TLS = (
    "the server dropped the TLS connection before its first reply (it refuses the client "
    "certificate: check ssl_certfile and ssl_keyfile)"
)


def refusal(error: BaseException, *, tls: bool = False) -> str | None:
    """Why Redis turned the client away for good (credentials, permissions or a
    certificate), or None when the failure may pass (a network error, a restart).

    redis-py reports TLS failures as its ``ConnectionError`` with the ``ssl`` reason in the
    text. With TLS 1.3 the server checks the client certificate after the client's handshake
    is done, so a refused certificate often shows as a reset on the first read: with ``tls``
    (a ``rediss://``, ``rediss+sentinel://`` or ``rediss+cluster://`` URL), a reset before
    the first reply counts as that refusal.
    """
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, AuthenticationError):
            return "the username or password was refused"
        if isinstance(seen, NoPermissionError):
            return f"the ACL user may not run a command the adapter needs ({seen})"
        if isinstance(seen, ssl.SSLCertVerificationError):
            return _SERVER_UNTRUSTED
        text = str(seen)
        for marker, reason in _TLS_TEXT:
            if marker in text:
                return reason
        if tls and isinstance(seen, RedisConnectionError) and _reset_at_first_read(text):
            return _RESET_OVER_TLS
        seen = seen.__cause__ or seen.__context__
    return None


def _reset_at_first_read(text: str) -> bool:
    return "Connection reset by peer" in text and "Error while reading" in text


def refused(reason: str, url: str, operation: str) -> ConfigurationError:
    """A ConfigurationError for a refusal that no retry can cure (see ``refusal``)."""
    return ConfigurationError(
        f"{operation} failed: Redis at {url} refused the connection: {reason}",
        fix="check the username and password in redis_url, the ACL rules of that user "
        "(its key pattern must cover the prefix; it needs EVALSHA, SCRIPT LOAD, CLIENT "
        "SETNAME and the commands of BullMQ's scripts), and for rediss URLs the ssl_ca_certs, "
        "ssl_certfile and ssl_keyfile query parameters",
        field="redis_url",
    )


def backend_error(error: BaseException, url: str, operation: str) -> PortsideError:
    """``refused`` when Redis turned the client away for good, else ``unavailable``."""
    reason = refusal(error, tls=is_tls_url(url))
    if reason is not None:
        return refused(reason, url, operation)
    return unavailable(error, url, operation)


def unavailable(error: BaseException, url: str, operation: str) -> BackendUnavailableError:
    """A BackendUnavailableError saying which operation failed against which server."""
    return BackendUnavailableError(
        f"{operation} failed: Redis at {url} is unreachable ({type(error).__name__}: {error})",
        fix="check that Redis is running and that redis_url is right; the command was retried "
        "with backoff before giving up",
        field="redis_url",
    )


@asynccontextmanager
async def translate_errors(url: str, operation: str) -> AsyncIterator[None]:
    """Re-raise connection failures inside the block as BackendUnavailableError (a portside
    error raised inside, such as ``WaitTimeoutError``, passes as it is)."""
    try:
        yield
    except PortsideError:
        raise
    except NoPermissionError as exc:
        raise refused(refusal(exc) or str(exc), url, operation) from exc
    except CONNECTION_ERRORS as exc:
        raise backend_error(exc, url, operation) from exc
