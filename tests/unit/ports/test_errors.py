"""The error hierarchy: what each error says, and how callers can catch it."""

from __future__ import annotations

import pytest

from portside.ports import (
    BackendUnavailableError,
    ConfigurationError,
    InfraNotSetError,
    JobTimeoutError,
    PermanentError,
    PortsideError,
    TransientError,
    ValidationError,
)
from portside.ports.classification import default_classify, describe_error


def test_message_fix_and_field_make_one_sentence_pair() -> None:
    error = PortsideError("queue is empty", fix="pass a queue name", field="queue")
    assert str(error) == "queue is empty. pass a queue name"
    assert (error.message, error.fix, error.field) == (
        "queue is empty",
        "pass a queue name",
        "queue",
    )
    assert str(PortsideError("just this")) == "just this"


def test_hierarchy_lets_callers_catch_broadly() -> None:
    assert issubclass(ValidationError, ValueError)
    assert issubclass(ValidationError, PortsideError)
    assert issubclass(InfraNotSetError, ConfigurationError)
    assert issubclass(JobTimeoutError, TransientError)
    assert issubclass(BackendUnavailableError, TransientError)
    assert not issubclass(PermanentError, TransientError)


def test_failure_errors_have_defaults() -> None:
    assert str(TransientError()) == "transient failure"
    assert str(PermanentError()) == "permanent failure"
    assert PermanentError("revoked", fix="reconnect the integration").fix == (
        "reconnect the integration"
    )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (PermanentError("x"), "permanent"),
        (TransientError("x"), "transient"),
        (JobTimeoutError("x"), "transient"),
        (ValueError("x"), "transient"),
        (ValidationError("bad date", field="date"), "permanent"),
        (BackendUnavailableError("redis down"), "transient"),
    ],
)
def test_q4_default_classification(error: BaseException, kind: str) -> None:
    """Q4: permanent errors and payload validation are permanent; the rest is transient."""
    assert default_classify(error) == kind


def test_q4_pydantic_validation_in_a_handler_is_permanent() -> None:
    import pydantic

    class Payload(pydantic.BaseModel):
        n: int

    with pytest.raises(pydantic.ValidationError) as info:
        Payload.model_validate({"n": "x"})
    assert default_classify(info.value) == "permanent"


def test_describe_error_is_class_and_message() -> None:
    assert describe_error(TransientError("503 from source")) == "TransientError: 503 from source"
    assert describe_error(KeyError()) == "KeyError"
