"""TLS for every kind of Redis URL: ``rediss://``, ``rediss+sentinel://``, ``rediss+cluster://``.

The ``s`` in the scheme turns TLS on; the certificate files come from the query, under the
names redis-py reads for ``rediss://`` (``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
``ssl_cert_reqs``, ``ssl_check_hostname``, ...), converted by redis-py's own URL parsers
(``sentinel.typed_option``). For ``rediss://`` redis-py's ``from_url`` does all of it; for
Sentinel and Cluster URLs the parsed ``ssl_*`` options go to redis-py's ``SSLConnection``
(through the TLS connection classes of ``sentinel.py`` and ``cluster.py``) and to the
short-lived clients that ask the Sentinels or the seed nodes, so every connection the
adapter opens checks the same certificates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from portside.ports import ConfigurationError

__all__ = ["base_scheme", "is_tls_url", "reject_tls_options", "tls_options"]

_TLS_SCHEMES = {
    "rediss": "redis",
    "rediss+sentinel": "redis+sentinel",
    "rediss+cluster": "redis+cluster",
}


def base_scheme(url: str) -> str:
    """The scheme of ``url`` without TLS: ``redis+cluster`` for ``rediss+cluster://...``."""
    scheme = urlsplit(url).scheme
    return _TLS_SCHEMES.get(scheme, scheme)


def is_tls_url(url: str) -> bool:
    """Whether ``url`` asks for TLS (``rediss://``, ``rediss+sentinel://``, ...)."""
    return urlsplit(url).scheme in _TLS_SCHEMES


def tls_options(options: dict[str, Any]) -> dict[str, Any]:
    """The ``ssl_*`` options among ``options`` (redis-py's ``SSLConnection`` arguments)."""
    return {name: value for name, value in options.items() if name.startswith("ssl_")}


def reject_tls_options(
    options: dict[str, Any], safe: str, invalid: Callable[[str, str], ConfigurationError]
) -> None:
    """Refuse ``ssl_*`` options on a URL without TLS (they would be silently unused, or
    redis-py would fail later with a ``TypeError``)."""
    names = sorted(tls_options(options))
    if names:
        raise invalid(
            safe,
            f"{', '.join(names)} need TLS: write the scheme with rediss (rediss+sentinel://, "
            "rediss+cluster://)",
        )
