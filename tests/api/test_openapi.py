"""The OpenAPI document says what the service does: its errors as problem+json, the statuses each
route answers, parameters as the service reads them. CI runs Schemathesis against a real service
with this document; these keep its main promises in the normal suite."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from optiinfra_store.api.models import Problem
from tests.api.conftest import ACME, bearer, declared

PROBLEM = "application/problem+json"
PROBLEM_TYPE = {"content-type": PROBLEM}


@pytest.fixture
async def document(service) -> dict:
    response = await service.client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


async def test_openapi__errors_are_problem_documents_with_their_schema(document):
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and name != "GET /readyz":  # readyz: its Health, 503 or not
                assert list(response["content"]) == [PROBLEM], (name, status)
                assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}


async def test_openapi__every_route_behind_a_token_documents_401_403_and_422_for_its_parameters(document):
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    guarded = [(name, operation) for name, operation in operations(document) if operation.get("security")]
    assert len(guarded) == 8
    for name, operation in guarded:
        for status in ("401", "403", "503"):
            assert status in operation["responses"], (name, status)
        for status in ("401", "403"):
            assert operation["responses"][status]["headers"]["WWW-Authenticate"]["required"], name
        if operation.get("parameters"):
            assert PROBLEM in operation["responses"]["422"]["content"], name


async def test_openapi__the_statuses_of_each_route(document):
    responses = {name: set(operation["responses"]) for name, operation in operations(document)}
    assert {"400", "422"} <= responses["GET /api/workflows/history"]
    assert {"400", "422"} <= responses["GET /api/workflows/{workflow_type}/history"]
    assert "404" in responses["GET /api/workflows/{execution_id}/details"]
    assert {"404", "422", "429"} <= responses["GET /api/workflows/events"]
    for analytics in ("GET /api/workflows/statistics", "GET /api/workflows/performance-metrics"):
        assert {"304", "429"} <= responses[analytics]
        headers = dict(operations(document))[analytics]["responses"]
        assert "ETag" in headers["200"]["headers"] and "ETag" in headers["304"]["headers"]
    events = dict(operations(document))["GET /api/workflows/events"]["responses"]["200"]["content"]
    assert list(events) == ["text/event-stream"]


async def test_openapi__parameters_are_never_null_and_say_their_form(document):
    parameters = {}
    for name, operation in operations(document):
        for parameter in operation.get("parameters", []):
            assert {"type": "null"} not in parameter["schema"].get("anyOf", []), (name, parameter["name"])
            parameters[parameter["name"]] = parameter["schema"]
    assert parameters["last-event-id"]["pattern"].startswith("^[0-9]{1,19}")
    assert parameters["cursor"] == {**parameters["cursor"], "type": "string", "maxLength": 200}
    assert parameters["since"]["format"] == parameters["until"]["format"] == "date-time"


async def test_openapi__a_problem_the_service_answers_fits_the_documented_schema(service):
    invalid = await service.client.get("/api/workflows/history", params={"limit": 0}, headers=bearer(ACME))
    problem = Problem.model_validate(invalid.json())
    assert invalid.status_code == problem.status == 422 and [e.parameter for e in problem.errors] == ["limit"]
    unauthenticated = await service.client.get("/api/workflows/history")
    assert Problem.model_validate(unauthenticated.json()).status == 401


async def test_openapi__an_answer_that_drifts_from_its_declared_model_is_caught(service):
    """Every client of the route tests holds each answer to its declared model (conftest.declared):
    here, that the check sees a member missing, one of the wrong type and one not declared."""
    check = declared()
    request = httpx.Request("GET", "http://service/api/me")
    me = {"sub": "ana", "customer_id": ACME, "customer_name": "Acme Corp", "scopes": ["workflows:read"]}
    await check(httpx.Response(200, json=me, request=request))
    with pytest.raises(ValidationError):
        await check(httpx.Response(200, json={"sub": "ana"}, request=request))
    with pytest.raises(ValidationError):
        await check(httpx.Response(200, json={**me, "scopes": "workflows:read"}, request=request))
    with pytest.raises(AssertionError):
        await check(httpx.Response(200, json={**me, "token": "..."}, request=request))
    with pytest.raises(ValidationError):
        await check(httpx.Response(401, json={"title": "Unauthorized"}, request=request, headers=PROBLEM_TYPE))


async def test_openapi__the_readme_lists_every_route(document):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## The workflow-history service (HTTP)", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ", 1)[0] for line in section.splitlines() if line.startswith("| `GET ")]
    listed = {route for row in rows for route in re.findall(r"`(GET [^`]+)`", row)}
    # the document and the scrape are not in the document
    assert listed == {name for name, _ in operations(document)} | {"GET /openapi.json", "GET /metrics"}
    assert "/metrics" not in document["paths"]


async def test_openapi__history_items_and_details_name_their_agent(document):
    schemas = document["components"]["schemas"]
    history_items = schemas["HistoryPage"]["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[-1]
    for name in (history_items, "ExecutionDetails"):
        agent_name = schemas[name]["properties"]["agent_name"]
        assert "agent_name" in schemas[name]["required"] and "name of the agent" in agent_name["description"], name
