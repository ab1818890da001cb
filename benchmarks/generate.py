"""Realistic workflow history, generated on the server (INSERT ... SELECT generate_series).

Executions are spread over the last `days` days in insertion order (created_at grows with the
row number, as in a live table), across the given customers and agents. Each has 5 steps and 2
or 3 artifacts, and the audit trail its status changes would have written. Every CHECK and
foreign key of the schema stays enforced while loading:

- pending: no timestamps, every step pending; running: started_at only, steps before the current
  one completed, the current one running, the rest pending;
- completed / failed / cancelled / timeout: started_at <= completed_at <= the generation's now;
  a failed or timed-out execution has one failed step (steps after it skipped), a cancelled one
  stops with its remaining steps pending; steps run in order within the execution's window;
- retry_count <= max_retries, step_order 1..5 unique per execution;
- artifacts reference a step of their own execution (the composite foreign key), or none.

The audit trail (workflow_transitions) is normally written by triggers, one row and one NOTIFY
per change, stamped with the clock at load time. To give it the history's own timestamps (and to
avoid millions of NOTIFYs) the two transition triggers are disabled while loading, on this
database only, and the rows they would have written are inserted directly; the triggers are
enabled again afterwards. Foreign-key and CHECK enforcement is untouched.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import psycopg
from psycopg import sql

METRIC_SERIES: list[tuple[str, str, str, float, float]] = [
    # name, type, unit, baseline, spread
    ("gpu_utilization_percent", "gauge", "percent", 65.0, 30.0),
    ("cost_per_hour_usd", "gauge", "usd", 42.0, 20.0),
    ("p95_latency_ms", "gauge", "ms", 180.0, 120.0),
    ("tokens_per_second", "gauge", "tokens/s", 2400.0, 900.0),
    ("requests_total", "counter", "requests", 50000.0, 40000.0),
    ("memory_used_gb", "gauge", "GB", 48.0, 24.0),
    ("queue_depth", "gauge", "requests", 12.0, 10.0),
    ("error_rate_percent", "gauge", "percent", 0.8, 0.7),
    ("savings_identified_usd", "counter", "usd", 12000.0, 9000.0),
    ("kv_cache_hit_ratio", "gauge", "ratio", 0.7, 0.25),
]

STEP_NAMES = ["collect_metrics", "analyze_usage", "generate_recommendations", "validate_changes", "publish_report"]


@dataclass(frozen=True)
class Fleet:
    """The customers and agents generated rows belong to."""

    customers: list[UUID]
    agents: list[UUID]


def connect(dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(dsn)
    # a lost commit costs only this disposable benchmark database
    conn.execute("SET synchronous_commit = off")
    conn.commit()
    return conn


def create_fleet(conn: psycopg.Connection, customers: int = 50, agents: int = 20) -> Fleet:
    customer_ids = [
        row[0]
        for row in conn.execute(
            """
        INSERT INTO customers (name, email, status, metadata)
        SELECT 'Customer ' || g, 'ops' || g || '-' || gen_random_uuid() || '@customer.example', 'active',
               jsonb_build_object('tier', (ARRAY['startup', 'growth', 'enterprise'])[1 + g %% 3])
          FROM generate_series(1, %s) g
        RETURNING id
        """,
            (customers,),
        )
    ]
    agent_ids = [
        row[0]
        for row in conn.execute(
            """
        INSERT INTO agents (type, name, version, status, endpoint, capabilities, last_heartbeat, metadata)
        SELECT (enum_range(NULL::agent_type))[1 + g %% 4], 'agent-' || g, '1.' || (g %% 5) || '.0', 'active',
               'http://agent-' || g || ':8000', ARRAY['analysis'], now(), '{}'
          FROM generate_series(1, %s) g
        RETURNING id
        """,
            (agents,),
        )
    ]
    conn.commit()
    return Fleet(customer_ids, agent_ids)


@contextlib.contextmanager
def transition_triggers_disabled(conn: psycopg.Connection) -> Iterator[None]:
    """Disable the triggers that write workflow_transitions (found by their function), then
    enable them again. Only those: foreign keys and the other triggers stay on."""
    triggers = conn.execute(
        """
        SELECT c.relname, t.tgname
          FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE p.proname = 'optiinfra_record_transition' AND NOT t.tgisinternal
        """
    ).fetchall()

    def switch(action: str) -> None:
        for table, trigger in triggers:
            conn.execute(
                sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
                    sql.Identifier(table), sql.SQL(action), sql.Identifier(trigger)
                )
            )
        conn.commit()

    switch("DISABLE")
    try:
        yield
    finally:
        conn.rollback()
        switch("ENABLE")


# One batch of executions [lo, hi) of `total`, with their steps, artifacts and audit trail.
# Parameters: lo, hi, total, customers uuid[], agents uuid[], now, days, artifacts per execution.
_EXECUTIONS = """
WITH x AS MATERIALIZED (
    SELECT g, c.now,
           c.now - make_interval(secs => c.days * 86400.0 * (c.total - g + random()) / c.total) AS created_at,
           c.customers[1 + floor(random() * cardinality(c.customers))::int] AS customer_id,
           c.agents[1 + floor(random() * cardinality(c.agents))::int] AS agent_id,
           (enum_range(NULL::workflow_type))[1 + floor(random() * 8)::int] AS workflow_type,
           CASE WHEN g > c.total - greatest(c.total / 1000, 1)   -- the newest 0.1 percent: still in flight
                     OR random() < c.unfinished                   -- untidy: never finished, at any age
                THEN (CASE WHEN random() < 0.4 THEN 'pending' ELSE 'running' END)::workflow_status
                ELSE (CASE WHEN r < 0.85 THEN 'completed' WHEN r < 0.93 THEN 'failed'
                           WHEN r < 0.96 THEN 'cancelled' ELSE 'timeout' END)::workflow_status
           END AS status,
           random() * 30 AS start_delay,
           CASE WHEN r < 0.93 THEN exp(ln(60) + random() * 3.5) ELSE 3600 + random() * 600 END AS duration
      FROM (SELECT %(now)s::timestamptz AS now, %(days)s::float8 AS days, %(total)s::int AS total,
                   %(unfinished)s::float8 AS unfinished,
                   %(customers)s::uuid[] AS customers, %(agents)s::uuid[] AS agents) c,
           LATERAL (SELECT g, random() AS r FROM generate_series(%(lo)s::int, %(hi)s::int - 1) g) gr
), t AS MATERIALIZED (
    SELECT x.*,
           CASE WHEN status <> 'pending' THEN least(created_at + make_interval(secs => start_delay), now) END
               AS started_at
      FROM x
), e AS (
    INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status, started_at, completed_at,
                                     input_data, output_data, error_details, metadata, created_at, updated_at)
    SELECT agent_id, customer_id, workflow_type, status, started_at, completed_at,
           jsonb_build_object('analysis_period', 'last_30_days', 'resources', 1 + g %% 40),
           CASE WHEN status = 'completed'
                THEN jsonb_build_object('potential_savings', round((random() * 90000)::numeric, 2),
                                        'recommendations', 1 + g %% 12)
                ELSE '{}' END,
           CASE status
                WHEN 'failed' THEN jsonb_build_object(
                    'error_type', (ARRAY['GPUUnavailable', 'ValidationError', 'RateLimited', 'ProviderError'])[1 + g %% 4],
                    'error_message', 'step failed after retries')
                WHEN 'timeout' THEN jsonb_build_object('error_type', 'Timeout', 'error_message', 'ran past its deadline')
                WHEN 'cancelled' THEN jsonb_build_object('error_type', 'Cancelled', 'reason', 'superseded')
           END,
           jsonb_build_object('priority', CASE WHEN g %% 10 = 0 THEN 'high' ELSE 'normal' END),
           created_at, coalesce(completed_at, started_at, created_at)
      FROM (SELECT t.*,
                   CASE WHEN status IN ('completed', 'failed', 'cancelled', 'timeout')
                        THEN greatest(least(started_at + make_interval(secs => duration), now), started_at) END
                       AS completed_at
              FROM t) d
    RETURNING id, status, started_at, completed_at, created_at
), plan AS MATERIALIZED (
    -- per step: its status and window; `f` is the step where a failed, timed-out, cancelled or
    -- running execution stopped
    SELECT e.id AS execution_id, k AS step_order, e.created_at,
           CASE
               WHEN e.status = 'pending' THEN 'pending'
               WHEN e.status = 'completed' OR k < f THEN 'completed'
               WHEN e.status = 'running' THEN CASE WHEN k = f THEN 'running' ELSE 'pending' END
               WHEN e.status = 'cancelled' THEN 'pending'
               WHEN k = f THEN 'failed'
               ELSE 'skipped'
           END::step_status AS status,
           e.started_at + (coalesce(e.completed_at, %(now)s::timestamptz) - e.started_at) * (k - 1) / 5.0
               AS step_start,
           e.started_at + (coalesce(e.completed_at, %(now)s::timestamptz) - e.started_at) * k / 5.0 AS step_end,
           e.completed_at AS execution_end,
           CASE WHEN random() < 0.9 THEN 0 WHEN random() < 0.7 THEN 1 ELSE 2 END AS retries
      FROM e CROSS JOIN generate_series(1, 5) k
           CROSS JOIN LATERAL (SELECT 1 + abs(hashtext(e.id::text)) %% 5 AS f) h
), s AS (
    INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order, status, started_at, completed_at,
                                input_data, output_data, error_details, retry_count, max_retries, metadata,
                                created_at, updated_at)
    SELECT execution_id, (%(step_names)s::text[])[step_order], step_order, status,
           CASE WHEN status IN ('completed', 'failed', 'running') THEN step_start END,
           CASE WHEN status IN ('completed', 'failed') THEN step_end
                WHEN status = 'skipped' THEN execution_end END,
           jsonb_build_object('attempt', 1 + retries),
           CASE WHEN status = 'completed' THEN jsonb_build_object('records', step_order * 100) ELSE '{}' END,
           CASE WHEN status = 'failed'
                THEN jsonb_build_object('error_type', 'StepError', 'error_message', 'upstream returned 503') END,
           CASE WHEN status IN ('pending', 'skipped') THEN 0 ELSE retries END, 3, '{}',
           created_at,
           CASE status WHEN 'completed' THEN step_end WHEN 'failed' THEN step_end WHEN 'running' THEN step_start
                       WHEN 'skipped' THEN execution_end ELSE created_at END
      FROM plan
    RETURNING id, workflow_execution_id, step_order, status, started_at, completed_at, created_at
), a AS (
    INSERT INTO workflow_artifacts (workflow_execution_id, workflow_step_id, artifact_type, artifact_name,
                                    artifact_path, artifact_size_bytes, content_type, metadata,
                                    created_at, updated_at)
    SELECT s.workflow_execution_id, s.id,
           (CASE s.step_order WHEN 2 THEN 'chart' ELSE 'report' END)::artifact_type,
           (CASE s.step_order WHEN 2 THEN 'usage chart' ELSE 'final report' END),
           's3://optiinfra-artifacts/' || s.workflow_execution_id || '/' || s.step_order || '.json',
           (1000 + random() * 5000000)::bigint, 'application/json', '{}'::jsonb,
           coalesce(s.completed_at, s.created_at), coalesce(s.completed_at, s.created_at)
      FROM s WHERE s.step_order IN (2, 5)
    UNION ALL
    SELECT e.id, NULL, 'log', 'execution log', 's3://optiinfra-artifacts/' || e.id || '/log.txt',
           (100 + random() * 100000)::bigint, 'text/plain', '{}'::jsonb, e.created_at, e.created_at
      FROM e WHERE %(artifacts)s >= 3
    RETURNING 1
), trail AS (
    INSERT INTO workflow_transitions (workflow_execution_id, workflow_step_id, from_status, to_status, at)
    SELECT e.id, NULL::uuid, NULL::text, 'pending', e.created_at FROM e
    UNION ALL
    SELECT e.id, NULL, 'pending', 'running', e.started_at FROM e WHERE e.started_at IS NOT NULL
    UNION ALL
    SELECT e.id, NULL, CASE WHEN e.started_at IS NULL THEN 'pending' ELSE 'running' END, e.status::text,
           e.completed_at
      FROM e WHERE e.completed_at IS NOT NULL
    UNION ALL
    SELECT s.workflow_execution_id, s.id, NULL, 'pending', s.created_at FROM s
    UNION ALL
    SELECT s.workflow_execution_id, s.id, 'pending', 'running', s.started_at FROM s WHERE s.started_at IS NOT NULL
    UNION ALL
    SELECT s.workflow_execution_id, s.id, CASE WHEN s.started_at IS NULL THEN 'pending' ELSE 'running' END,
           s.status::text, s.completed_at
      FROM s WHERE s.completed_at IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM s), (SELECT count(*) FROM a), (SELECT count(*) FROM trail)
