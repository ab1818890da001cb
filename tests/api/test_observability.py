"""What an operator watches: GET /metrics (Prometheus) after real requests, and the OpenTelemetry
spans of a request and of the store's statements under it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from optiinfra_store import Store
from optiinfra_store.api import TokenVerifier, create_app
from optiinfra_store.api.settings import DEFAULTS, Settings
from tests.api.conftest import ACME, JWT_SECRET, TECHSTART, bearer

ACME_RUNNING = "f1000000-0000-4000-8000-000000000002"  # Acme's
TECHSTART_FAILED = "f1000000-0000-4000-8000-000000000003"  # TechStart's
DETAILS = "/api/workflows/{execution_id}/details"
# what would say whose the data is: customers' ids, names and emails, executions' ids
TENANT_DATA = (ACME, TECHSTART, ACME_RUNNING, TECHSTART_FAILED, "Acme", "TechStart", "acme.example", "techstart")


@contextlib.asynccontextmanager
async def client_of(store: Store, settings: Settings = DEFAULTS, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, TokenVerifier.hs256(JWT_SECRET), settings=settings, **options)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a scrape by its name: (labels, value)."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float | None:
    values = [v for have, v in found.get(name, []) if all(have.get(k) == w for k, w in labels.items())]
    assert len(values) <= 1, (name, labels, values)
    return values[0] if values else None


async def test_metrics__requests_by_route_template_and_status_and_no_tenant_data(api_store: Store, seeded: str):
    async with client_of(api_store) as client:
        assert (await client.get(f"/api/workflows/{ACME_RUNNING}/details", headers=bearer(ACME))).status_code == 200
        # another customer's execution: 404, counted under the same template
        assert (await client.get(f"/api/workflows/{TECHSTART_FAILED}/details", headers=bearer(ACME))).status_code == 404
        for _ in range(2):
            assert (await client.get("/api/workflows/history", headers=bearer(TECHSTART))).status_code == 200
        assert (await client.get("/api/workflows/statistics?days=7", headers=bearer(ACME))).status_code == 200
        assert (await client.get("/api/workflows/history")).status_code == 401
        assert (await client.get(f"/api/nothing/{ACME}")).status_code == 404
        assert (await client.request("BREW", "/healthz")).status_code == 405

        scrape = await client.get("/metrics")  # no token: scrapers carry none
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=")
    assert scrape.headers["cache-control"] == "no-store"
    for text in TENANT_DATA:
        assert text.lower() not in scrape.text.lower()
    found = samples(scrape.text)

    requests = "optiinfra_http_requests_total"
    assert value(found, requests, method="GET", route=DETAILS, status="200") == 1
    assert value(found, requests, method="GET", route=DETAILS, status="404") == 1
    assert value(found, requests, method="GET", route="/api/workflows/history", status="200") == 2
    assert value(found, requests, method="GET", route="/api/workflows/history", status="401") == 1
    assert value(found, requests, method="GET", route="/api/workflows/statistics", status="200") == 1
    assert value(found, requests, method="GET", route="unmatched", status="404") == 1
    assert value(found, requests, method="other", route="/healthz", status="405") == 1
    routes = {labels["route"] for labels, _ in found[requests]}
    assert routes == {DETAILS, "/api/workflows/history", "/api/workflows/statistics", "unmatched", "/healthz"}

    duration = "optiinfra_http_request_duration_seconds"
    assert value(found, f"{duration}_count", method="GET", route=DETAILS) == 2
    assert value(found, f"{duration}_bucket", method="GET", route=DETAILS, le="+Inf") == 2
    assert 0 < value(found, f"{duration}_sum", method="GET", route=DETAILS) < 30

    assert value(found, "optiinfra_event_streams_open") == 0
    assert value(found, "optiinfra_analytics_in_flight") == 0
    assert value(found, "optiinfra_events_hub_listening") == 1
    assert value(found, "optiinfra_events_hub_reconnects_total") == 0
    in_use = value(found, "optiinfra_pool_connections", state="in_use")
    idle = value(found, "optiinfra_pool_connections", state="idle")
    assert in_use is not None and idle is not None and in_use + idle >= 1
    assert value(found, "optiinfra_pool_max_connections") == 8  # the api_store fixture's max_size
    assert value(found, "optiinfra_pool_min_connections") == 1


async def test_metrics__refused_streams_and_analytics_are_counted(api_store: Store, seeded: str):
    settings = Settings(max_customer_streams=0, analytics_queued_per_customer=0)
    async with client_of(api_store, settings) as client:
        assert (await client.get("/api/workflows/events", headers=bearer(ACME))).status_code == 429
        assert (await client.get("/api/workflows/statistics", headers=bearer(ACME))).status_code == 429
        assert (await client.get("/api/workflows/performance-metrics", headers=bearer(ACME))).status_code == 429
        found = samples((await client.get("/metrics")).text)
    assert value(found, "optiinfra_event_streams_refused_total", cap="customer") == 1
    assert value(found, "optiinfra_event_streams_refused_total", cap="process") == 0
    assert value(found, "optiinfra_analytics_refused_total") == 2
    assert value(found, "optiinfra_event_streams_open") == 0


async def test_metrics__a_setting_turns_the_route_off(api_store: Store, seeded: str):
    async with client_of(api_store, Settings(metrics=False)) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 404


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def leaks(span: Any) -> list[str]:
    """What of the tenant data a span carries, in its name, attributes or events."""
    texts = [span.name, *(f"{k}={v}" for k, v in (span.attributes or {}).items())]
    for event in span.events:
        texts += [event.name, *(f"{k}={v}" for k, v in (event.attributes or {}).items())]
    return [t for t in texts for data in TENANT_DATA if data.lower() in t.lower()]


async def test_tracing__a_request_span_parents_the_store_statement_spans_without_arguments(
    api_dsn: str, seeded: str, spans, monkeypatch
):
    """With the global provider set (as `opentelemetry-instrument` sets it), and FastAPI's own
    request spans (which would record the path and query as requested) left out."""
    provider, exporter = spans
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)  # set_tracer_provider, undone after the test
    parent_trace = "0af7651916cd43dd8448eb211c80319c"
    caller = {**bearer(ACME), "traceparent": f"00-{parent_trace}-b7ad6b7169203331-01"}
    async with Store.connect(api_dsn, max_size=2) as store:
        async with client_of(store) as client:
            exporter.clear()  # the events hub's start
            assert (await client.get(f"/api/workflows/{ACME_RUNNING}/details", headers=caller)).status_code == 200
    finished = exporter.get_finished_spans()
    [request] = [s for s in finished if s.kind == SpanKind.SERVER]
    assert {s.kind for s in finished} == {SpanKind.SERVER, SpanKind.CLIENT}
    assert request.name == f"GET {DETAILS}"
    assert request.attributes["http.route"] == DETAILS
    assert request.attributes["http.response.status_code"] == 200
    assert format(request.context.trace_id, "032x") == parent_trace  # the caller's trace goes on
    statements = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert "workflow_executions.get_detail" in {s.name for s in statements}
    for span in statements:
        assert span.parent is not None and span.parent.span_id == request.context.span_id
        assert span.context.trace_id == request.context.trace_id
        assert dict(span.attributes) == {"db.system": "postgresql", "db.operation": span.name}
    for span in finished:
        assert leaks(span) == [], span.name


async def test_tracing__a_failed_statement_says_its_error_kind_never_the_values(
    migrated_dsn: str, clean_dsn: str, spans
):
    from optiinfra_store.errors import AlreadyExists
    from optiinfra_store.records import CustomerCreate

    provider, exporter = spans
    email = "platform@acme.example"
    async with Store.connect(migrated_dsn, max_size=2, tracer_provider=provider) as store:
        await store.customers.create(CustomerCreate(name="Acme Corp", email=email))
        with pytest.raises(AlreadyExists):
            await store.customers.create(CustomerCreate(name="Acme Corp", email=email))
    first, second = exporter.get_finished_spans()
    assert first.name == second.name == "customers.insert"
    assert first.parent is None  # no request around it: a root span
    assert first.status.status_code == StatusCode.UNSET
    assert second.status.status_code == StatusCode.ERROR
    assert second.attributes["error.type"] == "AlreadyExists"
    assert not second.events  # no exception event: its message quotes the email
    for span in (first, second):
        assert leaks(span) == []


async def test_tracing__no_provider_no_tracer(migrated_dsn: str):
    """Without a tracer provider set (this process sets none globally) the store makes no span:
    its executors hold no tracer, and the hot path tests one attribute."""
    async with Store.connect(migrated_dsn, max_size=1) as store:
        assert store._executor.tracer is None
        assert store.for_customer(ACME)._executor.tracer is None


async def test_tracing__every_way_a_statement_runs_makes_its_span(migrated_dsn: str, clean_dsn: str, spans):
    """A confined call (bound for its session, its own path through the executor), a statement of
    a transaction, and a COPY each make the span of their statement."""
    from optiinfra_store.enums import AgentType, MetricType
    from optiinfra_store.records import AgentCreate, AgentMetricCreate, CustomerCreate

    provider, exporter = spans
    async with Store.connect(migrated_dsn, max_size=2, tracer_provider=provider) as store:
        customer = await store.customers.create(CustomerCreate(name="Traced", email="traced@example.com"))
        agent = await store.agents.create(AgentCreate(type=AgentType.COST, name="traced", version="1.0"))
        exporter.clear()
        await store.for_customer(customer.id).workflow_executions.count()
        async with store.transaction() as tx:
            await tx.customers.count()
        await store.agent_metrics.record_many(
            [AgentMetricCreate(agent_id=agent.id, metric_name="gpu", metric_type=MetricType.GAUGE, metric_value=1.0)]
        )
    names = [s.name for s in exporter.get_finished_spans()]
    assert "workflow_executions.count" in names  # the confined call
    assert "customers.count" in names  # in the transaction
    assert "agent_metrics.copy" in names  # the COPY
