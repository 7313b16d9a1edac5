"""The OpenTelemetry side of tracing: span names and attributes (messaging semantic
conventions), context in and out of a job's ``trace_context``, log fields."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, Tracer

from portside import version

__all__ = ["MESSAGING_SYSTEM", "Tracing", "sdk_configured"]

MESSAGING_SYSTEM = "bullmq"
"""``messaging.system`` of queue spans: the jobs are BullMQ jobs, whoever runs them."""

_NOT_CONFIGURED = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def sdk_configured() -> bool:
    """Whether a real tracer provider is installed (and the SDK not disabled)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return not isinstance(trace.get_tracer_provider(), _NOT_CONFIGURED)


class Tracing:
    """portside's tracer and the few operations its instrumented pieces share.

    Args:
        provider: Where spans go; default: the global tracer provider.
    """

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self.provider = provider
        self.tracer: Tracer = trace.get_tracer("portside", version(), tracer_provider=provider)

    def inject(self) -> str:
        """The current context as a job's ``trace_context``: a JSON object of propagation
        headers, as bullmq-otel writes it."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return json.dumps(carrier, separators=(",", ":"))

    @staticmethod
    def extract(trace_context: str | None) -> otel_context.Context | None:
        """The context a job's ``trace_context`` carries; None when absent or unreadable (a
        malformed value from another producer starts a new trace rather than failing)."""
        if not trace_context:
            return None
        try:
            carrier = json.loads(trace_context)
        except ValueError:
            return None
        if not isinstance(carrier, dict):
            return None
        headers = {str(key): value for key, value in carrier.items() if isinstance(value, str)}
        return propagate.extract(headers)

    def link(self, trace_context: str | None) -> list[Link]:
        """A link to the span a stored ``trace_context`` names (none when it names none)."""
        extracted = self.extract(trace_context)
        if extracted is None:
            return []
        span_context = trace.get_current_span(extracted).get_span_context()
        return [Link(span_context)] if span_context.is_valid else []

    def start(
        self,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, Any],
        *,
        parent: otel_context.Context | None = None,
        links: list[Link] | None = None,
    ) -> Any:
        """``tracer.start_as_current_span`` with portside's defaults (a context manager)."""
        return self.tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=dict(attributes), links=links
        )

    @staticmethod
    def log_fields() -> dict[str, str] | None:
        """``trace_id`` and ``span_id`` of the active span (hex, as the W3C header writes
        them), or None outside a span."""
        span_context = trace.get_current_span().get_span_context()
        if not span_context.is_valid:
            return None
        return {
            "trace_id": format(span_context.trace_id, "032x"),
            "span_id": format(span_context.span_id, "016x"),
        }


def record_failure(span: Span, error: BaseException) -> None:
    """Mark ``span`` failed by ``error`` (``error.type`` and an exception event)."""
    span.set_attribute("error.type", type(error).__qualname__)
    span.record_exception(error)
    span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)[:300]))
