"""The fakes' own JSON handling: copies of stored values and the values handlers hand back.

The checks every adapter shares (options, bulk entries, ids, durations) are in
``portside.ports.inputs``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from portside.ports import ValidationError

__all__ = ["copy_json", "json_value"]


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists and scalars only)."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def json_value(value: object, field: str) -> Any:
    """``value`` as stored JSON (a pydantic model is dumped), or a ValidationError."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{field} is not JSON: {exc}",
            fix="return or report only str, number, bool, None, list or dict values",
            field=field,
        ) from None
