"""The simulated agent's reasoning: deterministic step outputs derived from a hash of the input."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["final_answer", "step_output"]

_ACTIONS = ("plan", "search", "read", "compare", "draft", "review", "refine", "cite")
_PREVIEW = 60


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("|".join(str(part) for part in parts).encode("utf-8")).digest()


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW else flat[: _PREVIEW - 1] + "…"


def step_output(agent: str, task: str, step: int, steps: int) -> dict[str, Any]:
    """What step ``step`` of ``steps`` produces: the same input always gives the same output."""
    digest = _digest(agent, task, step)
    action = "answer" if step == steps else _ACTIONS[digest[0] % len(_ACTIONS)]
    return {
        "action": action,
        "summary": f"{action}: {_preview(task)} ({step}/{steps})",
        "tokens": 40 + int.from_bytes(digest[1:3], "big") % 200,
    }


def final_answer(agent: str, task: str, steps: int) -> dict[str, Any]:
    """The run's result once every step completed."""
    tokens = sum(step_output(agent, task, step, steps)["tokens"] for step in range(1, steps + 1))
    return {
        "answer": f"{agent} finished {_preview(task)!r} in {steps} step(s)",
        "steps": steps,
        "tokens": tokens,
        "digest": _digest(agent, task, steps).hex()[:16],
    }
