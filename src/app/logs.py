"""Structured JSON logs on stdlib logging: one object per line (A2)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["FIELDS_ATTR", "JsonFormatter", "configure_logging", "event"]

FIELDS_ATTR = "portside"
"""Log records carry their structured fields in ``extra={"portside": {...}}``."""

_HANDLER_NAME = "portside-json"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "event", ...fields, "exc"?}`` as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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
        return json.dumps(line, default=str, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (it may be replaced, e.g. in tests)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send the ``portside`` loggers to ``stream`` (default: the current stderr) as JSON lines.

    Idempotent: calling it again replaces the handler it installed before.
    """
    logger = logging.getLogger("portside")
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    logger.propagate = False


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log the event ``name`` with structured ``fields``."""
    logger.log(level, name, extra={FIELDS_ATTR: fields})
