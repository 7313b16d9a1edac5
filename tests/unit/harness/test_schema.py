"""Project migrations for the template database: the ``portside_migrations`` ini option (H1)."""

from __future__ import annotations

import pytest

from portside.ports import ConfigurationError
from portside.testing.schema import resolve, template_migrations


def test_h1_resolve_finds_module_functions() -> None:
    assert resolve("os.path:join") is __import__("os").path.join


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("myapp.db", "is not 'module:function'"),
        ("no_such_module_xyz:migrate", "cannot be loaded: No module named 'no_such_module_xyz'"),
        ("os:no_such_function", "cannot be loaded"),
        ("os:sep", "is not callable"),
    ],
)
def test_h1_bad_entries_name_the_option_and_the_fix(spec: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve(spec)
    message = str(caught.value)
    assert f"portside_migrations entry {spec!r}" in message
    assert problem in message
    assert "'package.module:function'" in message


def test_h1_no_entries_means_portside_migrations_only() -> None:
    assert template_migrations([]) is None
