"""Root conftest: plugins every test directory may use, and state no test may leak."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _portside_logging_restored() -> Iterator[None]:
    """Give the next test the ``portside`` logger as this one found it.

    ``configure_logging`` (the CLI's worker and dev commands call it, and the logging tests)
    installs a JSON handler and stops propagation; left in place, ``caplog`` in a later test
    on the same xdist worker sees no ``portside`` record on pytest releases that do not
    attach it to non-propagating loggers, so a test passed or failed depending on the order.
    """
    logger = logging.getLogger("portside")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    for handler in logger.handlers:
        if handler not in handlers:
            logger.removeHandler(handler)
            with contextlib.suppress(Exception):
                handler.close()
    for handler in handlers:
        if handler not in logger.handlers:
            logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate
