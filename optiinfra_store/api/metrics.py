"""`GET /metrics`: the service in Prometheus's text format, for a scraper.

Served without a token, as scrapers ask: nothing in it names a customer, a token, an execution or
a path as requested. Every label takes a bounded set of values (the route's template, a known
method or `other`, the status), so no request can make a series of its own. Requests are counted
by a middleware; the rest is read from the service when scraped (open streams, the analytics in
flight, the events hub, the pool). `Settings(metrics=False)` (`serve --no-metrics`) leaves the
route out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optiinfra_store.api.access_log import route_of
from optiinfra_store.api.routing import NOT_STORED

if TYPE_CHECKING:
    from optiinfra_store.api.service import Service

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# the routes answer in milliseconds: finer buckets below 50 ms than prometheus-client's defaults
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The registry of one app: its request series and what is read from its service when scraped."""

    def __init__(self, service: Service) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "optiinfra_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "optiinfra_http_request_duration_seconds",
            "Seconds from a request's arrival to its response's headers (an event stream: to its start)",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ServiceCollector(service))
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "other"
        key = (method, route_of(scope), status)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds the key: once per series
            children = self._children[key] = (
                self.requests.labels(method, key[1], str(status)),
                self.duration.labels(method, key[1]),
            )
        children[0].inc()
        children[1].observe(seconds)

    def page(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST, headers=NOT_STORED)


class RequestMetrics:
    """Counts each request and times it to its response's start, when the status is known; one
    that ends without a response counts as 500 (what the server answers for it)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observed = False

        async def sending(message: Message) -> None:
            nonlocal observed
            if message["type"] == "http.response.start" and not observed:
                observed = True
                self.metrics.observe(scope, message["status"], time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if not observed:
                self.metrics.observe(scope, 500, time.perf_counter() - started)


class _ServiceCollector(Collector):
    """What the service holds now, read at each scrape."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        service = self.service
        caps, analytics, hub = service.caps, service.analytics, service.hub
        yield GaugeMetricFamily("optiinfra_event_streams_open", "Event streams open (SSE)", value=caps.total)
        refused = CounterMetricFamily(
            "optiinfra_event_streams_refused",
            "Event streams refused (429), by the cap that was full: per process or per customer",
            labels=["cap"],
        )
        for cap, count in caps.refused.items():
            refused.add_metric([cap], count)
        yield refused
        yield GaugeMetricFamily(
            "optiinfra_analytics_in_flight",
            "Statistics and performance computations running or waiting (identical requests share one)",
            value=analytics.in_flight,
        )
        yield CounterMetricFamily(
            "optiinfra_analytics_refused",
            "Statistics and performance requests refused (429): too many of one customer at once",
            value=analytics.refused,
        )
        yield GaugeMetricFamily(
            "optiinfra_events_hub_listening",
            "1 while the events hub holds its listening connection, 0 while it reconnects or is closed",
            value=1 if hub is not None and hub.listening else 0,
        )
        yield CounterMetricFamily(
            "optiinfra_events_hub_reconnects",
            "Times the events hub re-opened its listening connection after losing it",
            value=0 if hub is None else hub.reconnects,
        )
        yield GaugeMetricFamily(
            "optiinfra_events_hub_subscribers",
            "Subscriptions the events hub wakes",
            value=0 if hub is None else hub.subscribers,
        )
        yield CounterMetricFamily(
            "optiinfra_events_hub_wakeups",
            "Subscriber wake-ups by the events hub's notifications",
            value=0 if hub is None else hub.woken,
        )
        stats = service.store.pool_stats()
        connections = GaugeMetricFamily(
            "optiinfra_pool_connections", "The store's pooled connections, in use and idle", labels=["state"]
        )
        connections.add_metric(["in_use"], stats.in_use)
        connections.add_metric(["idle"], stats.idle)
        yield connections
        yield GaugeMetricFamily("optiinfra_pool_max_connections", "The pool's maximum size", value=stats.max_size)
        yield GaugeMetricFamily("optiinfra_pool_min_connections", "The pool's minimum size", value=stats.min_size)


def install(app: FastAPI, service: Service) -> Metrics:
    """Count the app's requests and serve `GET /metrics` (outside the OpenAPI document: it is for
    scrapers, in Prometheus's text format)."""
    metrics = Metrics(service)
    app.add_middleware(RequestMetrics, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def scrape() -> Response:
        return metrics.page()

    return metrics
