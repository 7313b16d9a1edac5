"""S3: which connection failures count as refusals (no retry) and what they say."""

from __future__ import annotations

import ssl

import pytest
from redis.exceptions import AuthenticationError, NoPermissionError
from redis.exceptions import ConnectionError as RedisConnectionError

from portside.adapters.bullmq.transport.errors import backend_error, refusal
from portside.ports import BackendUnavailableError, ConfigurationError

_RESET = "Error while reading from h:1 : (104, 'Connection reset by peer')"


def _wrapped(cause: BaseException, text: str) -> RedisConnectionError:
    error = RedisConnectionError(text)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "tls", "expected"),
    [
        (AuthenticationError("invalid username-password pair"), False, "username or password"),
        (NoPermissionError("no permissions to access a key"), False, "ACL user may not"),
        (
            RedisConnectionError("Error 1 connecting: [SSL: CERTIFICATE_VERIFY_FAILED] failed"),
            False,
            "server's certificate was not trusted",
        ),
        (
            RedisConnectionError("Error while reading: [SSL: TLSV1_ALERT_UNKNOWN_CA] alert"),
            False,
            "refused the client certificate",
        ),
        (
            _wrapped(ssl.SSLCertVerificationError("verify failed"), "Error 1 connecting"),
            False,
            "server's certificate was not trusted",
        ),
        (
            RedisConnectionError(
                "Error while reading from h:1 : (104, 'Connection reset by peer')"
            ),
            True,
            "refuses the client certificate",
        ),
    ],
)
def test_s3_refusals_are_recognised(error: BaseException, tls: bool, expected: str) -> None:
    """S3: credentials, ACL and certificate failures are refusals, each with its reason."""
    reason = refusal(error, tls=tls)
    assert reason is not None
    assert expected in reason


@pytest.mark.parametrize(
    "error",
    [
        RedisConnectionError("Error 111 connecting to h:1. Connection refused."),
        RedisConnectionError("Connection closed by server."),
        RedisConnectionError(_RESET),
        TimeoutError("timed out"),
    ],
)
def test_s3_network_failures_are_not_refusals(error: BaseException) -> None:
    """S3: a server that is down, restarting or slow is retried as before (a reset counts
    as a refusal only on a fresh TLS connection)."""
    assert refusal(error) is None
    assert isinstance(backend_error(error, "redis://h:1/0", "enqueue"), BackendUnavailableError)


def test_s3_a_refusal_becomes_a_configuration_error_naming_redis_url() -> None:
    """S3: the error names the operation, the server (password hidden by the caller) and
    the field to fix."""
    error = backend_error(AuthenticationError("bad"), "rediss://app:***@h:6380/0", "enqueue")
    assert isinstance(error, ConfigurationError)
    assert error.field == "redis_url"
    assert "enqueue failed: Redis at rediss://app:***@h:6380/0 refused" in str(error)
