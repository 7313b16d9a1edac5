"""Map portside queue names (``agents-run:orchestrator``) onto BullMQ prefixes and key names."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from portside.ports import ConfigurationError
from portside.ports.validation import check_queue_name

__all__ = ["QueueName", "check_prefix", "map_queue", "portside_queue", "queue_of_key"]

_KEY_KINDS = (
    "wait",
    "active",
    "prioritized",
    "events",
    "stalled",
    "limiter",
    "delayed",
    "paused",
    "meta",
    "pc",
    "marker",
    "id",
    "completed",
    "failed",
    "repeat",
    "stalled-check",
    "waiting-children",
)


def check_prefix(prefix: object) -> str:
    """Validate the adapter's key prefix (BullMQ's ``prefix``, ``bull`` by default)."""
    if not isinstance(prefix, str) or not prefix:
        raise ConfigurationError(
            f"prefix must be a non-empty string, got {prefix!r}",
            fix="pass prefix='bull' (BullMQ's default) or your own namespace such as 'app'",
            field="prefix",
        )
    if any(ch.isspace() for ch in prefix) or prefix.endswith(":"):
        raise ConfigurationError(
            f"prefix {prefix!r} contains whitespace or ends with ':'",
            fix="use letters, digits, '-', '_' or inner ':' separators, e.g. 'bull' or 'app:jobs'",
            field="prefix",
        )
    return prefix


@dataclass(frozen=True, slots=True)
class QueueName:
    """Where a portside queue lives in BullMQ terms.

    Node BullMQ 5 rejects ``:`` in queue names, so everything up to the last ``:`` of the
    portside name joins the key prefix: portside ``agents-run:orchestrator`` under adapter
    prefix ``bull`` is BullMQ queue ``orchestrator`` with prefix ``bull:agents-run``. Its keys
    are ``bull:agents-run:orchestrator:wait`` and so on, exactly what a Node worker created with
    ``new Worker('orchestrator', fn, {prefix: 'bull:agents-run'})`` uses.

    Attributes:
        portside: The name callers use.
        prefix: BullMQ's ``prefix`` option for this queue.
        name: BullMQ's queue name (no ``:``).
        base: The common key stem, ``<prefix>:<name>:``; job hashes are ``base + job id``.
    """

    portside: str
    prefix: str
    name: str
    base: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", f"{self.prefix}:{self.name}:")

    @property
    def root(self) -> str:
        """The adapter's key prefix the queue lives under (``bull``); empty for a queue
        addressed by its qualified BullMQ name (see ``queue_of_key``)."""
        end = len(self.base) - len(self.portside) - 2
        return self.base[:end] if end > 0 and self.base[end:] == f":{self.portside}:" else ""

    @property
    def qualified(self) -> str:
        """BullMQ's qualified queue name ``<prefix>:<name>`` (a parent's ``queueKey``)."""
        return self.base[:-1]

    def key(self, kind: str) -> str:
        """The key of one BullMQ structure, e.g. ``key('wait')``."""
        return self.base + kind

    def job_key(self, job_id: str) -> str:
        """The hash holding one job."""
        return self.base + job_id

    def dedupe_key(self, dedupe_id: str) -> str:
        """BullMQ's deduplication key for ``dedupe_id``."""
        return f"{self.base}de:{dedupe_id}"

    def keys(self) -> dict[str, str]:
        """Every named key of the queue (BullMQ's ``QueueKeys``)."""
        return {kind: self.key(kind) for kind in _KEY_KINDS}

    def client_name(self, suffix: str = "") -> str:
        """Connection name in Node BullMQ's scheme, so ``queue.getWorkers()`` counts us."""
        encoded = base64.b64encode(self.name.encode()).decode()
        return f"{self.prefix}:{encoded}{suffix}"


def map_queue(queue: object, prefix: str) -> QueueName:
    """Split a validated portside queue name into BullMQ prefix and queue name."""
    name = check_queue_name(queue)
    namespace, sep, leaf = name.rpartition(":")
    bull_prefix = f"{prefix}:{namespace}" if sep else prefix
    return QueueName(portside=name, prefix=bull_prefix, name=leaf)


def portside_queue(qualified: str, prefix: str) -> str:
    """The portside name of BullMQ queue ``<prefix>:<name>`` (``qualified``, what BullMQ
    stores as a parent's ``queueKey``): the adapter's prefix taken off; a queue under
    another prefix keeps its qualified name."""
    head = prefix + ":"
    return qualified[len(head) :] if prefix and qualified.startswith(head) else qualified


def queue_of_key(job_key: str, prefix: str) -> tuple[QueueName, str] | None:
    """The queue and id of a job key ``<prefix>:<name>:<id>`` (a flow child's key), or None
    when it has no queue part. A queue outside the adapter's prefix gets its qualified
    name as portside name."""
    qualified, _, job_id = job_key.rpartition(":")
    bull_prefix, _, name = qualified.rpartition(":")
    if not (job_id and bull_prefix and name):
        return None
    local = portside_queue(qualified, prefix)
    if local != qualified:
        try:
            return map_queue(local, prefix), job_id
        except ValueError:  # not a portside queue name: addressed by its qualified name
            pass
    return QueueName(portside=qualified, prefix=bull_prefix, name=name), job_id
