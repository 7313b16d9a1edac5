"""Structured JSON logs on stdlib logging: one object per line (A2)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "FIELDS_ATTR",
    "JsonFormatter",
    "JsonLinesHandler",
    "configure_logging",
    "event",
    "flush_logs",
]

FIELDS_ATTR = "portside"
"""Log records carry their structured fields in ``extra={"portside": {...}}``."""

_HANDLER_NAME = "portside-json"

_MAX_BUFFERED = 256
"""Lines a ``JsonLinesHandler`` holds at most before it writes them without waiting."""


_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "event", ...fields, "exc"?}`` as one JSON line."""

    _last: tuple[int, str] = (-1, "")

    def _timestamp(self, created: float) -> str:
        # A busy worker logs many lines per millisecond: format each millisecond once.
        milliseconds = int(created * 1000)
        last = self._last
        if last[0] != milliseconds:
            text = datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat(
                timespec="milliseconds"
            )
            last = self._last = (milliseconds, text)
        return last[1]

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)


class JsonLinesHandler(logging.Handler):
    """Writes formatted lines in batches: at most one write per event-loop turn.

    A worker logs a few lines per job; a write and flush per line costs more than the job.
    Lines logged inside a running event loop are written together once the loop's current
    turn ends. A WARNING or worse, a line logged outside an event loop (another thread, a
    plain function), a full buffer, ``flush()`` and ``close()`` (``logging.shutdown`` at exit)
    write everything held at once, so nothing is lost and the order is kept. Lines are
    formatted by ``JsonFormatter`` unless another formatter is set.

    Args:
        stream: Where to write; None means whatever ``sys.stderr`` is at write time (it may
            be replaced, e.g. in tests).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self._stream = stream
        self._lines: list[str] = []
        self._scheduled: asyncio.AbstractEventLoop | None = None

    @property
    def stream(self) -> TextIO:
        """The stream lines are written to now."""
        return self._stream if self._stream is not None else sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING or len(self._lines) >= _MAX_BUFFERED:
            self._write()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write()
            return
        if self._scheduled is not loop:
            self._scheduled = loop
            loop.call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled = None
            self._write()

    def _write(self) -> None:
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        stream = self.stream
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            # A closed or broken stream: the lines cannot be written anywhere.
            return

    def flush(self) -> None:
        """Write every held line now."""
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def close(self) -> None:
        self.flush()
        super().close()


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send the ``portside`` loggers to ``stream`` (default: the current stderr) as JSON lines.

    Idempotent: calling it again replaces the handler it installed before.
    """
    logger = logging.getLogger("portside")
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
            handler.close()
    handler = JsonLinesHandler(stream)
    handler.set_name(_HANDLER_NAME)
    logger.addHandler(handler)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    logger.propagate = False


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log the event ``name`` with structured ``fields``.

    The record skips ``Logger.log``'s stack walk for the caller's file and line (it would
    only ever find this function) and names this module instead.
    """
    if logger.isEnabledFor(level):
        logger.handle(
            logger.makeRecord(
                logger.name, level, __file__, 0, name, (), None, "event", {FIELDS_ATTR: fields}
            )
        )


def flush_logs() -> None:
    """Write every log line the ``portside`` handlers still hold (e.g. before a process exits)."""
    for handler in logging.getLogger("portside").handlers:
        handler.flush()
