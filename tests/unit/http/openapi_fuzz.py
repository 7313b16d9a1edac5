"""A small OpenAPI fuzzer on Hypothesis: requests built from the schema, valid or broken on
purpose, and checks that answers are documented, 4xx are `Problem` bodies, and none is a 5xx.

Shared by the unit fuzz (ASGI app on the fakes) and the integration fuzz (real server and
servers); it imports no adapter.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

__all__ = ["FuzzRequest", "check_response", "operations", "requests"]

JSON = dict[str, Any]
_METHODS = ("get", "post", "put", "patch", "delete")
_HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@dataclass
class FuzzRequest:
    """One request to send."""

    method: str
    template: str
    path: str
    operation: JSON = field(repr=False)
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None

    def raw_headers(self) -> dict[bytes, bytes]:
        """The headers as latin-1 bytes: a value may hold any octet a client can send."""
        return {
            name.encode("latin-1"): value.encode("latin-1") for name, value in self.headers.items()
        }

    def __str__(self) -> str:
        body = None if self.content is None else self.content[:200]
        return (
            f"{self.method.upper()} {self.path} params={self.params} "
            f"headers={self.headers} body={body!r}"
        )


def operations(document: JSON) -> list[tuple[str, str, JSON]]:
    """(method, path template, operation) of every operation in the document."""
    found = []
    for path, item in sorted(document["paths"].items()):
        for method in _METHODS:
            if method in item:
                found.append((method, path, item[method]))
    return found


class _Schemas:
    def __init__(self, document: JSON) -> None:
        self.components = document.get("components", {}).get("schemas", {})

    def resolve(self, schema: JSON) -> JSON:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def valid(self, schema: JSON, depth: int = 0) -> st.SearchStrategy[Any]:  # noqa: C901
        schema = self.resolve(schema)
        if depth > 4:
            return st.none()
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        if "const" in schema:
            return st.just(schema["const"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return st.one_of([self.valid(item, depth + 1) for item in schema[key]])
        kind = schema.get("type")
        if kind == "string":
            return self._string(schema)
        if kind == "integer":
            low, high = schema.get("minimum"), schema.get("maximum")
            return st.integers(min_value=low, max_value=high)
        if kind == "number":
            return st.floats(
                min_value=schema.get("minimum"),
                max_value=schema.get("maximum"),
                allow_nan=False,
                allow_infinity=False,
            )
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        if kind == "array":
            return st.lists(self.valid(schema.get("items", {}), depth + 1), max_size=3)
        if kind == "object" or "properties" in schema:
            return self._object(schema, depth)
        return json_values

    def _string(self, schema: JSON) -> st.SearchStrategy[str]:
        fmt = schema.get("format")
        if fmt == "date":
            return st.dates().map(lambda value: value.isoformat())
        if fmt == "date-time":
            return st.datetimes().map(lambda value: value.isoformat() + "Z")
        if "pattern" in schema:
            pattern: str = schema["pattern"]
            return st.from_regex(pattern, fullmatch=True)
        return st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40)
        )

    def _object(self, schema: JSON, depth: int) -> st.SearchStrategy[JSON]:
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fixed = {
            name: self.valid(sub, depth + 1) for name, sub in properties.items() if name in required
        }
        optional = {
            name: self.valid(sub, depth + 1)
            for name, sub in properties.items()
            if name not in required
        }
        return st.fixed_dictionaries(fixed, optional=optional)

    def broken(self, schema: JSON) -> st.SearchStrategy[Any]:
        """A valid value with one thing wrong: a field dropped, retyped or added."""

        def mutate(value: Any, data: st.DataObject) -> Any:
            if not isinstance(value, dict) or not value:
                return data.draw(json_values)
            target = dict(value)
            key = data.draw(st.sampled_from(sorted(target)))
            action = data.draw(st.sampled_from(("drop", "retype", "extra")))
            if action == "drop":
                del target[key]
            elif action == "retype":
                target[key] = data.draw(json_values)
            else:
                target[data.draw(st.text(min_size=1, max_size=8))] = data.draw(json_values)
            return target

        return st.tuples(self.valid(schema), st.data()).map(lambda pair: mutate(*pair))


def _raw_bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=64),
        st.sampled_from([b"", b"{", b"[]", b"null", b'{"a": NaN}', b"[" * 3000, b'"\\ud800"']),
        json_values.map(lambda value: json.dumps(value).encode()),
    )


def _parameter_value(schemas: _Schemas, parameter: JSON) -> st.SearchStrategy[str]:
    """Mostly a value the schema allows, sometimes anything."""
    schema = parameter.get("schema", {})
    valid = schemas.valid(schema).map(
        lambda value: value if isinstance(value, str) else json.dumps(value)
    )
    wild = st.text(max_size=30) | st.sampled_from(["", "0", "-1", "1e309", "%00", "../x"])
    return st.integers(0, 3).flatmap(lambda roll: wild if roll == 0 else valid)


@st.composite
def _request(draw: st.DrawFn, document: JSON, schemas: _Schemas, token: str | None) -> FuzzRequest:
    method, template, operation = draw(st.sampled_from(operations(document)))
    path = template
    params: dict[str, str] = {}
    headers: dict[str, str] = {}
    for parameter in operation.get("parameters", []):
        where, name = parameter["in"], parameter["name"]
        if where == "path":
            value = draw(_parameter_value(schemas, parameter))
            path = path.replace("{" + name + "}", quote(value, safe="") or "x")
        elif draw(st.booleans()):
            value = draw(_parameter_value(schemas, parameter))
            if where == "query":
                params[name] = value
            elif where == "header":
                sendable = all(0x20 <= ord(c) <= 0xFF and c != "\x7f" for c in value)
                # HTTP/1.1 clients refuse header values with surrounding whitespace.
                headers[name] = (value if sendable else draw(_HEADER_TEXT)).strip(" \t")
    if operation.get("security") or path.startswith("/admin"):
        choices = [None, "Bearer nope", f"Basic {token}"] + (
            [f"Bearer {token}"] * 3 if token else []
        )
        chosen = draw(st.sampled_from(choices))
        if chosen is not None:
            headers["Authorization"] = chosen
    content = None
    body = operation.get("requestBody")
    if body is not None:
        schema = body["content"]["application/json"]["schema"]
        roll = draw(st.integers(0, 3))
        body_text = (
            schemas.valid(schema)
            if roll < 2
            else schemas.broken(schema)
            if roll == 2
            else _raw_bodies().map(lambda raw: raw.decode("latin-1"))
        )
        text = draw(body_text)
        content = text.encode("latin-1") if roll == 3 else json.dumps(text).encode()
        headers.setdefault(
            "Content-Type", draw(st.sampled_from(["application/json", "text/plain"]))
        )
    if draw(st.integers(0, 9)) == 0:
        params[draw(st.text(string.ascii_letters, min_size=1, max_size=6))] = draw(
            st.text(max_size=8)
        )
    return FuzzRequest(method, template, path, operation, params, headers, content)


def requests(document: JSON, token: str | None = None) -> st.SearchStrategy[FuzzRequest]:
    """Requests for every operation of ``document``; ``token`` is the admin bearer token."""
    return _request(document, _Schemas(document), token)


def _conforms(schemas: _Schemas, schema: JSON, value: Any, where: str) -> list[str]:
    schema = schemas.resolve(schema)
    if "anyOf" in schema:
        options = [_conforms(schemas, option, value, where) for option in schema["anyOf"]]
        return [] if any(not problems for problems in options) else options[0]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    kind = schema.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind in checks and not checks[kind](value):
        return [f"{where}: {value!r} is not {kind}"]
    problems: list[str] = []
    if kind == "array":
        for index, item in enumerate(value):
            problems += _conforms(schemas, schema.get("items", {}), item, f"{where}[{index}]")
    if isinstance(value, dict) and "properties" in schema:
        for name in schema.get("required", ()):
            if name not in value:
                problems.append(f"{where}: missing {name!r}")
        for name, item in value.items():
            if name in schema["properties"]:
                problems += _conforms(schemas, schema["properties"][name], item, f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where}: undocumented {name!r}")
    return problems


def check_response(
    document: JSON, request: FuzzRequest, status: int, content_type: str, body: bytes
) -> None:
    """Fail unless the answer is a documented status, never 5xx, and its body matches."""
    assert status < 500, f"{status} for {request}: {body[:500]!r}"
    documented = request.operation["responses"]
    assert str(status) in documented, f"undocumented {status} for {request}: {body[:300]!r}"
    if status >= 400:
        assert content_type.startswith("application/problem+json"), content_type
        problem = json.loads(body)
        assert set(problem) == {"type", "title", "status", "error", "detail", "fields"}, problem
        assert problem["status"] == status, problem
        assert problem["error"], problem
        assert problem["detail"], problem
        return
    if not content_type.startswith("application/json"):
        return
    schema = documented[str(status)]["content"]["application/json"]["schema"]
    problems = _conforms(_Schemas(document), schema, json.loads(body), "body")
    assert not problems, f"{request} answered a body off its schema: {problems}"
