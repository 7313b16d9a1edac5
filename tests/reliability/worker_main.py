"""The real ``portside worker`` command with BullMQ lock and stall knobs from the environment."""

from __future__ import annotations

import json
import os
from typing import Any

TUNING_ENV = "RELIABILITY_BULLMQ_TUNING"


def _install_tuning(tuning: dict[str, Any]) -> None:
    import portside.adapters.bullmq as bullmq_package
    from portside.adapters.bullmq import BullMQQueue

    class TunedBullMQQueue(BullMQQueue):
        def __init__(self, redis_url: str, **options: Any) -> None:
            super().__init__(redis_url, **{**tuning, **options})

    # build_infra imports the class from the package when it runs, so it gets this one.
    bullmq_package.BullMQQueue = TunedBullMQQueue  # type: ignore[misc]


def main() -> None:
    """Run ``portside.app.cli.main``: the same option parsing, ``build_infra``, runtime,
    signal handling and exit codes, except that the ``BullMQQueue`` built by ``build_infra``
    gets the tuning keywords in ``$RELIABILITY_BULLMQ_TUNING`` (a JSON object such as
    ``{"lock_duration": 3, "stalled_interval": 1}``). The CLI has no option for them, and a
    crash test would otherwise wait out BullMQ's 30 s lock before a dead worker's jobs are
    requeued.
    """
    tuning = json.loads(os.environ.get(TUNING_ENV) or "{}")
    if tuning:
        _install_tuning(tuning)
    from portside.app.cli import main as portside_main

    portside_main()


if __name__ == "__main__":
    main()
