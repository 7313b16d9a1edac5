"""The shared argument rules of flows, job listing, logs and cleaning (Q2, Q7, Q9)."""

from __future__ import annotations

from typing import Any

import pytest

from portside.ports import FlowJob, JobOptions, ValidationError
from portside.ports.inputs import (
    MAX_LOG_LINE,
    check_clean_state,
    check_count,
    check_delay,
    check_flow,
    check_log_line,
    check_states,
)


def test_q7_a_flow_is_checked_depth_first_with_each_parent_before_its_children() -> None:
    """Q7: ``check_flow`` lists the jobs depth first; each knows its parent's index."""
    flow = FlowJob(
        queue="q",
        name="root",
        children=(
            FlowJob(queue="q", name="a", children=(FlowJob(queue="r", name="a1"),)),
            FlowJob(queue="r", name="b", data={"x": 1}, on_failure="ignore"),
        ),
    )
    nodes = check_flow(flow)
    assert [(n.name, n.parent) for n in nodes] == [("root", None), ("a", 0), ("a1", 1), ("b", 0)]
    assert nodes[3].payload == '{"x":1}'
    assert nodes[3].on_failure == "ignore"
    assert nodes[0].options.attempts == JobOptions().attempts


def test_q7_a_flow_may_be_given_as_a_dict() -> None:
    """Q7: a dict of ``FlowJob`` fields, children included, is a flow too."""
    nodes = check_flow({"queue": "q", "name": "p", "children": [{"queue": "q", "name": "c"}]})
    assert [n.name for n in nodes] == ["p", "c"]


@pytest.mark.parametrize(
    ("flow", "field"),
    [
        ("not a flow", "flow"),
        ({"queue": "q"}, "flow.name"),
        (
            {"queue": "q", "name": "p", "children": [{"queue": "q", "name": "\n"}]},
            "flow.children[0].name",
        ),
        ({"queue": "q", "name": "p", "data": []}, "flow.data"),
        ({"queue": "q", "name": "p", "extra": 1}, "flow.extra"),
        ({"queue": "q", "name": "p", "options": {"attempts": 0}}, "flow.options.attempts"),
    ],
)
def test_q2_a_bad_flow_names_the_place_of_the_bad_field(flow: Any, field: str) -> None:
    """Q2: every error names its place in the flow."""
    with pytest.raises(ValidationError) as info:
        check_flow(flow)
    assert info.value.field == field


def test_q7_job_ids_may_repeat_across_queues_but_not_within_one() -> None:
    """Q7: the same id on two queues is two jobs; twice on one queue is refused."""
    same = JobOptions(job_id="x")
    nodes = check_flow(
        FlowJob(
            queue="q",
            name="p",
            options=same,
            children=(FlowJob(queue="r", name="c", options=same),),
        )
    )
    assert [(n.queue, n.options.job_id) for n in nodes] == [("q", "x"), ("r", "x")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("waiting", ("waiting",)),
        (["failed", "completed", "failed"], ("failed", "completed")),
        (("waiting-children",), ("waiting-children",)),
    ],
)
def test_q9_states_are_one_or_a_list_without_duplicates(value: Any, expected: tuple[str]) -> None:
    """Q9: ``list_jobs`` takes one state or a list, in the order given."""
    assert check_states(value) == expected


@pytest.mark.parametrize("value", ["unknown", "wait", [], ["waiting", 3], {"waiting": 1}, None])
def test_q9_bad_states_name_states(value: Any) -> None:
    """Q9: anything else names ``states``."""
    with pytest.raises(ValidationError) as info:
        check_states(value)
    assert info.value.field == "states"


def test_q9_counts_are_ints_within_their_bounds() -> None:
    """Q9: page offsets, sizes and depths are ints within bounds, naming the argument."""
    assert check_count(0, "offset") == 0
    assert check_count(1000, "limit", minimum=1, maximum=1000) == 1000
    for bad, field in ((-1, "offset"), (True, "offset"), (2.0, "offset"), (1001, "limit")):
        with pytest.raises(ValidationError) as info:
            check_count(bad, field, maximum=1000)
        assert info.value.field == field


def test_q7_log_lines_are_text_of_bounded_length() -> None:
    """Q7: a log line is a str of at most ``MAX_LOG_LINE`` characters, valid UTF-8."""
    assert check_log_line("é ok") == "é ok"
    for bad in (b"bytes", "x" * (MAX_LOG_LINE + 1), "\ud800"):
        with pytest.raises(ValidationError) as info:
            check_log_line(bad)
        assert info.value.field == "line"


def test_q9_clean_takes_a_finished_state_and_change_delay_a_positive_delay() -> None:
    """Q9: ``clean`` removes completed or failed jobs only; a new delay is above 0 s."""
    assert check_clean_state("failed") == "failed"
    with pytest.raises(ValidationError, match="purge"):
        check_clean_state("waiting")
    assert check_delay(1) == 1.0
    for bad in (0, -1, float("inf"), 2.0**40):
        with pytest.raises(ValidationError) as info:
            check_delay(bad)
        assert info.value.field == "delay"
