"""Optional OpenTelemetry tracing (OBS1), chosen once at start-up.

Nothing here imports ``opentelemetry`` unless tracing is on, and nothing on the untraced
path checks for it per job: a process without the ``otel`` extra, or without an SDK tracer
provider, runs the same code it runs without this module.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from portside.infra import Infra
from portside.ports import ConfigurationError

if TYPE_CHECKING:
    from portside.app.tracing.spans import Tracing

__all__ = ["TRACING_ENV", "TracingMode", "instrument", "resolve_tracing"]

TRACING_ENV = "PORTSIDE_TRACING"
"""``auto`` (default), ``on`` or ``off``: see ``resolve_tracing``."""

TracingMode = Literal["auto", "on", "off"]
_MODES = ("auto", "on", "off")


def _mode(value: str | None) -> TracingMode:
    chosen = (value if value is not None else os.environ.get(TRACING_ENV, "auto")).lower()
    if chosen not in _MODES:
        raise ConfigurationError(
            f"{TRACING_ENV} is {chosen!r}",
            fix="set it to auto (trace when an OpenTelemetry SDK is configured), on or off",
            field=TRACING_ENV,
        )
    return chosen  # type: ignore[return-value]


def resolve_tracing(mode: str | None = None) -> Tracing | None:
    """Whether this process traces, decided now: a ``Tracing`` or None.

    Args:
        mode: ``auto``: trace when ``opentelemetry-api`` is importable and an SDK tracer
            provider is installed (``trace.set_tracer_provider``, or ``opentelemetry-instrument``)
            and ``OTEL_SDK_DISABLED`` is not true; ``on``: trace whenever the API is importable
            (spans are no-ops without an SDK); ``off``: never. Default: ``$PORTSIDE_TRACING``,
            else ``auto``.

    Raises:
        ConfigurationError: ``mode`` is none of these, or ``on`` without the ``otel`` extra.
    """
    chosen = _mode(mode)
    if chosen == "off":
        return None
    try:
        from portside.app.tracing.spans import Tracing, sdk_configured
    except ImportError as error:
        if chosen == "on":
            raise ConfigurationError(
                f"tracing is on but OpenTelemetry cannot be imported ({error})",
                fix="pip install 'portside[otel]', or set PORTSIDE_TRACING=off",
                field=TRACING_ENV,
            ) from error
        return None
    if chosen == "auto" and not sdk_configured():
        return None
    return Tracing()


def instrument(infra: Infra, tracing: Tracing | None) -> Infra:
    """``infra`` whose queue traces enqueues and whose outbox traces appends and deliveries
    (``infra`` itself when ``tracing`` is None). Closing the result closes ``infra``'s
    adapters."""
    if tracing is None:
        return infra
    from portside.app.tracing.outbox import TracedOutbox
    from portside.app.tracing.queue import TracedQueue

    return Infra(
        queue=TracedQueue(infra.queue, tracing).port(),
        outbox=TracedOutbox(infra.outbox, tracing).port(),
        name=infra.name,
        history=infra.history,
        cache=infra.cache,
    )
