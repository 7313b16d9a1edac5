"""Structured JSON logs on stdlib logging: one object per line (A2)."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "FIELDS_ATTR",
    "ContextJsonLinesHandler",
    "JsonFormatter",
    "JsonLinesHandler",
    "LogFields",
    "add_log_context",
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


def _object_encoder() -> Callable[[dict[str, Any]], str]:
    """``_ENCODER.encode`` for dicts, without building the C encoder again on every call
    (which ``JSONEncoder.encode`` does, and which costs more than encoding a small dict)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return _ENCODER.encode
    chunks = make(None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
    return lambda value: "".join(chunks(value, 0))


_encode_object = _object_encoder()
_LEVEL_NAMES = {
    level: logging.getLevelName(level).lower()
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
}


_FIXED_KEYS = frozenset({"ts", "level", "logger", "event"})


class LogFields(dict[str, Any]):
    """Fields shared by several log lines (an attempt's job id, queue, attempt, business
    keys): ``event(..., base=fields)`` encodes them to JSON once, not once per line.

    Build it completely before its first line; ``[key] = value`` and ``update`` after that
    encode it again.
    """

    _json: str | None = None

    def __setitem__(self, key: str, value: Any) -> None:
        self._json = None
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._json = None
        super().update(*args, **kwargs)

    def json(self) -> str:
        """The fields as the inside of a JSON object (``"a":1,"b":"x"``); keys a line
        already has (``ts``, ``level``, ``logger``, ``event``) are left out."""
        if self._json is None:
            kept = {key: value for key, value in self.items() if key not in _FIXED_KEYS}
            self._json = _encode_object(kept)[1:-1]
        return self._json


@functools.lru_cache(maxsize=1024)
def _quoted(text: str) -> str:
    return _ENCODER.encode(text)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "event", ...fields, "exc"?}`` as one JSON line."""

    _last: tuple[int, str] = (-1, "")

    def timestamp(self, created: float) -> str:
        """``created`` (epoch seconds) as ISO 8601 UTC with milliseconds."""
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
        fields = getattr(record, FIELDS_ATTR, None)
        line = self.line(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            fields if isinstance(fields, dict) else None,
        )
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        name: str,
        fields: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The object one line encodes: the fixed keys first, then ``fields`` (which never
        replace them)."""
        line: dict[str, Any] = {
            "ts": self.timestamp(created),
            "level": level,
            "logger": logger,
            "event": name,
        }
        if fields:
            for key, value in fields.items():
                line.setdefault(key, value)
        return line


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
        self._held(record.levelno)

    def emit_event(
        self,
        logger: str,
        level: int,
        name: str,
        fields: dict[str, Any],
        base: LogFields | None = None,
    ) -> None:
        """``emit`` for ``event()`` without a ``LogRecord``: the same line, made directly.

        Used only while this handler keeps the default ``JsonFormatter`` and has no filters
        (see ``event``). ``base`` fields come first, already encoded.
        """
        formatter = self.formatter
        assert isinstance(formatter, JsonFormatter)
        level_name = _LEVEL_NAMES.get(level) or logging.getLevelName(level).lower()
        try:
            head = (
                f'{{"ts":"{formatter.timestamp(time.time())}","level":"{level_name}",'
                f'"logger":{_quoted(logger)},"event":{_quoted(name)}'
            )
            parts = [head]
            if base:
                parts.append(base.json())
            if fields:
                kept = {key: value for key, value in fields.items() if key not in _FIXED_KEYS}
                if kept:
                    parts.append(_encode_object(kept)[1:-1])
            text = ",".join(parts) + "}"
        except Exception:
            # What a LogRecord would have shown: let the stdlib path report it.
            every = {**base, **fields} if base else fields
            record = logging.getLogger(logger).makeRecord(
                logger, level, __file__, 0, name, (), None, "event", {FIELDS_ATTR: every}
            )
            self.handleError(record)
            return
        with self.lock:  # type: ignore[union-attr]
            self._lines.append(text)
            self._held(level)

    def _held(self, level: int) -> None:
        """After a line was added: write now, or at the end of the loop's turn."""
        if level >= logging.WARNING or len(self._lines) >= _MAX_BUFFERED:
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


