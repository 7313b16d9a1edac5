"""Value types of flows: a tree of parent and child jobs, added at once (BullMQ FlowProducer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, field_validator

from portside.ports.model import PortModel
from portside.ports.queue_types import JobInfo, JobOptions, JobRef

__all__ = ["ChildFailure", "FlowJob", "FlowRef", "FlowTree"]

ChildFailure = Literal["wait", "fail_parent", "ignore", "remove"]
"""What a child's failure (for good) does to its parent.

- ``wait``: the parent keeps waiting; it runs only once that child is retried and completes
  (BullMQ's default).
- ``fail_parent``: the parent fails at once, without running (BullMQ ``failParentOnFailure``).
- ``ignore``: the parent runs without that child's result; the child stays listed in the
  parent's flow, failed (BullMQ ``ignoreDependencyOnFailure``).
- ``remove``: the parent runs without that child and forgets it (BullMQ
  ``removeDependencyOnFailure``).
"""


class FlowJob(PortModel):
    """One job of a flow and the children it waits for; children may be on any queue.

    A job with children waits in ``waiting-children`` until every child completed, then
    runs like any job (its ``options.delay`` and ``options.priority`` apply from then on)
    and reads its children's results with ``Job.children_values()``. ``data`` is checked as
    a payload when the flow is added; ``on_failure`` applies to a child (see
    :data:`ChildFailure`). Options have the enqueue defaults; ``dedupe_key`` is refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    queue: str
    name: str
    data: SkipValidation[Mapping[str, Any] | BaseModel] = Field(default_factory=dict)
    options: JobOptions | None = None
    children: tuple[FlowJob, ...] = ()
    on_failure: ChildFailure = "wait"

    @field_validator("data", mode="before")
    @classmethod
    def _data(cls, value: Any) -> Any:
        # The shape only; the payload rules run when the flow is added (like NewJob).
        if isinstance(value, Mapping | BaseModel):
            return value
        raise ValueError(
            f"must be a dict or a pydantic model (a JSON object), got {type(value).__name__}"
        )


class FlowRef(PortModel):
    """What ``add_flow`` returns: the ref of every job of the flow, in the flow's shape."""

    model_config = ConfigDict(frozen=True)

    job: JobRef
    children: tuple[FlowRef, ...] = ()


class FlowTree(PortModel):
    """A flow read back by ``get_flow``: a job and its children, each a snapshot.

    Children are those the job still depends on, those that completed, and those whose
    failure failed it or was ignored; a child removed on failure (``remove``) or deleted is
    not listed. They come sorted by queue, then job id.
    """

    model_config = ConfigDict(frozen=True)

    job: JobInfo
    children: tuple[FlowTree, ...] = ()
