"""The ``color-extraction`` queue: a CPU-bound handler in a process pool (Q14), at most 5 at
once across every worker (Q13's queue-wide cap), 60 s per attempt.

``extract_colors`` is a plain function: it runs in a pool child, so it may keep a core busy
without stalling the worker's event loop (lock renewal, other jobs).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from portside.app import JobDefinition, Registry
from portside.app.pool import PoolContext, ProcessPool
from portside.examples.plans.retry import PLAN_RETRY

__all__ = ["COLOR_CAP", "ImagePayload", "extract_colors", "register_colors", "synthetic_pixels"]

COLOR_CAP = 5
"""Color extractions running at once across all workers (and pool children per worker)."""


class ImagePayload(BaseModel):
    """An image to analyse; ``seed`` stands in for its bytes (a synthetic, deterministic
    image, so the example needs no storage)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    imageId: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    width: int = Field(default=96, ge=1, le=1024)
    height: int = Field(default=96, ge=1, le=1024)
    seed: int = Field(default=1, ge=0)
    colors: int = Field(default=5, ge=1, le=16)


def synthetic_pixels(payload: ImagePayload) -> list[tuple[int, int, int]]:
    """The image's RGB pixels: a gradient with noise from a linear congruential generator."""
    state = payload.seed or 1
    pixels = []
    for y in range(payload.height):
        for x in range(payload.width):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            red = (x * 255 // payload.width + (state & 31)) & 255
            green = (y * 255 // payload.height + (state >> 5 & 31)) & 255
            blue = (state >> 10) & 255
            pixels.append((red, green, blue))
    return pixels


def extract_colors(payload: ImagePayload, ctx: PoolContext) -> dict[str, Any]:
    """The image's dominant colors: pixels counted in 3-bit-per-channel buckets.

    The result carries the attempt's start and end on the host's monotonic clock
    (``time.monotonic_ns``, the same in every process), so a test can count how many ran at
    once from the handlers' own timestamps.
    """
    start = time.monotonic_ns()
    pixels = synthetic_pixels(payload)
    ctx.progress(50)
    buckets = Counter((r >> 5, g >> 5, b >> 5) for r, g, b in pixels)
    top = buckets.most_common(payload.colors)
    colors = [
        {
            "hex": "#{:02x}{:02x}{:02x}".format(*(channel * 32 + 16 for channel in bucket)),
            "share": round(count / len(pixels), 4),
        }
        for bucket, count in top
    ]
    return {
        "imageId": payload.imageId,
        "pixels": len(pixels),
        "colors": colors,
        "timing": {"startNs": start, "endNs": time.monotonic_ns()},
    }


def register_colors(registry: Registry) -> None:
    """Add ``color-extraction`` to ``registry``."""
    registry.register(
        JobDefinition(
            name="color-extraction",
            queue="color-extraction",
            payload=ImagePayload,
            handler=extract_colors,
            executor=ProcessPool(size=COLOR_CAP, memory_limit_mb=1024),
            retry=PLAN_RETRY,
            timeout=60,
            concurrency=COLOR_CAP,
            queue_concurrency=COLOR_CAP,
            business_keys=("imageId",),
            id_keys=("imageId",),
            description="Extract an image's dominant colors (CPU-bound, in a process pool).",
        )
    )
