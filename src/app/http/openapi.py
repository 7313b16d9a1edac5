"""The OpenAPI document, with the registered jobs' payload models on ``POST /jobs/{name}``.

FastAPI cannot know the body of ``POST /jobs/{name}``: it depends on ``name``. This fills it
in from the registry (one schema per payload model, ``anyOf``) and lists the job names, so
the document describes exactly what the endpoint accepts.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from portside.app.http.problems import PROBLEM_MEDIA_TYPE
from portside.app.registry import Registry

__all__ = ["install_openapi"]

_REF = "#/components/schemas/{model}"


def _payload_schemas(registry: Registry, components: dict[str, Any]) -> list[dict[str, Any]]:
    refs: list[dict[str, Any]] = []
    seen: set[type[BaseModel]] = set()
    for definition in registry:
        model = definition.payload
        if model in seen:
            continue
        seen.add(model)
        schema = model.model_json_schema(ref_template=_REF, mode="validation")
        for name, nested in schema.pop("$defs", {}).items():
            components.setdefault(name, nested)
        components.setdefault(model.__name__, schema)
        refs.append({"$ref": _REF.format(model=model.__name__)})
    return refs


def _describe_jobs(registry: Registry) -> str:
    lines = ["The job's payload, a JSON object. Registered jobs and their payload models:", ""]
    for definition in registry:
        about = f" — {definition.description}" if definition.description else ""
        lines.append(f"- `{definition.name}`: `{definition.payload.__name__}`{about}")
    return "\n".join(lines)


def _enqueue_operation(document: dict[str, Any]) -> dict[str, Any] | None:
    operation = document.get("paths", {}).get("/jobs/{name}", {}).get("post")
    return operation if isinstance(operation, dict) else None


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


def install_openapi(app: FastAPI, registry: Registry) -> None:
    """Make ``app.openapi()`` describe ``registry``'s payloads on ``POST /jobs/{name}``."""

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
        operation = _enqueue_operation(document)
        if operation is not None and len(registry):
            components = document.setdefault("components", {}).setdefault("schemas", {})
            refs = _payload_schemas(registry, components)
            operation["requestBody"] = {
                "required": False,  # an empty body is the empty object
                "description": _describe_jobs(registry),
                "content": {"application/json": {"schema": {"anyOf": refs}}},
            }
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "name" and parameter.get("in") == "path":
                    parameter["schema"] = {**parameter["schema"], "enum": registry.names()}
        _problem_bodies(document)
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]  # FastAPI's documented customisation
