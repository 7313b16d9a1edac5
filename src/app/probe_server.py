"""A worker's HTTP port: ``/metrics``, ``/livez`` and ``/readyz`` (OBS2, OBS3), served from a
thread so a busy event loop never delays a scrape."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from portside.app.readiness import Check, Readiness, ReadinessReport

__all__ = ["ProbeServer"]

_ANSWER_TIMEOUT = 5.0
"""Seconds ``/readyz`` waits for the event loop's answer before it reports unready."""

StartResponse = Callable[..., Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every second would flood stderr; the JSON logs say what matters."""


def _json(start: StartResponse, status: str, body: dict[str, Any]) -> Iterable[bytes]:
    start(status, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


class ProbeServer:
    """Serves a registry's metrics and a ``Readiness`` on ``port`` (0.0.0.0 by default).

    Args:
        registry: What ``/metrics`` exports.
        readiness: What ``/readyz`` answers; its checks run on ``loop``.
        loop: The event loop the worker runs on.
        port: TCP port (0 picks a free one; see ``port`` after ``start``).
        host: Address to bind.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: Readiness,
        loop: asyncio.AbstractEventLoop,
        port: int,
        host: str = "0.0.0.0",
    ) -> None:
        self._metrics = make_wsgi_app(registry)
        self._readiness = readiness
        self._loop = loop
        self._server = make_server(host, port, self._app, _Server, handler_class=_Quiet)
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="portside-probes", daemon=True
        )

    def start(self) -> None:
        """Serve from a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/livez":
            return _json(start, "200 OK", {"status": "alive"})
        if path == "/readyz":
            report = self._ready()
            status = "200 OK" if report.ready else "503 Service Unavailable"
            return _json(start, status, report.body())
        result: Iterable[bytes] = self._metrics(environ, start)
        return result

    def _ready(self) -> ReadinessReport:
        future = asyncio.run_coroutine_threadsafe(self._readiness.check(), self._loop)
        try:
            return future.result(_ANSWER_TIMEOUT)
        except Exception as error:
            future.cancel()
            detail = f"the worker's event loop gave no answer: {type(error).__name__}"
            return ReadinessReport((Check("event_loop", "failed", detail),))