"""

_METRICS = """
INSERT INTO agent_metrics (agent_id, metric_name, metric_type, metric_value, metric_unit,
                           collection_timestamp, metadata, created_at, updated_at)
SELECT p.agent_id, p.metric_name, p.metric_type::metric_type,
       greatest(p.baseline + (random() - 0.5) * 2 * p.spread, 0), p.metric_unit, p.at,
       jsonb_build_object('host', 'gpu-node-' || (g %% 16), 'region', (ARRAY['us-east', 'us-west', 'eu-west'])[1 + g %% 3]),
       p.at, p.at
  FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) g
  CROSS JOIN LATERAL (
      SELECT (%(agents)s::uuid[])[1 + (g / %(names)s) %% cardinality(%(agents)s::uuid[])] AS agent_id,
             (%(metric_names)s::text[])[1 + g %% %(names)s] AS metric_name,
             (%(metric_types)s::text[])[1 + g %% %(names)s] AS metric_type,
             (%(metric_units)s::text[])[1 + g %% %(names)s] AS metric_unit,
             (%(baselines)s::float8[])[1 + g %% %(names)s] AS baseline,
             (%(spreads)s::float8[])[1 + g %% %(names)s] AS spread,
             %(now)s::timestamptz - make_interval(secs => %(days)s * 86400.0 * (%(total)s - g) / %(total)s) AS at
  ) p
