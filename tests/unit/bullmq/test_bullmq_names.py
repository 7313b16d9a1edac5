"""Queue name mapping onto BullMQ prefixes and keys (Q1, Q12)."""

from __future__ import annotations

import base64

import pytest

from portside.adapters.bullmq.names import check_prefix, map_queue
from portside.ports import ConfigurationError, ValidationError


def test_q12_namespace_joins_the_prefix_so_node_sees_the_same_keys() -> None:
    """Q12: ``agents-run:orchestrator`` is Node queue ``orchestrator`` under ``bull:agents-run``."""
    name = map_queue("agents-run:orchestrator", "bull")
    assert (name.prefix, name.name) == ("bull:agents-run", "orchestrator")
    assert name.key("wait") == "bull:agents-run:orchestrator:wait"
    assert name.job_key("42") == "bull:agents-run:orchestrator:42"
    assert name.base == "bull:agents-run:orchestrator:"
    assert ":" not in name.name


def test_q1_plain_and_deep_names() -> None:
    """Q1: a plain name keeps the prefix; deeper namespaces all go into it."""
    plain = map_queue("emails", "bull")
    assert (plain.prefix, plain.name, plain.key("meta")) == ("bull", "emails", "bull:emails:meta")
    deep = map_queue("a:b:c", "app:jobs")
    assert (deep.prefix, deep.name) == ("app:jobs:a:b", "c")
    assert deep.key("events") == "app:jobs:a:b:c:events"


def test_q1_keys_equal_the_naive_layout() -> None:
    """Q1: mapping changes nothing on the wire: keys equal ``<prefix>:<portside name>:<type>``."""
    for queue in ("x", "agents-run:orchestrator", "a.b:c_d:e-f"):
        assert map_queue(queue, "bull").key("wait") == f"bull:{queue}:wait"


def test_q12_dedupe_key_and_client_name_follow_bullmq() -> None:
    """Q12: dedupe keys are ``<base>de:<id>``; connection names use Node's base64 scheme."""
    name = map_queue("agents-run:orchestrator", "bull")
    assert name.dedupe_key("day-1") == "bull:agents-run:orchestrator:de:day-1"
    encoded = base64.b64encode(b"orchestrator").decode()
    assert name.client_name(":w:w1") == f"bull:agents-run:{encoded}:w:w1"


@pytest.mark.parametrize("queue", ["", "a::b", ":a", "a:", "no spaces", "a/b"])
def test_q1_invalid_queue_names_are_rejected(queue: str) -> None:
    """Q1: names that BullMQ could not address are refused, naming the field."""
    with pytest.raises(ValidationError) as info:
        map_queue(queue, "bull")
    assert info.value.field == "queue"


@pytest.mark.parametrize("prefix", ["", "with space", "trailing:", 7])
def test_invalid_prefix_is_a_configuration_error(prefix: object) -> None:
    """A prefix that would break BullMQ's key layout is refused."""
    with pytest.raises(ConfigurationError) as info:
        check_prefix(prefix)
    assert info.value.field == "prefix"
