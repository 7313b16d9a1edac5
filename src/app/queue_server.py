"""Whether the server holding the queues is safe for jobs: no eviction, memory left (E2)."""

from __future__ import annotations

import logging
from typing import Literal, NamedTuple

from portside.app.logs import event
from portside.ports import QueuePort, ServerInfo

__all__ = [
    "EVICTION_FIX",
    "MEMORY_WARN_RATIO",
    "ServerWarning",
    "check_queue_server",
    "memory_used_ratio",
    "server_warnings",
]

_log = logging.getLogger("portside.worker")

MEMORY_WARN_RATIO = 0.9
"""Share of ``maxmemory`` in use from which the queue server is reported as nearly full."""

EVICTION_FIX = (
    "set maxmemory-policy noeviction on the queue's Redis (CONFIG SET maxmemory-policy "
    "noeviction, and in redis.conf or your provider's parameter group so it survives a "
    "restart); put caches on a separate Redis with an LRU policy (docs/platform.md, "
    "'The read-through cache')"
)

ServerRule = Literal["eviction", "memory"]


class ServerWarning(NamedTuple):
    """Something about the queue server that can lose or refuse jobs, and what to do."""

    rule: ServerRule
    message: str
    fix: str


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def _size(value: int) -> str:
    size, index = float(value), 0
    while size >= 1024 and index < len(_UNITS) - 1:
        size /= 1024
        index += 1
    return f"{size:.0f} B" if index == 0 else f"{size:.1f} {_UNITS[index]}"


def memory_used_ratio(info: ServerInfo) -> float | None:
    """``used_memory / maxmemory``, or None without a limit or a reading."""
    if not info.maxmemory or info.used_memory is None:
        return None
    return info.used_memory / info.maxmemory


def server_warnings(info: ServerInfo) -> list[ServerWarning]:
    """What is unsafe about the queue server: an eviction policy, memory nearly full (E2)."""
    warnings: list[ServerWarning] = []
    policy = info.maxmemory_policy
    if policy is not None and policy != "noeviction":
        warnings.append(
            ServerWarning(
                "eviction",
                f"the queue Redis ({info.backend}) has maxmemory-policy {policy}: when its "
                "memory is full it evicts keys, and an evicted job, lock or marker silently "
                "loses jobs",
                EVICTION_FIX,
            )
        )
    used, limit = info.used_memory, info.maxmemory
    if used is not None and limit and used / limit >= MEMORY_WARN_RATIO:
        warnings.append(
            ServerWarning(
                "memory",
                f"the queue Redis uses {used / limit:.0%} of its maxmemory "
                f"({_size(used)} of {_size(limit)}); a full Redis refuses new jobs",
                "raise maxmemory, or keep fewer finished jobs (JobDefinition "
                "remove_on_complete / remove_on_fail, docs/runbook.md)",
            )
        )
    return warnings


async def check_queue_server(queue: QueuePort) -> ServerInfo | None:
    """Log the queue server's memory against its limit, and warn about what is unsafe.

    For worker start-up: never raises (a worker that can reach its queues runs even when
    the server will not describe itself); returns None when it could not be asked.
    """
    try:
        info = await queue.server_info()
    except Exception as error:
        event(_log, "queue.server_unreadable", logging.WARNING, error=str(error))
        return None
    ratio = memory_used_ratio(info)
    event(
        _log,
        "queue.server",
        backend=info.backend,
        maxmemory_policy=info.maxmemory_policy,
        used_memory=info.used_memory,
        maxmemory=info.maxmemory,
        memory_used=None if ratio is None else round(ratio, 4),
    )
    if info.unreadable is not None:
        event(
            _log,
            "queue.server_unreadable",
            logging.WARNING,
            error=info.unreadable,
            fix="check that the queue Redis has maxmemory-policy noeviction (the server "
            "would not say)",
        )
    for warning in server_warnings(info):
        event(
            _log,
            f"queue.server_{warning.rule}",
            logging.WARNING,
            message=warning.message,
            fix=warning.fix,
        )
    return info
