"""The OpenAPI document: FastAPI's, completed with what it cannot derive from the routes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from optiinfra_store.api.models import Problem

REF_TEMPLATE = "#/components/schemas/{model}"


def document(app: FastAPI) -> dict[str, Any]:
    """The routes' document, with the problem document's schema (the routes refer to it by
    `problems.responses`, which FastAPI does not register) and optional parameters documented as
    absent rather than null: FastAPI writes `X | None` as "X or null", but a query string or a
    header has no null, and a client following the document would send the text "null"."""
    openapi = get_openapi(title=app.title, version=app.version, routes=app.routes)
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template=REF_TEMPLATE, by_alias=True)
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for operations in openapi["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _without_null(parameter["schema"])
    return openapi


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    alternatives = [s for s in schema.get("anyOf", []) if s != {"type": "null"}]
    if "anyOf" not in schema or len(alternatives) == len(schema["anyOf"]):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if len(alternatives) == 1:
        return {**alternatives[0], **rest}
    return {**rest, "anyOf": alternatives}
