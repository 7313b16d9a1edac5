"""The operator console: a web dashboard at ``/ui`` served by the HTTP app (OPS1)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from portside.app.http.console.live import ChangeSignal
from portside.app.http.console.pages import router
from portside.app.http.state import ApiState

__all__ = ["install_console"]


def install_console(app: FastAPI) -> None:
    """Mount the console's pages, live feeds and assets (package data) on ``app``."""
    state: ApiState = app.state.portside
    signal = ChangeSignal()
    app.state.console_signal = signal
    if state.watcher is not None:
        state.watcher.add_listener(signal.on_event)
    app.include_router(router)
    app.mount(
        "/ui/static",
        StaticFiles(packages=[("portside.app.http.console", "static")]),
        name="console-static",
    )
