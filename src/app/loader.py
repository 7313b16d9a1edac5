"""Load an application's registry from a ``module:attribute`` string."""

from __future__ import annotations

import importlib

from portside.app.registry import Registry
from portside.ports import ConfigurationError

__all__ = ["load_registry"]


def load_registry(spec: str) -> Registry:
    """Import ``module:attribute``; the attribute is a Registry or a function returning one.

    Raises:
        ConfigurationError: a malformed spec, a missing module or attribute, or a wrong type.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"app {spec!r} is not in the form module:attribute",
            fix="pass e.g. --app portside.app.examples:registry",
            field="app",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"app module {module_name!r} cannot be imported ({exc})",
            fix="check the module path and that it is importable (PYTHONPATH)",
            field="app",
        ) from exc
    target = getattr(module, attr, None)
    if target is None:
        raise ConfigurationError(
            f"module {module_name!r} has no attribute {attr!r}",
            fix="point --app at the Registry object (module:registry)",
            field="app",
        )
    if callable(target) and not isinstance(target, Registry):
        target = target()
    if not isinstance(target, Registry):
        raise ConfigurationError(
            f"{spec} is a {type(target).__name__}, not a portside Registry",
            fix="point --app at a portside.app.Registry (or a function returning one)",
            field="app",
        )
    return target
