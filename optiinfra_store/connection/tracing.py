"""OpenTelemetry spans for the store's statements, when an application asks for them.

opentelemetry-api is optional (the `otel` extra). The tracer is looked up once, when a store is
opened (`tracer_of`): without the package, or while no tracer provider is set (the API's default
proxy), it is None, and the executors' hot path pays one attribute test per statement. With a
provider, each statement is a CLIENT span named by its statement in optiinfra_store/queries
(`workflow_executions.get_by_id`), a child of whatever span is current (the service's request),
with `db.system` and `db.operation` only: never the statement's text, its arguments, or an
exception's message (a driver's message may quote a value).
"""

from __future__ import annotations

from typing import Any

try:
    from opentelemetry import trace
except ImportError:  # pragma: no cover - the otel extra is not installed
    trace = None  # type: ignore[assignment]

INSTRUMENTATION = "optiinfra_store"

STATEMENT_NAMES: dict[str, str] = {}
"""The text of each named statement -> `<file>.<name>`; filled (`queries.named()`) when a store opens
with a tracer."""


def tracer_of(provider: Any = None, name: str = INSTRUMENTATION) -> Any:
    """The tracer for the store's spans from `provider` (default: the global one), or None when
    opentelemetry is not installed, no provider is set, or the provider hands out no-op tracers."""
    if trace is None:
        return None
    from optiinfra_store import __version__

    if provider is None:
        provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    tracer = provider.get_tracer(name, __version__)
    if isinstance(tracer, trace.NoOpTracer | trace.ProxyTracer):  # an SDK disabled by OTEL_SDK_DISABLED
        return None
    return tracer


def statement_name(sql: str) -> str:
    """A statement's span name: its name in the queries (`workflow_executions.get_by_id`), else
    the first keyword of its text (`SELECT`): never more of it."""
    name = STATEMENT_NAMES.get(sql)
    if name is not None:
        return name
    words = sql.split(None, 1)
    return words[0].upper() if words and words[0].isalpha() else "statement"


def start_statement(tracer: Any, sql: str) -> Any:
    """A started CLIENT span for one statement, a child of the current span; the caller ends it."""
    return start_named(tracer, statement_name(sql))


def start_named(tracer: Any, name: str) -> Any:
    """`start_statement` for a span named by the caller (`agent_metrics.copy`)."""
    return tracer.start_span(
        name,
        kind=trace.SpanKind.CLIENT,
        attributes={"db.system": "postgresql", "db.operation": name},
        record_exception=False,
        set_status_on_exception=False,
    )


def failed(span: Any, exc: BaseException) -> None:
    """Mark `span` failed by the kind of `exc` (its class name), never its message."""
    kind = type(exc).__name__
    span.set_attribute("error.type", kind)
    span.set_status(trace.Status(trace.StatusCode.ERROR, kind))
