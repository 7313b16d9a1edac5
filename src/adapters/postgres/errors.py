"""Lost Postgres connections versus failed statements, and mapping the former to portside's
``BackendUnavailableError``.

Shared by every Postgres adapter: wrap a database call in ``backend_errors("what it does")``
and a terminated session, a server restart or a refused connection surfaces as a transient
``BackendUnavailableError`` (the asyncpg error kept as ``__cause__``), while errors of the
statement itself (constraint violations, bad SQL, bad arguments) pass through untouched.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import asyncpg.exceptions

from portside.ports import BackendUnavailableError, ConfigurationError

__all__ = [
    "RETRY_FIX",
    "backend_errors",
    "connection_gone",
    "connection_lost",
    "refused",
    "unavailable",
]

_REFUSALS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidPasswordError,
    ssl.SSLCertVerificationError,
)
"""Connection failures no retry can cure: the server refused the credentials, the TLS mode
or the certificate (S3)."""


def refused(error: BaseException, what: str) -> ConfigurationError | None:
    """A ConfigurationError naming the refusal when ``error`` is one, else None."""
    if not isinstance(error, _REFUSALS):
        return None
    return ConfigurationError(
        f"{what} failed: Postgres refused the connection ({type(error).__name__}: {error})",
        fix="check the user and password in the DSN, the server's pg_hba.conf rules, and for "
        "TLS the sslmode, sslrootcert, sslcert and sslkey query parameters",
        field="dsn",
    )


RETRY_FIX = (
    "the work did not happen; retry it once Postgres is reachable again (check that the "
    "server at the DSN is up and accepting connections)"
)

_LOST: tuple[type[BaseException], ...] = (
    # Sockets: reset, refused, broken pipe, unreachable host.
    OSError,
    # SQLSTATE class 08 (ConnectionDoesNotExistError, ConnectionFailureError, ...).
    asyncpg.PostgresConnectionError,
    # Class 57 (AdminShutdownError from pg_terminate_backend, CrashShutdownError,
    # CannotConnectNowError while the server starts).
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    # asyncpg's protocol state after the server went away but before the client noticed.
    asyncpg.exceptions.InternalClientError,
)

_NOT_LOST: tuple[type[BaseException], ...] = (
    # A statement timeout or pg_cancel_backend: the session is alive.
    asyncpg.exceptions.QueryCanceledError,
    # A schema change invalidated a cached statement: the session is alive.
    asyncpg.exceptions.OutdatedSchemaCacheError,
    # asyncpg's command timeout, or the caller's own deadline.
    TimeoutError,
)

# asyncpg raises the plain InterfaceError (its subclasses are argument and configuration
# errors) with these words once the connection under a call has closed.
_CLOSED_WORDS = ("connection is closed", "connection was closed")


def connection_gone(conn: object) -> bool:
    """Whether ``conn`` (an asyncpg connection or pool proxy) can no longer run anything.

    A pool proxy whose connection died is detached from it by asyncpg, and every call on it
    raises ``InterfaceError``: that counts as gone too.
    """
    is_closed = getattr(conn, "is_closed", None)
    if is_closed is None:
        return False
    try:
        return bool(is_closed())
    except asyncpg.InterfaceError:
        return True


def connection_lost(error: BaseException, conn: object = None, *, connecting: bool = False) -> bool:
    """Whether ``error`` means the connection or the server went away (worth retrying later),
    as opposed to an error of the statement itself.

    Args:
        error: What a database call raised.
        conn: The connection the call ran on, when the caller has it: a plain
            ``InterfaceError`` on a connection that is gone is counted as lost too.
        connecting: The call opens connections (a pool's first use, ``acquire``): a timeout
            then means the server did not answer, and counts as lost.
    """
    if connecting and isinstance(error, TimeoutError):
        return True
    if isinstance(error, (BackendUnavailableError, *_NOT_LOST)):
        return False
    if isinstance(error, _LOST):
        return True
    if type(error) is asyncpg.InterfaceError:
        return any(words in str(error) for words in _CLOSED_WORDS) or (
            conn is not None and connection_gone(conn)
        )
    return False


def unavailable(
    error: BaseException, what: str, *, fix: str = RETRY_FIX
) -> BackendUnavailableError:
    """The ``BackendUnavailableError`` for ``error`` met while doing ``what``.

    Raise it ``from error`` so the asyncpg error stays the ``__cause__``.
    """
    return BackendUnavailableError(
        f"{what} failed: the Postgres connection was lost or could not be opened "
        f"({type(error).__name__}: {error})",
        fix=fix,
    )


@contextmanager
def backend_errors(
    what: str, conn: object = None, *, connecting: bool = False, fix: str = RETRY_FIX
) -> Iterator[None]:
    """Re-raise a lost connection inside the block as ``BackendUnavailableError``.

    Usable around ``await`` calls in async code (``with backend_errors("outbox append"):``).
    Other errors, including every SQL error, leave the block unchanged.

    Args:
        what: The operation, for the message (e.g. ``"outbox append"``).
        conn: The connection the block uses, if any (see ``connection_lost``).
        connecting: The block opens connections (see ``connection_lost``).
        fix: What the caller should do; by default, retry the work later.
    """
    try:
        yield
    except Exception as exc:
        refusal = refused(exc, what) if connecting else None
        if refusal is not None:
            raise refusal from exc
        if connection_lost(exc, conn, connecting=connecting):
            raise unavailable(exc, what, fix=fix) from exc
        raise
