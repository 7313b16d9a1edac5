"""JSON values of the queue fake: copies of stored values, and values handlers hand back."""

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
