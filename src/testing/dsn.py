"""Small helpers to read and rewrite Redis URLs and Postgres DSNs."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from portside.ports import ConfigurationError

__all__ = ["check_postgres_dsn", "check_redis_url", "redact", "with_database"]

_POSTGRES_SCHEMES = ("postgresql", "postgres")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_postgres_dsn(dsn: str, source: str) -> str:
    """Return ``dsn`` if it is a ``postgresql://`` URL, else raise naming ``source``."""
    if urlsplit(dsn).scheme not in _POSTGRES_SCHEMES:
        raise ConfigurationError(
            f"{source}={redact(dsn)!r} is not a postgresql:// URL",
            fix=f"set {source} to e.g. postgresql://postgres@127.0.0.1:5432/postgres",
            field=source,
        )
    return dsn


def check_redis_url(url: str, source: str) -> str:
    """Return ``url`` if it is a ``redis://`` (or rediss/unix) URL, else raise naming ``source``."""
    if urlsplit(url).scheme not in _REDIS_SCHEMES:
        raise ConfigurationError(
            f"{source}={redact(url)!r} is not a redis:// URL",
            fix=f"set {source} to e.g. redis://127.0.0.1:6379/0",
            field=source,
        )
    return url


def with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at ``database`` instead of its own database."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for headers and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
