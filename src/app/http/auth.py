"""Who may call what: the admin bearer token, the public API token and the console's session.

Every comparison of a secret is constant-time (``hmac.compare_digest``). The console's session
cookie holds no token: it holds an HMAC of a fixed label under the admin token, so it is
worthless once the token changes and reveals nothing about it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from portside.app.http.problems import ApiError
from portside.app.http.settings import ADMIN_TOKEN_ENV, API_TOKEN_ENV
from portside.app.http.state import ApiState, api_state

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "console_session",
    "has_session",
    "require_admin",
    "require_api_token",
    "same_secret",
]

SESSION_COOKIE = "portside_console"
CSRF_HEADER = "X-Portside-Console"
"""Sent by the console's own script with every action: a cross-site form cannot set it."""
_SESSION_LABEL = b"portside console session v1"

State = Annotated[ApiState, Depends(api_state)]
_admin_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="adminToken",
    description=f"The value of {ADMIN_TOKEN_ENV}, sent as `Authorization: Bearer <token>`.",
)
_api_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiToken",
    description=f"The value of {API_TOKEN_ENV}, sent as `Authorization: Bearer <token>` "
    "(only when the server sets it).",
)
_ADMIN_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="portside-admin"'}
_API_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="portside"'}


def same_secret(given: str, expected: SecretStr) -> bool:
    """Whether ``given`` equals ``expected``, compared in constant time."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.get_secret_value().encode("utf-8")
    )


def console_session(token: SecretStr) -> str:
    """The session cookie value the console sets after a login with ``token``."""
    key = token.get_secret_value().encode("utf-8")
    return hmac.new(key, _SESSION_LABEL, hashlib.sha256).hexdigest()


def has_session(request: Request, token: SecretStr | None) -> bool:
    """Whether ``request`` carries a valid console session cookie for ``token``."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if token is None or not cookie:
        return False
    return hmac.compare_digest(cookie.encode("utf-8", "replace"), console_session(token).encode())


async def require_admin(
    request: Request,
    api: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_admin_bearer)],
) -> None:
    """Let the request through with the admin bearer token, or with the console's session
    cookie together with the console's header (``X-Portside-Console``)."""
    token = api.settings.admin_token
    if token is None:
        raise ApiError(
            403,
            f"the admin API is disabled: set {ADMIN_TOKEN_ENV} on the API server to enable it",
        )
    if credentials is not None:
        if same_secret(credentials.credentials, token):
            return
        raise ApiError(401, "wrong bearer token", headers=_ADMIN_CHALLENGE)
    if request.headers.get(CSRF_HEADER) and has_session(request, token):
        return
    raise ApiError(
        401,
        f"missing bearer token: send 'Authorization: Bearer <{ADMIN_TOKEN_ENV}>'",
        headers=_ADMIN_CHALLENGE,
    )


async def require_api_token(
    api: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_api_bearer)],
) -> None:
    """With ``PORTSIDE_API_TOKEN`` set, let public job requests through only with it."""
    token = api.settings.api_token
    if token is None:
        return
    if credentials is None:
        raise ApiError(
            401,
            f"missing bearer token: send 'Authorization: Bearer <{API_TOKEN_ENV}>'",
            headers=_API_CHALLENGE,
        )
    if not same_secret(credentials.credentials, token):
        raise ApiError(401, "wrong bearer token", headers=_API_CHALLENGE)
