"""A private event loop in a daemon thread for session-scoped work independent of pytest's loops."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["BackgroundLoop"]

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop running in its own thread.

    Session-scoped resources (admin connections, template databases) live here so that they
    outlive pytest-asyncio's function-scoped loops and can be used from sync fixtures.

    Args:
        name: Thread name, shown in tracebacks and ``py-spy`` dumps.
    """

    def __init__(self, name: str = "portside-harness") -> None:
        self._loop = asyncio.new_event_loop()
        self._pending: set[Future[Any]] = set()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def closed(self) -> bool:
        """Whether ``close`` has run."""
        return self._loop.is_closed()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the loop and block until it returns (or ``timeout`` seconds pass)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T], *, track: bool = True) -> Future[T]:
        """Start ``coro`` without waiting.

        ``wait_pending`` waits for it (and reports its error) unless ``track`` is false, in
        which case the caller owns the returned future.
        """
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        if track:
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)
        return future

    def wait_pending(self, timeout: float = 60.0) -> list[BaseException]:
        """Wait for every ``submit``-ted coroutine; return the exceptions they raised."""
        errors: list[BaseException] = []
        for future in list(self._pending):
            try:
                future.result(timeout)
            except BaseException as exc:  # collected for the caller to report
                errors.append(exc)
        return errors

    def close(self) -> None:
        """Stop the loop and join the thread; pending work is cancelled."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()
