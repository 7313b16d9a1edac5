"""The OpenAPI document: one enqueue operation per registered job, and problem bodies.

FastAPI cannot know the body of ``POST /jobs/{name}``: it depends on ``name``. The document
lists one ``POST /jobs/<job>`` per registered job with that job's payload model instead, so
it describes exactly what the endpoint accepts (and generated clients get one method per job).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from portside.app.http.problems import PROBLEM_MEDIA_TYPE
from portside.app.registry import Registry

__all__ = ["install_openapi"]

_REF = "#/components/schemas/{model}"
ENQUEUE_PATH = "/jobs/{name}"


def _payload_schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF, mode="validation")
    for name, nested in schema.pop("$defs", {}).items():
        components.setdefault(name, nested)
    components.setdefault(model.__name__, schema)
    return schema


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)


def _enqueue_operations(document: dict[str, Any], registry: Registry) -> None:
    """Replace ``POST /jobs/{name}`` with one ``POST /jobs/<job>`` per registered job, each
    with that job's payload model: the body a job accepts depends on its name."""
    paths = document.get("paths", {})
    template = paths.get(ENQUEUE_PATH, {}).pop("post", None)
    if not isinstance(template, dict):
        return
    if not paths[ENQUEUE_PATH]:
        del paths[ENQUEUE_PATH]
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for definition in registry:
        operation = copy.deepcopy(template)
        operation["parameters"] = [
            parameter
            for parameter in operation.get("parameters", [])
            if parameter["name"] != "name"
        ]
        schema = _payload_schema(definition.payload, components)
        operation["operationId"] = f"enqueue{_camel(definition.name)}"
        operation["summary"] = f"Enqueue a {definition.name} job"
        if definition.description:
            operation["description"] = f"{definition.description}\n\n{template['description']}"
        operation["requestBody"] = {
            # An empty body is the empty object: required only when that is not a payload.
            "required": bool(schema.get("required")),
            "content": {
                "application/json": {
                    "schema": {"$ref": _REF.format(model=definition.payload.__name__)}
                }
            },
        }
        paths.setdefault(f"/jobs/{definition.name}", {})["post"] = operation


_PROBLEM = {"$ref": _REF.format(model="Problem")}


def _own_body(response: dict[str, Any]) -> bool:
    """Whether an error answer is documented with a model of its own (``/readyz``'s 503 is
    the readiness report, not a problem)."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    reference = str(schema.get("$ref", ""))
    return bool(reference) and not reference.endswith(("/Problem", "/HTTPValidationError"))


def _problem_bodies(document: dict[str, Any]) -> None:
    """Every 4xx/5xx answer is a ``Problem`` in ``application/problem+json``, including the
    422 FastAPI documents on its own, whose default body the API never sends; an answer
    documented with a model of its own keeps it."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if str(status)[:1] in ("4", "5") and not _own_body(response):
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM}}
                    if str(status) == "422":
                        response["description"] = "Invalid input; `fields` lists each problem."
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _queue_names(document: dict[str, Any], queues: Sequence[str]) -> None:
    """A ``{queue}`` path parameter takes the names of the app's queues only."""
    for path, path_item in document.get("paths", {}).items():
        if "{queue}" not in path:
            continue
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "queue" and parameter["in"] == "path":
                    parameter["schema"] = {"type": "string", "enum": sorted(queues)}


def _without_scheme(document: dict[str, Any], scheme: str) -> None:
    """Drop a security scheme the server does not use (a token it has not been given)."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            kept = [item for item in operation.get("security", []) if scheme not in item]
            if kept:
                operation["security"] = kept
            else:
                operation.pop("security", None)
    document.get("components", {}).get("securitySchemes", {}).pop(scheme, None)


def install_openapi(
    app: FastAPI,
    registry: Registry,
    *,
    queues: Sequence[str] = (),
    unused_schemes: Sequence[str] = (),
) -> None:
    """Make ``app.openapi()`` describe each registered job's ``POST /jobs/<job>`` with its
    payload model, and every error as a problem document."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        _enqueue_operations(document, registry)
        _queue_names(document, queues)
        for scheme in unused_schemes:
            _without_scheme(document, scheme)
        _problem_bodies(document)
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]  # FastAPI's documented customisation
