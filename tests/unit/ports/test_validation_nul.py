"""A NUL character can never reach Postgres text columns (run history, events)."""

from __future__ import annotations

import pytest

from portside.ports import JobOptions, ValidationError
from portside.ports.validation import check_job_id, check_stream_name


def test_a3_a_job_id_with_nul_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ValidationError, match="contains a NUL character") as info:
        check_job_id("nul-\x00-id")
    assert info.value.field == "options.job_id"
    with pytest.raises(ValidationError, match="NUL"):
        JobOptions(job_id="a\x00b")


def test_o1_a_stream_name_with_nul_is_refused() -> None:
    with pytest.raises(ValidationError, match="stream contains a NUL character"):
        check_stream_name("run-\x00")
