"""portside.app's lazy exports stay correct however its submodules get imported."""

from __future__ import annotations

import importlib
import pkgutil

import portside.app


def test_exports_resolve_to_the_named_objects_even_after_every_submodule_is_imported() -> None:
    submodules = {info.name for info in pkgutil.iter_modules(portside.app.__path__)}
    for name in submodules:
        importlib.import_module(f"portside.app.{name}")

    clashes = set(portside.app.__all__) & submodules
    assert not clashes, f"exports named like a submodule get shadowed by it: {clashes}"
    for name in portside.app.__all__:
        value = getattr(portside.app, name)
        assert not isinstance(value, type(portside)), f"portside.app.{name} is a module"