class ContextJsonLinesHandler(JsonLinesHandler):
    """A ``JsonLinesHandler`` that adds the fields of the current context to every line: the
    active span's ``trace_id`` and ``span_id`` when tracing is on (OBS1).

    A separate class, installed only when tracing is on, so the untraced handler asks
    nothing per line.

    Args:
        context_fields: The fields to add now, or None for none.
        stream: As ``JsonLinesHandler``'s.
    """

    def __init__(
        self,
        context_fields: Callable[[], dict[str, str] | None],
        stream: TextIO | None = None,
    ) -> None:
        super().__init__(stream)
        self._context_fields = context_fields

    def emit(self, record: logging.LogRecord) -> None:
        extra = self._context_fields()
        if extra:
            fields = getattr(record, FIELDS_ATTR, None)
            setattr(record, FIELDS_ATTR, {**extra, **fields} if isinstance(fields, dict) else extra)
        super().emit(record)

    def emit_event(
        self,
        logger: str,
        level: int,
        name: str,
        fields: dict[str, Any],
        base: LogFields | None = None,
    ) -> None:
        extra = self._context_fields()
        if extra:
            fields = {**fields, **{key: value for key, value in extra.items() if key not in fields}}
        super().emit_event(logger, level, name, fields, base)


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


def add_log_context(context_fields: Callable[[], dict[str, str] | None]) -> bool:
    """Make the handler ``configure_logging`` installed add ``context_fields()`` to every line
    (it is replaced by a ``ContextJsonLinesHandler`` on the same stream). Returns whether
    there was such a handler; calling it again replaces the function."""
    logger = logging.getLogger("portside")
    for handler in list(logger.handlers):
        if handler.get_name() != _HANDLER_NAME or not isinstance(handler, JsonLinesHandler):
            continue
        replacement = ContextJsonLinesHandler(context_fields, handler._stream)
        replacement.set_name(_HANDLER_NAME)
        replacement.setLevel(handler.level)
        handler.flush()
        logger.addHandler(replacement)
        logger.removeHandler(handler)
        return True
    return False


def event(
    logger: logging.Logger,
    name: str,
    level: int = logging.INFO,
    *,
    base: LogFields | None = None,
    **fields: Any,
) -> None:
    """Log the event ``name`` with structured ``fields`` (after ``base``'s, if given; a key
    in both is an error, as with two ``**`` of one call).

    When the only handler that would see the line is portside's own ``JsonLinesHandler``
    (``configure_logging``: a worker in production), the line is made without a
    ``LogRecord`` (about a third of the cost). Otherwise a record goes through the logging
    machinery as usual; it skips ``Logger.log``'s stack walk for the caller's file and line
    (it would only ever find this function) and names this module instead.
    """
    if not logger.isEnabledFor(level):
        return
    if base and fields and not fields.keys().isdisjoint(base):
        raise TypeError(f"event {name!r} got fields twice: {sorted(fields.keys() & base)}")
    handler = _only_json_handler(logger, level)
    if handler is not None:
        handler.emit_event(logger.name, level, name, fields, base)
        return
    if base:
        fields = {**base, **fields}
    logger.handle(
        logger.makeRecord(
            logger.name, level, __file__, 0, name, (), None, "event", {FIELDS_ATTR: fields}
        )
    )


def _only_json_handler(logger: logging.Logger, level: int) -> JsonLinesHandler | None:
    """The one handler a line of ``logger`` at ``level`` reaches, if it is a plain
    ``JsonLinesHandler`` and nothing filters on the way; else None."""
    if logger.filters:
        return None
    found: JsonLinesHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if level < handler.level:
                continue
            if (
                found is not None
                or (
                    type(handler) is not JsonLinesHandler
                    and type(handler) is not ContextJsonLinesHandler
                )
                or handler.filters
                or type(handler.formatter) is not JsonFormatter
            ):
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found


def flush_logs() -> None:
    """Write every log line the ``portside`` handlers still hold (e.g. before a process exits)."""
    for handler in logging.getLogger("portside").handlers:
        handler.flush()
