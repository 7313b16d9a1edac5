"""Input checks shared by every adapter, so fakes and real adapters reject the same input."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from portside.ports.errors import ValidationError

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_PAYLOAD_BYTES",
    "check_job_id",
    "check_job_name",
    "check_queue_name",
    "check_stream_name",
    "check_text",
    "encode_payload",
    "json_payload",
    "spell_out_nul",
]

MAX_NAME_LENGTH = 200
MAX_PAYLOAD_BYTES = 1_000_000
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(?::[A-Za-z0-9][A-Za-z0-9_.\-]*)*$")
_MAX_DEPTH = 64
_SAFE_INT = 2**53 - 1
_MAX_FLOAT = sys.float_info.max
_SCALARS = frozenset({str, bool, type(None)})
_CONTROL = re.compile("[\r\n\t\0]")
_INTEGER = re.compile("[0-9]+")
_STR_ONLY = frozenset({str})


def check_text(value: object, field: str, what: str) -> str:
    """A non-empty, bounded, valid-UTF-8 string, or a ValidationError naming ``field``."""
    if not isinstance(value, str):
        raise ValidationError(
            f"{field} must be a string, got {type(value).__name__}",
            fix=f"pass the {what} as str",
            field=field,
        )
    if not value or not value.strip():
        raise ValidationError(f"{field} is empty", fix=f"pass a non-empty {what}", field=field)
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"{field} is {len(value)} characters long",
            fix=f"keep the {what} to at most {MAX_NAME_LENGTH} characters",
            field=field,
        )
    if "\0" in value:
        raise ValidationError(
            f"{field} contains a NUL character",
            fix=f"remove it: Postgres text (run history, events) cannot store NUL in a {what}",
            field=field,
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"{field} contains a lone surrogate, which is not valid UTF-8",
                fix=f"decode the {what} properly before passing it",
                field=field,
            ) from None
    return value


def check_queue_name(queue: object) -> str:
    """Validate a queue name such as ``ingest`` or the namespaced ``agents-run:orchestrator``."""
    name = check_text(queue, "queue", "queue name")
    if not _QUEUE_NAME.match(name):
        raise ValidationError(
            f"queue name {name!r} is invalid",
            fix="use letters, digits, '.', '_' or '-', with ':' only between namespace parts "
            "(for example 'agents-run:orchestrator')",
            field="queue",
        )
    return name


def check_job_name(name: object) -> str:
    """Validate a job name (the handler's stable name, e.g. ``ingest``)."""
    value = check_text(name, "name", "job name")
    if _CONTROL.search(value):
        raise ValidationError(
            f"job name {value!r} contains control characters",
            fix="use a single-line name without tabs or NUL",
            field="name",
        )
    return value


JOB_ID_PATTERN = r"^[^:\x00]*[^:\x00\s\x1c-\x1f0-9][^:\x00]*$"
"""What ``check_job_id`` accepts, as a regular expression (for schemas): no ``:`` and no
NUL, and one character at least that is neither a digit nor a space."""
TEXT_PATTERN = r"^[^\x00]*[^\x00\s\x1c-\x1f][^\x00]*$"
"""What ``check_text`` accepts apart from the length, as a regular expression (the four
separator controls U+001C-U+001F count as spaces for ``str.strip``, not for regex spaces)."""


def check_job_id(job_id: object, field: str = "options.job_id") -> str:
    """Validate a caller-chosen job id; BullMQ forbids ':' and pure integers in custom ids."""
    value = check_text(job_id, field, "job id")
    if ":" in value:
        raise ValidationError(
            f"job id {value!r} contains ':'",
            fix="BullMQ reserves ':' as its key separator; use '-' or '.' instead",
            field=field,
        )
    if _INTEGER.fullmatch(value):
        raise ValidationError(
            f"job id {value!r} is an integer",
            fix="BullMQ reserves integer ids for generated ids; add a prefix such as 'job-'",
            field=field,
        )
    return value


def check_stream_name(stream: object) -> str:
    """Validate an outbox stream name (for example a run id)."""
    return check_text(stream, "stream", "stream name")


_NUL_FIX = (
    "remove it, or send binary content as base64: Postgres (run history, dead letters, outbox "
    "events) cannot store NUL (U+0000) in JSON"
)


def spell_out_nul(text: str) -> str:
    """``text`` with each NUL written as the four characters ``\\x00``: how portside stores
    text from outside (error messages, other producers' data) that Postgres cannot hold."""
    return text.replace("\0", "\\x00")


def _check_string(value: str, path: str) -> None:
    if "\0" in value:
        raise ValidationError(f"{path} contains a NUL character", fix=_NUL_FIX, field=path)


def _check_number(value: int | float, path: str) -> None:
    if isinstance(value, int):
        if abs(value) > 2**53 - 1:
            shown = str(value) if value.bit_length() < 1000 else f"of {value.bit_length()} bits"
            raise ValidationError(
                f"{path} is the integer {shown}, outside JSON's safe range (±2**53-1)",
                fix="send it as a string",
                field=path,
            )
    elif not math.isfinite(value):
        raise ValidationError(
            f"{path} is {value!r}, which JSON cannot represent",
            fix="use null or a finite number",
            field=path,
        )


def _check_json(value: Any, path: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ValidationError(
            f"{path} is nested more than {_MAX_DEPTH} levels deep",
            fix="flatten the payload",
            field=path,
        )
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_string(value, path)
        return
    if isinstance(value, int | float):
        _check_number(value, path)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    f"{path} has the non-string key {key!r}", fix="use string keys", field=path
                )
            _check_string(key, f"{path} key {key!r}")
            _check_json(item, f"{path}.{key}", depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", depth + 1)
        return
    raise ValidationError(
        f"{path} is a {type(value).__name__}, which is not JSON",
        fix="convert it to str, number, bool, None, list or dict (pydantic models are accepted "
        "at the top level)",
        field=path,
    )


def _plain(value: Any, depth: int) -> bool:
    """Whether ``value`` is plain JSON within the limits, checked quickly.

    Exact built-in types only, and no error paths: ``False`` means "look closer" (it may still
    be valid, e.g. a str subclass or a non-dict Mapping), and ``_check_json`` then decides and
    names the bad field. ``True`` is only ever returned where ``_check_json`` would pass, NUL
    characters aside: ``encode_payload`` spots those in the encoded text.
    """
    kind = type(value)
    if kind is dict:
        if not _STR_ONLY.issuperset(map(type, value)):  # every key exactly a str
            return False
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return False
    if depth >= _MAX_DEPTH:
        return not value
    for item in items:
        kind = type(item)
        if kind is int:
            if not -_SAFE_INT <= item <= _SAFE_INT:
                return False
        elif kind is float:
            if not -_MAX_FLOAT <= item <= _MAX_FLOAT:  # NaN fails every comparison
                return False
        elif kind not in _SCALARS and not _plain(item, depth + 1):
            return False
    return True


def _as_dict(value: object) -> dict[Any, Any]:
    """The encoder's hook for the one non-JSON type ``_check_json`` admits: other Mappings."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


_ENCODER = json.JSONEncoder(
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    check_circular=False,  # _check_json refuses cycles as nesting deeper than _MAX_DEPTH
    default=_as_dict,
)


def encode_payload(data: object, field: str = "data") -> str:
    """``data`` as compact JSON text, or a ValidationError naming the bad field.

    Pydantic models are dumped in JSON mode. The encoded size is capped at
    ``MAX_PAYLOAD_BYTES``: large blobs belong in storage, with their key in the payload.
    """
    if type(data) is not dict:
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json", by_alias=True)
        if not isinstance(data, Mapping):
            raise ValidationError(
                f"{field} must be a JSON object (dict or pydantic model), "
                f"got {type(data).__name__}",
                fix="wrap the value in a dict",
                field=field,
            )
    if not _plain(data, 0):
        _check_json(data, field, 0)
    encoded = _ENCODER.encode(data)
    try:
        size = len(encoded.encode("utf-8"))
        surrogate = False
    except UnicodeEncodeError:
        size = len(encoded.encode("utf-8", errors="surrogatepass"))
        surrogate = True
    if size > MAX_PAYLOAD_BYTES:
        raise ValidationError(
            f"{field} is {size} bytes encoded, over the {MAX_PAYLOAD_BYTES}-byte limit",
            fix="store large content elsewhere and pass its key",
            field=field,
        )
    if surrogate:
        raise ValidationError(
            f"{field} contains a lone surrogate, which is not valid UTF-8",
            fix="decode the text properly before sending it",
            field=field,
        )
    if "\\u0000" in encoded:  # also matches an escaped backslash before "u0000": look closer
        _check_json(data, field, 0)
    return encoded


def json_payload(data: object, field: str = "data") -> dict[str, Any]:
    """``data`` as a fresh JSON object (dict), checked as ``encode_payload`` checks it."""
    result: dict[str, Any] = json.loads(encode_payload(data, field))
    return result
