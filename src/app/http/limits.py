"""Request body size limit: 413 before a huge body is read, declared or streamed."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware", "BodyTooLargeError"]


class BodyTooLargeError(HTTPException):
    """A streamed request body passed the limit: a 413 wherever the body is being read.

    An ``HTTPException`` because FastAPI passes those through its own body parsing.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the {limit}-byte limit")
        self.limit = limit


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


async def _reject(send: Send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail, "fields": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Reject bodies over ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before anything is read; a body
    sent without one (chunked) is counted as it arrives and the endpoint reading it gets
    ``BodyTooLargeError`` (answered 413) as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            text = declared.decode("latin-1").strip()
            if not text.isdigit():
                await _reject(send, 400, "bad_request", f"Content-Length {text!r} is not a number")
                return
            if int(text) > self.max_bytes:
                await _reject(
                    send,
                    413,
                    "body_too_large",
                    f"the request body is {int(text)} bytes, over the {self.max_bytes}-byte limit",
                )
                return
        received = 0
        limit = self.max_bytes

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, counted, send)
