"""The five routes of the workflow-history service, and the trend and session routes, against the
store's own answers for the same customer."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from optiinfra_store import Store, migrations
from optiinfra_store.enums import WorkflowStatus, WorkflowType
from optiinfra_store.records import WorkflowExecutionCreate
from tests.api.conftest import ACME, JWT_SECRET, TECHSTART, bearer, running

FAILED_QUALITY_CHECK = "f1000000-0000-4000-8000-000000000003"
SCALING_WITH_RETRIES = "f1000000-0000-4000-8000-000000000004"


def aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"{text} has no offset"
    return value


async def all_pages(client, path: str, headers, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, headers=headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize("customer", [ACME, TECHSTART])
async def test_history__the_customers_executions_newest_first_page_by_page(service, customer):
    items = await all_pages(service.client, "/api/workflows/history", bearer(customer), limit=1)
    expected = await service.store.for_customer(customer).workflow_executions.list()
    assert [item["id"] for item in items] == [str(e.id) for e in expected]
    assert len(items) == 2
    for item in items:
        assert item["customer_id"] == customer
        aware(item["created_at"])
        assert UUID(item["id"]) and UUID(item["agent_id"])
        assert "duration_seconds" in item
        assert item["agent_name"] == (await service.store.agents.get(item["agent_id"])).name


async def test_history__filters(service):
    headers = bearer(TECHSTART)
    failed = await all_pages(service.client, "/api/workflows/history", headers, status="failed")
    assert [i["id"] for i in failed] == [FAILED_QUALITY_CHECK]
    both = await all_pages(service.client, "/api/workflows/history", headers, status=["failed", "completed"])
    assert {i["id"] for i in both} == {FAILED_QUALITY_CHECK, SCALING_WITH_RETRIES}
    typed = await all_pages(service.client, "/api/workflows/history", headers, workflow_type="scaling_decision")
    assert [i["id"] for i in typed] == [SCALING_WITH_RETRIES]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await all_pages(service.client, "/api/workflows/history", headers, since=later) == []
    agent = typed[0]["agent_id"]
    assert [i["id"] for i in await all_pages(service.client, "/api/workflows/history", headers, agent_id=agent)] == [
        SCALING_WITH_RETRIES
    ]


async def test_type_history__one_type_and_each_item_carries_it(service):
    items = await all_pages(service.client, "/api/workflows/scaling_decision/history", bearer(TECHSTART), limit=1)
    assert [i["id"] for i in items] == [SCALING_WITH_RETRIES]
    assert {i["workflow_type"] for i in items} == {"scaling_decision"}
    assert await all_pages(service.client, "/api/workflows/scaling_decision/history", bearer(ACME)) == []


async def test_details__steps_artifacts_and_trail_as_the_store_has_them(service):
    response = await service.client.get(f"/api/workflows/{SCALING_WITH_RETRIES}/details", headers=bearer(TECHSTART))
    assert response.status_code == 200
    body = response.json()
    store = service.store.for_customer(TECHSTART)
    detail = await store.workflow_executions.get_detail(SCALING_WITH_RETRIES)
    trail = await store.workflow_executions.history(SCALING_WITH_RETRIES)
    assert body["id"] == SCALING_WITH_RETRIES and body["status"] == "completed"
    assert body["agent_name"] == "Resource Allocator" == (await store.agents.get(detail.agent_id)).name
    assert [s["id"] for s in body["steps"]] == [str(s.id) for s in detail.steps]
    assert [s["retry_count"] for s in body["steps"]] == [s.retry_count for s in detail.steps]
    assert max(s["retry_count"] for s in body["steps"]) == 2
    assert [a["id"] for a in body["artifacts"]] == [str(a.id) for a in detail.artifacts]
    assert [t["id"] for t in body["transitions"]] == [t.id for t in trail] and trail
    assert body["duration_seconds"] == pytest.approx(detail.duration_seconds)
    for transition in body["transitions"]:
        aware(transition["at"])


async def test_agent_names__read_once_then_kept_a_while_through_the_callers_confined_store(store, customer, agent):
    from uuid import uuid4

    from optiinfra_store.api.agent_names import AgentNames
    from optiinfra_store.records import AgentUpdate

    confined = store.for_customer(customer.id)
    kept, fresh = AgentNames(ttl=3600), AgentNames(ttl=0)
    nobody = uuid4()
    assert await kept.of(confined, [agent.id, nobody, agent.id]) == {agent.id: "Cost Optimizer"}
    await store.agents.update(agent.id, AgentUpdate(name="Renamed"))
    assert await kept.of(confined, [agent.id]) == {agent.id: "Cost Optimizer"}  # within its time
    assert await fresh.of(confined, [agent.id]) == {agent.id: "Renamed"}  # read again once its time is up
    assert await kept.of(confined, []) == {}


async def test_statistics__the_stores_figures(service):
    response = await service.client.get("/api/workflows/statistics", headers=bearer(TECHSTART))
    assert response.status_code == 200
    body = response.json()
    figures = await service.store.for_customer(TECHSTART).workflow_executions.statistics()
    assert body["total"] == figures.total == 2
    assert body["count_by_status"] == {s.value: n for s, n in figures.count_by_status.items()}
    assert body["success_rate"] == figures.success_rate == 0.5
    assert body["max_duration_seconds"] == figures.max_duration_seconds
    assert body["p50_duration_seconds"] <= body["max_duration_seconds"]
    assert set(body["by_type"]) == {"quality_check", "scaling_decision"}
    aware(body["since"]), aware(body["until"])
    narrowed = await service.client.get(
        "/api/workflows/statistics", headers=bearer(TECHSTART), params={"days": 7, "workflow_type": "quality_check"}
    )
    assert narrowed.json()["total"] == 1


async def test_performance_metrics__the_stores_findings(service):
    response = await service.client.get("/api/workflows/performance-metrics", headers=bearer(TECHSTART))
    assert response.status_code == 200
    body = response.json()
    figures = await service.store.for_customer(TECHSTART).workflow_executions.performance()
    assert body["finished"] == figures.finished
    assert [b["count"] for b in body["duration_buckets"]] == [b.count for b in figures.duration_buckets]
    assert [p["error_type"] for p in body["error_patterns"]] == [p.error_type for p in figures.error_patterns]
    assert [h["step_name"] for h in body["retry_hotspots"]] == [h.step_name for h in figures.retry_hotspots]
    assert body["retry_hotspots"] and body["error_patterns"] and body["tips"] == figures.tips


async def test_trend__whole_days_with_the_current_one_last(service):
    response = await service.client.get("/api/workflows/trend", headers=bearer(TECHSTART), params={"days": 7})
    buckets = response.json()["buckets"]
    assert len(buckets) == 7
    assert sum(b["total"] for b in buckets) == 2
    last = aware(buckets[-1]["start"])
    assert last <= datetime.now(UTC) < aware(buckets[-1]["end"]) and last.hour == 0
    hourly = await service.client.get("/api/workflows/trend", headers=bearer(TECHSTART), params={"bucket": "hour"})
    assert len(hourly.json()["buckets"]) == 30 * 24
    too_long = await service.client.get(
        "/api/workflows/trend", headers=bearer(TECHSTART), params={"bucket": "hour", "days": 32}
    )
    assert too_long.status_code == 422 and "days" in too_long.json()["detail"]


async def test_me__who_the_token_speaks_for(service):
    body = (await service.client.get("/api/me", headers=bearer(ACME, subject="ana"))).json()
    assert body == {"sub": "ana", "customer_id": ACME, "customer_name": "Acme Corp", "scopes": ["workflows:read"]}
    demo = await service.client.get("/api/demo/customers")
    assert (demo.status_code, demo.json()) == (200, [])  # not the demo: none (the page asks on every load)


async def test_statistics__etag_answers_304_until_something_changes(service, store, agent):
    headers = bearer(ACME)
    first = await service.client.get("/api/workflows/statistics", headers=headers)
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("private, max-age=")
    again = await service.client.get("/api/workflows/statistics", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and again.content == b""
    # another customer's work changes nothing for this one
    await store.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=agent.id, customer_id=TECHSTART, workflow_type=WorkflowType.HEALTH_CHECK)
    )
    assert (
        await service.client.get("/api/workflows/statistics", headers={**headers, "If-None-Match": etag})
    ).status_code == 304
    await store.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=agent.id, customer_id=ACME, workflow_type=WorkflowType.HEALTH_CHECK)
    )
    changed = await service.client.get("/api/workflows/statistics", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["count_by_status"]["pending"] == 1
    perf = await service.client.get("/api/workflows/performance-metrics", headers=headers)
    cached = await service.client.get(
        "/api/workflows/performance-metrics", headers={**headers, "If-None-Match": f'"x", {perf.headers["etag"]}'}
    )
    assert cached.status_code == 304


async def test_readyz__ready_when_the_schema_is_current_and_not_before(service, scratch_dsn):
    assert (await service.client.get("/healthz")).json() == {"status": "ok"}
    assert (await service.client.get("/readyz")).json() == {
        "status": "ready",
        "pending_migrations": [],
        "events": "listening",
    }
    migrations.apply(scratch_dsn)
    last = migrations.rollback(scratch_dsn, count=1)
    async with Store.connect(scratch_dsn, min_size=1, max_size=1) as behind, running(behind) as fresh:
        response = await fresh.client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "schema not current", "pending_migrations": last, "events": "listening"}


async def test_openapi__documents_every_route(service):
    paths = set((await service.client.get("/openapi.json")).json()["paths"])
    assert {
        "/api/workflows/history",
        "/api/workflows/{execution_id}/details",
        "/api/workflows/statistics",
        "/api/workflows/performance-metrics",
        "/api/workflows/{workflow_type}/history",
        "/api/workflows/events",
        "/healthz",
        "/readyz",
    } <= paths


async def test_page__served_offline_with_a_content_security_policy(service):
    page = await service.client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/app.css"):
        assert asset in page.text
        assert (await service.client.get(asset)).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN


async def test_request_log__one_line_per_request_without_the_token(service, caplog):
    headers = bearer(TECHSTART)
    with caplog.at_level(logging.INFO, logger="optiinfra_store.api.access"):
        await service.client.get(f"/api/workflows/{FAILED_QUALITY_CHECK}/details", headers=headers)
        await service.client.get("/api/workflows/history?limit=0", headers=headers)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "optiinfra_store.api.access"]
    assert lines[0]["route"] == "/api/workflows/{execution_id}/details"
    assert lines[0]["status"] == 200 and lines[0]["customer_id"] == TECHSTART and lines[0]["method"] == "GET"
    assert lines[1]["status"] == 422 and lines[1]["route"] == "/api/workflows/history"
    text = caplog.text
    assert headers["Authorization"].split()[1] not in text and FAILED_QUALITY_CHECK not in text
    assert JWT_SECRET not in text


async def test_statuses_and_types__the_routes_accept_every_value_of_the_enums(service):
    headers = bearer(ACME)
    for status in WorkflowStatus:
        assert (await service.client.get(f"/api/workflows/history?status={status}", headers=headers)).status_code == 200
    for kind in WorkflowType:
        assert (await service.client.get(f"/api/workflows/{kind}/history", headers=headers)).status_code == 200


async def test_statistics__if_none_match_compares_weakly(service):
    headers = bearer(ACME)
    etag = (await service.client.get("/api/workflows/statistics", headers=headers)).headers["etag"]
    assert etag.startswith('W/"')
    strong = etag.removeprefix("W/")
    response = await service.client.get("/api/workflows/statistics", headers={**headers, "If-None-Match": strong})
    assert response.status_code == 304


async def test_a_pool_role_that_cannot_be_confined_gets_503_never_data(databases, migrated_dsn, seeded):
    """Fail closed: the service's login role is not a member of optiinfra_app, so it cannot take on
    the tenant role; every route answers 503 and nothing leaks."""
    from tests.pg import ensure_role, may_connect

    ensure_role(databases.admin_dsn, "optiinfra_api_outsider", "LOGIN")
    outsider_dsn = may_connect(databases.admin_dsn, migrated_dsn, "optiinfra_api_outsider")  # nothing more
    async with (
        Store.connect(outsider_dsn, min_size=1, max_size=2) as outsider,
        running(outsider) as fresh,
    ):
        for route in ("/api/workflows/history", "/api/workflows/statistics", f"/api/workflows/{ACME}/details"):
            response = await fresh.client.get(route, headers=bearer(ACME))
            assert response.status_code == 503, route
            assert response.headers["content-type"] == "application/problem+json"
            assert "optiinfra" not in response.json()["detail"] and "Retry-After" in response.headers


async def test_headers__json_is_not_stored_and_every_copy_of_the_page_has_its_policy(service):
    history = await service.client.get("/api/workflows/history", headers=bearer(ACME))
    assert history.headers["cache-control"] == "no-store" and history.headers["x-content-type-options"] == "nosniff"
    for path in ("/", "/static/index.html", "/static/app.js"):
        response = await service.client.get(path)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path


async def test_identical_analytics_requests_in_flight_share_one_query(service, monkeypatch):
    import asyncio

    from optiinfra_store.repositories.workflow_executions import WorkflowExecutions

    calls = 0
    original = WorkflowExecutions.statistics

    async def counted(self, **scope):
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)  # long enough for the others to arrive
        return await original(self, **scope)

    monkeypatch.setattr(WorkflowExecutions, "statistics", counted)
    answers = await asyncio.gather(
        *(service.client.get("/api/workflows/statistics", headers=bearer(ACME)) for _ in range(20))
    )
    assert {a.status_code for a in answers} == {200} and len({a.headers["etag"] for a in answers}) == 1
    assert calls == 1
    await service.client.get("/api/workflows/statistics", headers=bearer(ACME))
    assert calls == 2  # nothing kept once answered: never stale


@pytest.mark.parametrize(
    "value", ["0.5", "1700000000", "2026-01-01", "2026-01-01 00:00:00Z", "2026-02-30T00:00:00Z", "null"]
)
async def test_history__since_and_until_are_rfc_3339_date_times_only(service, value):
    for parameter in ("since", "until"):
        response = await service.client.get("/api/workflows/history", params={parameter: value}, headers=bearer(ACME))
        assert response.status_code == 422, (parameter, value, response.text)
        assert response.json()["detail"].startswith(parameter)


async def test_history__rfc_3339_in_either_case(service):
    for value in ("2026-01-01T00:00:00Z", "2026-01-01t00:00:00.5z", "2026-01-01T05:30:00+05:30"):
        response = await service.client.get("/api/workflows/history", params={"until": value}, headers=bearer(ACME))
        assert response.status_code == 200, (value, response.text)
