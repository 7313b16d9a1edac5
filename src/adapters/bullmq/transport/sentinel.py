"""``redis+sentinel://`` URLs: the Sentinels to ask and the service whose master to use (S2).

Format::

    redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB][?OPTIONS]

``USER:PASSWORD`` authenticate with the master (and its replicas after a failover), not with
the Sentinels; Sentinels that require a password take ``sentinel_password`` (and
``sentinel_username``) in the query. Other query options are redis-py connection options for
the master (``socket_keepalive=true``, ...).

``rediss+sentinel://`` (S3) speaks TLS to the Sentinels and to the master alike, with the
same ``ssl_*`` query options (``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, see
``tls.py``); the Sentinels must then listen with TLS (``tls-port``) and report the master's
TLS port (they monitor it over ``tls-replication yes``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS, SSLConnection
from redis.asyncio.sentinel import SentinelManagedConnection

from portside.adapters.bullmq.transport.redis_internals import ReconnectingConnection
from portside.adapters.bullmq.transport.tls import is_tls_url, reject_tls_options, tls_options
from portside.ports import ConfigurationError

__all__ = [
    "SCHEME",
    "MasterConnection",
    "SentinelUrl",
    "TlsMasterConnection",
    "parse_address",
    "parse_sentinel_url",
    "typed_option",
]

SCHEME = "redis+sentinel"
_DEFAULT_PORT = 26379
_FORMAT = "redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db]"


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    master_options: dict[str, Any] = field(default_factory=dict)
    """username, password and redis-py options for connections to the master."""
    sentinel_options: dict[str, Any] = field(default_factory=dict)
    """username, password (and the TLS options) for connections to the Sentinels."""
    tls: bool = False


def _invalid(url: str, problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"redis_url {url!r} is not a valid Sentinel URL: {problem}",
        fix=f"write it as {_FORMAT}, e.g. 'redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster'",
        field="redis_url",
    )


def parse_address(
    text: str,
    safe: str,
    default_port: int = _DEFAULT_PORT,
    invalid: Callable[[str, str], ConfigurationError] | None = None,
) -> tuple[str, int]:
    """``host:port`` (port optional) of a URL listing several hosts."""
    fail = invalid or _invalid
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise fail(safe, f"{text!r} names no host")
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise fail(safe, f"{text!r} has a port that is not a number") from None
    if not 0 < number < 65536:
        raise fail(safe, f"{text!r} has a port outside 1-65535")
    return host.strip("[]"), number


def parse_sentinel_url(url: str, safe: str) -> SentinelUrl:
    """Parse ``url`` (``safe`` is it with the password hidden, for messages).

    Raises:
        ConfigurationError: naming what is missing or malformed.
    """
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    if not hosts:
        raise _invalid(safe, "it names no Sentinel")
    sentinels = tuple(parse_address(host, safe) for host in hosts.split(",") if host)
    path = [piece for piece in parts.path.split("/") if piece]
    if not path:
        raise _invalid(safe, "the service name (the master's name in Sentinel) is missing")
    if len(path) > 2:
        raise _invalid(safe, "the path has more than /service_name/db")
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise _invalid(safe, f"the database {path[1]!r} is not a number")
        db = int(path[1])
    master: dict[str, Any] = {}
    if userinfo:
        user, has_password, password = userinfo.partition(":")
        if user:
            master["username"] = unquote(user)
        if has_password:
            master["password"] = unquote(password)
    sentinel: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query):
        if name in ("sentinel_password", "sentinel_username"):
            sentinel[name.removeprefix("sentinel_")] = value
        else:
            master[name] = typed_option(name, value, safe)
    tls = is_tls_url(url)
    if tls:
        sentinel.update(ssl=True, **tls_options(master))
    else:
        reject_tls_options(master, safe, _invalid)
    return SentinelUrl(sentinels, unquote(path[0]), db, master, sentinel, tls)


def typed_option(
    name: str,
    value: str,
    safe: str,
    invalid: Callable[[str, str], ConfigurationError] | None = None,
) -> Any:
    """A URL query option converted as redis-py converts it in its own URLs."""
    parser = URL_QUERY_ARGUMENT_PARSERS.get(name)
    if parser is None:
        return value
    try:
        return parser(value)
    except (TypeError, ValueError):
        raise (invalid or _invalid)(safe, f"the option {name}={value!r} is not valid") from None


class MasterConnection(SentinelManagedConnection, ReconnectingConnection):
    """A connection to the master Sentinel names, asked again on every (re)connect.

    redis-py's own Sentinel connection asks only in ``connect()``; a command sent on a
    dropped connection reconnects without asking and so goes back to the old master's
    address (redis-py 8.2). Here every way of connecting asks the Sentinels (the hook is in
    ``redis_internals.ReconnectingConnection``).
    """

    async def connect_to(self, address: tuple[str, int]) -> None:
        """Connect to ``address`` (called by redis-py's Sentinel connect loop)."""
        await self.open_at(
            address,
            {"check_health": self.connection_pool.check_connection, "retry_socket_connect": False},
        )

    async def open(self, options: dict[str, Any]) -> None:
        await self.connect()  # type: ignore[no-untyped-call]


class TlsMasterConnection(MasterConnection, SSLConnection):
    """``MasterConnection`` over TLS (``rediss+sentinel://``)."""
