"""One customer never sees another's data through any route, and hostile parameters get a clean
4xx that changes nothing in the database."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from optiinfra_store.repositories import repository_types
from tests.api.conftest import ACME, TECHSTART, bearer

EXECUTIONS = {
    ACME: ["f1000000-0000-4000-8000-000000000001", "f1000000-0000-4000-8000-000000000002"],
    TECHSTART: ["f1000000-0000-4000-8000-000000000003", "f1000000-0000-4000-8000-000000000004"],
}
OTHER = {ACME: TECHSTART, TECHSTART: ACME}
READ_ROUTES = [
    "/api/workflows/history",
    "/api/workflows/statistics",
    "/api/workflows/performance-metrics",
    "/api/workflows/trend",
    "/api/me",
    *(f"/api/workflows/{kind}/history" for kind in ("cost_analysis", "performance_tuning", "quality_check")),
    "/api/workflows/scaling_decision/history",
]


def digest(dsn: str) -> dict[str, str]:
    """A digest of every table's rows: equal before and after means nothing changed."""
    tables = sorted({*repository_types(), "workflow_transitions"})
    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(
                sql.SQL(
                    "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM {} t"
                ).format(sql.Identifier(table))
            ).fetchone()[0]
            for table in tables
        }


@pytest.mark.parametrize("customer", [ACME, TECHSTART])
async def test_nothing_of_the_other_customer_through_any_route(service, customer):
    other = OTHER[customer]
    headers = bearer(customer)
    foreign = [other, *EXECUTIONS[other]]
    for route in READ_ROUTES:
        response = await service.client.get(route, headers=headers)
        assert response.status_code == 200, route
        assert not any(value in response.text for value in foreign), route
    never = await service.client.get("/api/workflows/f1000000-0000-4000-8000-00000000ffff/details", headers=headers)
    for execution in EXECUTIONS[other]:
        response = await service.client.get(f"/api/workflows/{execution}/details", headers=headers)
        assert response.status_code == 404
        body, absent = response.json(), never.json()
        assert {k: v for k, v in body.items() if k != "detail"} == {k: v for k, v in absent.items() if k != "detail"}
        assert body["detail"].replace(execution, "ID") == absent["detail"].replace(
            "f1000000-0000-4000-8000-00000000ffff", "ID"
        )
    for execution in EXECUTIONS[customer]:
        assert (await service.client.get(f"/api/workflows/{execution}/details", headers=headers)).status_code == 200
    filtered = await service.client.get(
        "/api/workflows/history", headers=headers, params={"agent_id": "a1000000-0000-4000-8000-000000000004"}
    )
    if customer == ACME:  # TechStart's agent: its executions stay hidden
        assert filtered.json()["items"] == []


HOSTILE = [
    ("/api/workflows/history", {"limit": "-1"}, "limit"),
    ("/api/workflows/history", {"limit": "0"}, "limit"),
    ("/api/workflows/history", {"limit": "1001"}, "limit"),
    ("/api/workflows/history", {"limit": str(10**40)}, "limit"),
    ("/api/workflows/history", {"limit": "1e3"}, "limit"),
    ("/api/workflows/history", {"cursor": "' OR 1=1 --"}, "cursor"),
    ("/api/workflows/history", {"cursor": "x" * 500}, "cursor"),
    ("/api/workflows/history", {"status": "failed'; DROP TABLE workflow_executions; --"}, "status"),
    ("/api/workflows/history", {"workflow_type": "cost_analysis OR 1=1"}, "workflow_type"),
    ("/api/workflows/history", {"agent_id": "not-a-uuid"}, "agent_id"),
    ("/api/workflows/history", {"since": "yesterday"}, "since"),
    ("/api/workflows/history", {"since": "2026-01-01T00:00:00"}, "since"),  # no offset
    ("/api/workflows/statistics", {"days": "0"}, "days"),
    ("/api/workflows/statistics", {"days": "99999999"}, "days"),
    ("/api/workflows/statistics", {"workflow_type": "%"}, "workflow_type"),
    ("/api/workflows/performance-metrics", {"days": "-5"}, "days"),
    ("/api/workflows/trend", {"bucket": "minute"}, "bucket"),
    ("/api/workflows/f1000000-0000-4000-8000-00000000000z/details", {}, "execution_id"),
    ("/api/workflows/1%20OR%201=1/details", {}, "execution_id"),
    ("/api/workflows/drop_table/history", {}, "workflow_type"),
    ("/api/workflows/cost_analysis/history", {"limit": "NaN"}, "limit"),
]


async def test_hostile_parameters_get_a_clean_4xx_naming_the_parameter_and_change_nothing(service, seeded):
    before = digest(seeded)
    for path, params, parameter in HOSTILE:
        response = await service.client.get(path, params=params, headers=bearer(ACME))
        assert response.status_code in (400, 422), (path, params, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert parameter in body["detail"], (path, params, body)
        assert (
            "Traceback" not in response.text and "SELECT" not in response.text and "postgresql://" not in response.text
        )
    assert digest(seeded) == before


async def test_an_edited_cursor_reads_only_the_callers_rows(service):
    first = (await service.client.get("/api/workflows/history", params={"limit": 1}, headers=bearer(ACME))).json()
    cursor = first["next_cursor"]
    edited = [cursor[:-2] + "AA", cursor[::-1], cursor.replace("M", "N"), cursor + "=="]
    for candidate in edited:
        response = await service.client.get(
            "/api/workflows/history", params={"limit": 5, "cursor": candidate}, headers=bearer(ACME)
        )
        assert response.status_code in (200, 400), candidate
        if response.status_code == 200:
            assert {i["customer_id"] for i in response.json()["items"]} <= {ACME}
        else:
            assert "cursor" in response.json()["detail"]


async def test_unknown_routes_and_methods_are_problems_too(service):
    missing = await service.client.get("/api/nothing/here", headers=bearer(ACME))
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    wrong = await service.client.post("/api/workflows/history", headers=bearer(ACME))
    assert wrong.status_code == 405 and wrong.json()["status"] == 405


def cursor_of(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "params, parameter, status",
    [
        ({"cursor": cursor_of("#5|f1000000-0000-4000-8000-000000000001")}, "cursor", 400),
        ({"cursor": cursor_of("0001-01-01T00:00:00+14:00|f1000000-0000-4000-8000-000000000001")}, "cursor", 400),
        ({"cursor": cursor_of("2026-01-01T00:00:00|f1000000-0000-4000-8000-000000000001")}, "cursor", 400),
        ({"cursor": cursor_of("2026-01-01T00:00:00+00:00|not-a-uuid")}, "cursor", 400),
    ],
)
async def test_well_formed_but_impossible_values_are_4xx_not_500(service, params, parameter, status):
    response = await service.client.get("/api/workflows/history", params=params, headers=bearer(ACME))
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(parameter)


async def test_history__bounds_beyond_the_stores_range_select_what_its_ends_select(service):
    async def ids(**params) -> list[str]:
        response = await service.client.get("/api/workflows/history", params=params, headers=bearer(ACME))
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    everything = await ids()
    assert len(everything) == 2
    assert await ids(since="0001-01-01T00:00:00+14:00", until="9999-12-31T23:59:59.999999-14:00") == everything
    assert await ids(since="9999-12-31T23:59:59.999999-14:00") == []
    assert await ids(until="0001-01-01T00:00:00+14:00") == []