"""


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, flush=True)


def generate_history(
    conn: psycopg.Connection,
    fleet: Fleet,
    executions: int,
    *,
    days: float = 180.0,
    artifacts: int = 2,
    batch: int = 25_000,
    now: datetime | None = None,
    quiet: bool = False,
    unfinished: float = 0.0,
) -> dict[str, int]:
    """Insert `executions` executions (5 steps and `artifacts` (2 or 3) artifacts each, with their
    audit trail) spread over `days` days up to `now`; returns the row counts per table. With
    `unfinished` (a fraction), that share of the executions, at any age, never finished: pending
    or running since they were created (an untidy history); otherwise only the newest 0.1 percent
    are still in flight."""
    if artifacts not in (2, 3):
        raise ValueError("artifacts must be 2 or 3")
    now = now or datetime.now(UTC)
    counts = dict.fromkeys(["executions", "steps", "artifacts", "transitions"], 0)
    started = time.perf_counter()
    with transition_triggers_disabled(conn):
        for lo in range(1, executions + 1, batch):
            hi = min(lo + batch, executions + 1)
            row = conn.execute(
                _EXECUTIONS,
                {
                    "lo": lo,
                    "hi": hi,
                    "total": executions,
                    "customers": fleet.customers,
                    "agents": fleet.agents,
                    "now": now,
                    "days": days,
                    "unfinished": unfinished,
                    "artifacts": artifacts,
                    "step_names": STEP_NAMES,
                },
            ).fetchone()
            conn.commit()
            for name, value in zip(counts, row, strict=True):
                counts[name] += value
            if (hi - 1) % (batch * 8) == 0 or hi > executions:
                _log(f"  executions {hi - 1:>10,} / {executions:,}  ({time.perf_counter() - started:.0f} s)", quiet)
    return counts


def generate_metrics(
    conn: psycopg.Connection,
    agents: Sequence[UUID],
    count: int,
    *,
    days: float = 180.0,
    series: Sequence[tuple[str, str, str, float, float]] = METRIC_SERIES,
    batch: int = 500_000,
    now: datetime | None = None,
    quiet: bool = False,
) -> int:
    """Insert `count` metric points: every agent reports every series, evenly spaced over the last
    `days` days (point g of the whole set at now - days * (count - g) / count)."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    params = {
        "total": count,
        "agents": list(agents),
        "names": len(series),
        "now": now,
        "days": days,
        "metric_names": [s[0] for s in series],
        "metric_types": [s[1] for s in series],
        "metric_units": [s[2] for s in series],
        "baselines": [s[3] for s in series],
        "spreads": [s[4] for s in series],
    }
    # daily partitions for the whole history first, as an import would (else the points land in the
    # default partition until maintain() files them)
    conn.execute(
        "SELECT optiinfra_create_metric_partitions(((%(now)s::timestamptz - make_interval(secs => %(days)s * 86400.0))"
        " AT TIME ZONE 'UTC')::date, (%(now)s::timestamptz AT TIME ZONE 'UTC')::date)",
        {"now": now, "days": days},
    )
    conn.commit()
    for lo in range(0, count, batch):
        hi = min(lo + batch, count)
        conn.execute(_METRICS, {**params, "lo": lo, "hi": hi})
        conn.commit()
        if hi % (batch * 4) == 0 or hi == count:
            _log(f"  metrics {hi:>13,} / {count:,}  ({time.perf_counter() - started:.0f} s)", quiet)
    return count


def vacuum_analyze(dsn: str) -> None:
    """What autovacuum would have done to a table that grew over months: visibility map and stats."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
