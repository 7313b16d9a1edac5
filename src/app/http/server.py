"""``ApiServer``: serve the API with uvicorn inside the running event loop (dev, tests)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from portside.app.http.app import close_streams
from portside.ports import ConfigurationError

__all__ = ["ApiServer"]


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers (the embedding program owns signals), telling
    when start-up finished instead of exiting the process when it fails."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self.failure: BaseException | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit as exc:  # uvicorn exits when the app's lifespan start-up fails
            self.failure = exc
            self.should_exit = True
        finally:
            self.ready.set()


class ApiServer:
    """Serve ``app`` on ``host:port`` (port 0: a free one) until ``stop``.

    ``stop`` ends open event streams first (``close_streams``), then lets uvicorn finish
    in-flight requests within ``graceful`` seconds and run the app's shutdown.

    Args:
        app: The application (``create_app``).
        host: Interface to listen on.
        port: TCP port; 0 picks a free one (see ``port`` after ``start``).
        log_level: uvicorn's log level.
        graceful: Seconds in-flight requests get at shutdown.
    """

    def __init__(
        self,
        app: FastAPI,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        graceful: float = 5.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._config = uvicorn.Config(
            app,
            log_config=None,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=max(int(graceful), 1),
        )
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must say TCP: asyncio only disables Nagle (TCP_NODELAY) on the connections of
        # sockets that do, and with Nagle on, every keep-alive response waits ~40 ms for the
        # client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as error:
            sock.close()
            raise ConfigurationError(
                f"cannot listen on {self.host}:{self.port} ({error.strerror or error})",
                fix="pick another --port (0 picks a free one) or stop what uses it",
                field="port",
            ) from error
        self.port = int(sock.getsockname()[1])
        return sock

    async def start(self) -> ApiServer:
        """Listen and run the app's start-up; returns once requests are served.

        Raises:
            ConfigurationError: the address is taken, or the app's start-up failed.
        """
        if self._task is not None:
            return self
        sock = self._bind()
        server = _EmbeddedServer(self._config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="portside-api")
        ready = asyncio.ensure_future(server.ready.wait())
        await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if server.failure is not None or self._task.done():
            await self.stop()
            sock.close()
            raise ConfigurationError(
                "the API did not start: its start-up failed (see the log above)",
                fix="check that Redis and Postgres are reachable and migrated",
            )
        return self

    async def stop(self) -> None:
        """End event streams, stop accepting, finish in-flight requests, run shutdown."""
        task, self._task = self._task, None
        if task is None or self._server is None:
            return
        close_streams(self.app)
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __aenter__(self) -> ApiServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
