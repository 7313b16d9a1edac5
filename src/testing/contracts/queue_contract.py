"""The queue contract suite: every QueuePort behaviour (Q1-Q9, Q11, OPS1) in one test class."""

from __future__ import annotations

from portside.testing.contracts.queue_console import ConsoleContract
from portside.testing.contracts.queue_control import ControlContract
from portside.testing.contracts.queue_enqueue import EnqueueContract
from portside.testing.contracts.queue_flow import FlowContract
from portside.testing.contracts.queue_flow_trees import FlowTreeContract
from portside.testing.contracts.queue_manage import ManageContract
from portside.testing.contracts.queue_results import ResultContract
from portside.testing.contracts.queue_retries import RetryContract

__all__ = ["QueueContract"]


class QueueContract(
    EnqueueContract,
    RetryContract,
    FlowContract,
    ControlContract,
    FlowTreeContract,
    ManageContract,
    ResultContract,
    ConsoleContract,
):
    """Subclass it as ``TestXxx`` in a module that defines a ``queue_driver`` fixture.

    The fixture yields a :class:`~portside.testing.contracts.drivers.QueueDriver` around a
    fresh, isolated adapter and closes it afterwards (see ``docs/contracts.md``).
    """
