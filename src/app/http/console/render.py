"""Rendering of the console's pages: the Jinja2 environment (autoescaped), its filters, the
security headers every console response carries, and who may read."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from portside.app.admin import MinuteCounts
from portside.app.http.auth import CSRF_HEADER, has_session
from portside.app.http.state import ApiState

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "can_read",
    "login_redirect",
    "page",
]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _pretty(value: Any) -> str:
    """JSON, indented, as plain text (autoescaping makes it safe in HTML)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _moment(value: datetime | float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _bars(minutes: Sequence[MinuteCounts], height: int = 24) -> list[dict[str, int]]:
    """Bar geometry of a throughput chart: one completed and one failed bar per minute."""
    top = max((m.completed + m.failed for m in minutes), default=0) or 1
    bars = []
    for index, minute in enumerate(minutes):
        done = round(minute.completed * height / top)
        failed = round(minute.failed * height / top)
        bars.append(
            {
                "x": index * 6,
                "done_y": height - done,
                "done": done,
                "failed_y": height - done - failed,
                "failed": failed,
            }
        )
    return bars


def _query(params: Mapping[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    return urlencode([(key, value) for key, value in merged.items() if value not in (None, "")])


_env = Environment(
    loader=PackageLoader("portside.app.http.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(pretty=_pretty, moment=_moment, bars=_bars)
_env.globals.update(query=_query, csrf_header=CSRF_HEADER)


def can_read(request: Request, api: ApiState) -> bool:
    """Whether the console's pages may be shown: public reading is on, or a session."""
    return api.settings.console_public_read or has_session(request, api.settings.admin_token)


def login_redirect(request: Request) -> Response:
    """Send the browser to the login page, back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(
        f"/ui/login?{urlencode({'next': target})}", status_code=303, headers=SECURITY_HEADERS
    )


def page(
    request: Request, api: ApiState, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A rendered page with the security headers."""
    signed_in = has_session(request, api.settings.admin_token)
    html = _env.get_template(template).render(
        request_path=request.url.path, signed_in=signed_in, **context
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
