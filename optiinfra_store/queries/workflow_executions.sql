-- name: insert
-- A new execution; columns in WorkflowExecutionCreate's field order. With an idempotency key the agent
-- has used before, nothing is written and nothing returned: the caller reads the first row instead.
INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status, started_at, completed_at,
                                 input_data, output_data, error_details, metadata, idempotency_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (agent_id, idempotency_key) DO NOTHING
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at;

-- name: get_by_idempotency_key
-- The execution an agent created with this idempotency key.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at
  FROM workflow_executions WHERE agent_id = $1 AND idempotency_key = $2;

-- name: get_by_id
-- One execution.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at
  FROM workflow_executions WHERE id = $1;

-- name: get_version
-- The current version, to explain why an update with an expected version matched nothing.
SELECT version FROM workflow_executions WHERE id = $1;

-- name: get_status
-- The current status, to explain why a transition matched nothing; also spends the audit settings
-- that transition set, so a later change in the same transaction does not inherit them.
SELECT (SELECT status FROM workflow_executions WHERE id = $1)
  FROM (SELECT optiinfra_audit(NULL, NULL)) AS spent;

-- name: delete_by_id
-- Delete an execution with its steps and artifacts.
DELETE FROM workflow_executions WHERE id = $1 RETURNING id;

-- name: update
-- Partial update of the data columns: each field comes as (was it given, value); with $8, only if
-- the row is still at that version.
UPDATE workflow_executions
   SET metadata = CASE WHEN $2 THEN coalesce($3, metadata) ELSE metadata END,
       input_data = CASE WHEN $4 THEN coalesce($5, input_data) ELSE input_data END,
       output_data = CASE WHEN $6 THEN coalesce($7, output_data) ELSE output_data END
 WHERE id = $1 AND ($8::integer IS NULL OR version = $8)
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at;

-- name: start
-- pending -> running.
UPDATE workflow_executions SET status = 'running', started_at = now()
 WHERE id = $1 AND optiinfra_audit($2::text, $3::jsonb) AND status = 'pending'
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at;

-- name: finish
-- running -> completed, failed or timeout ($2), with the output and the error details (each kept as is when null).
UPDATE workflow_executions
   SET status = $2::workflow_status, completed_at = greatest(now(), started_at),
       output_data = coalesce($3, output_data), error_details = coalesce($4, error_details)
 WHERE id = $1 AND optiinfra_audit($5::text, $6::jsonb) AND status = 'running'
   AND $2::workflow_status IN ('completed', 'failed', 'timeout')
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at;

-- name: cancel
-- pending or running -> cancelled; the reason, if any, goes to error_details and the audit trail.
UPDATE workflow_executions
   SET status = 'cancelled', completed_at = greatest(now(), started_at),
       error_details = CASE WHEN $2::jsonb IS NULL THEN error_details
                            ELSE jsonb_build_object('error_type', 'Cancelled') || $2::jsonb END
 WHERE id = $1 AND optiinfra_audit($3::text, $2::jsonb) AND status IN ('pending', 'running')
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at;

-- name: get_detail
-- An execution with its steps (by step_order) and artifacts, in one round trip; the steps and
-- artifacts as JSON text, which the records parse and validate in one pass.
SELECT e.id, e.agent_id, e.customer_id, e.workflow_type, e.status, e.started_at, e.completed_at,
       e.input_data, e.output_data, e.error_details, e.metadata, e.idempotency_key, e.version,
       e.created_at, e.updated_at,
       coalesce((
           SELECT json_agg(s ORDER BY s.step_order)
             FROM (SELECT id, workflow_execution_id, step_name, step_order, status, started_at, completed_at,
                          input_data, output_data, error_details, retry_count, max_retries, metadata,
                          created_at, updated_at
                     FROM workflow_steps WHERE workflow_execution_id = e.id) s
       )::text, '[]') AS steps,
       coalesce((
           SELECT json_agg(a ORDER BY a.created_at, a.id)
             FROM (SELECT id, workflow_execution_id, workflow_step_id, artifact_type, artifact_name,
                          artifact_path, artifact_size_bytes, content_type, metadata, created_at, updated_at
                     FROM workflow_artifacts WHERE workflow_execution_id = e.id) a
       )::text, '[]') AS artifacts
  FROM workflow_executions e
 WHERE e.id = $1;

-- name: list
-- One page, newest first (keyset on created_at, id), with optional filters.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at
  FROM workflow_executions
 WHERE ($1::uuid IS NULL OR customer_id = $1)
   AND ($2::uuid IS NULL OR agent_id = $2)
   AND ($3::text IS NULL OR workflow_type = $3::workflow_type)
   AND ($4::text[] IS NULL OR status = ANY($4::text[]::workflow_status[]))
   AND ($5::timestamptz IS NULL OR started_at >= $5)
   AND ($6::timestamptz IS NULL OR started_at < $6)
   AND ($7::timestamptz IS NULL OR (created_at, id) < ($7, $8::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT $9;

-- name: list_active
-- Every pending or running execution, oldest first.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at
  FROM workflow_executions
 WHERE status IN ('pending', 'running')
 ORDER BY created_at, id;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM workflow_executions;

-- name: history
-- Every status change of the execution and its steps, oldest first.
SELECT id, workflow_execution_id, workflow_step_id, from_status, to_status, at, actor, reason
  FROM workflow_transitions
 WHERE workflow_execution_id = $1
 ORDER BY id;

-- name: purge_batch
-- Delete up to $3 executions finished (in one of the statuses $2) before $1, oldest first, with their steps, artifacts and transitions, counting each.
WITH doomed AS MATERIALIZED (
    SELECT id
      FROM workflow_executions
     WHERE status = ANY($2::text[]::workflow_status[])
       AND completed_at < $1
     ORDER BY completed_at
     LIMIT $3
       FOR UPDATE SKIP LOCKED
), counts AS MATERIALIZED (
    SELECT (SELECT count(*) FROM workflow_steps WHERE workflow_execution_id IN (SELECT id FROM doomed)) AS steps,
           (SELECT count(*) FROM workflow_artifacts WHERE workflow_execution_id IN (SELECT id FROM doomed)) AS artifacts,
           (SELECT count(*) FROM workflow_transitions WHERE workflow_execution_id IN (SELECT id FROM doomed)) AS transitions
), deleted AS (
    DELETE FROM workflow_executions
     WHERE id IN (SELECT id FROM doomed)
    RETURNING id
)
SELECT (SELECT count(*) FROM deleted) AS executions, c.steps, c.artifacts, c.transitions
  FROM counts c;

-- name: purge_count
-- What purge_batch would delete in all, without deleting anything (a dry run).
WITH doomed AS MATERIALIZED (
    SELECT id
      FROM workflow_executions
     WHERE status = ANY($2::text[]::workflow_status[])
       AND completed_at < $1
)
SELECT (SELECT count(*) FROM doomed) AS executions,
       (SELECT count(*) FROM workflow_steps WHERE workflow_execution_id IN (SELECT id FROM doomed)) AS steps,
       (SELECT count(*) FROM workflow_artifacts WHERE workflow_execution_id IN (SELECT id FROM doomed)) AS artifacts,
       (SELECT count(*) FROM workflow_transitions WHERE workflow_execution_id IN (SELECT id FROM doomed)) AS transitions;

-- name: statistics
-- Counts per status and finished durations in [since, until) (default the last 30 days): per workflow type, and overall (is_total).
WITH bounds AS (
    SELECT coalesce($4::timestamptz, now() - interval '30 days') AS since, coalesce($5::timestamptz, now()) AS until
), e AS (
    SELECT x.workflow_type, x.status,
           CASE WHEN x.status IN ('completed', 'failed', 'cancelled', 'timeout')
                THEN extract(epoch FROM x.completed_at - x.started_at)::float8 END AS duration
      FROM workflow_executions x, bounds b
     WHERE ($1::uuid IS NULL OR x.customer_id = $1)
       AND ($2::uuid IS NULL OR x.agent_id = $2)
       AND ($3::text IS NULL OR x.workflow_type = $3::workflow_type)
       AND x.created_at >= b.since AND x.created_at < b.until
)
SELECT (SELECT since FROM bounds) AS since, (SELECT until FROM bounds) AS until,
       grouping(workflow_type) = 1 AS is_total, workflow_type,
       count(*) AS total,
       count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE status = 'timeout') AS timeout,
       avg(duration) AS avg_duration_seconds,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration) AS p50_duration_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration) AS p95_duration_seconds,
       max(duration) AS max_duration_seconds
  FROM e
 GROUP BY GROUPING SETS ((workflow_type), ())
 ORDER BY is_total DESC, workflow_type;

-- name: trend
-- Executions per date_bin bucket of width $6 microseconds from origin $4 up to $5 (default now): counts per status and average finished duration, empty buckets included.
WITH bounds AS (
    SELECT $4::timestamptz AS since, coalesce($5::timestamptz, now()) AS until,
           $6::bigint * interval '1 microsecond' AS width
), buckets AS (
    SELECT s AS start
      FROM bounds b, generate_series(b.since, b.until, b.width) AS s
     WHERE s < b.until
), counted AS (
    SELECT date_bin(b.width, x.created_at, b.since) AS start,
           count(*) AS total,
           count(*) FILTER (WHERE x.status = 'pending') AS pending,
           count(*) FILTER (WHERE x.status = 'running') AS running,
           count(*) FILTER (WHERE x.status = 'completed') AS completed,
           count(*) FILTER (WHERE x.status = 'failed') AS failed,
           count(*) FILTER (WHERE x.status = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE x.status = 'timeout') AS timeout,
           avg(CASE WHEN x.status IN ('completed', 'failed', 'cancelled', 'timeout')
                    THEN extract(epoch FROM x.completed_at - x.started_at)::float8 END) AS avg_duration_seconds
      FROM workflow_executions x, bounds b
     WHERE ($1::uuid IS NULL OR x.customer_id = $1)
       AND ($2::uuid IS NULL OR x.agent_id = $2)
       AND ($3::text IS NULL OR x.workflow_type = $3::workflow_type)
       AND x.created_at >= b.since AND x.created_at < b.until
     GROUP BY 1
)
SELECT k.start, k.start + b.width AS "end",
       coalesce(c.total, 0) AS total,
       coalesce(c.pending, 0) AS pending, coalesce(c.running, 0) AS running,
       coalesce(c.completed, 0) AS completed, coalesce(c.failed, 0) AS failed,
       coalesce(c.cancelled, 0) AS cancelled, coalesce(c.timeout, 0) AS timeout,
       c.avg_duration_seconds
  FROM buckets k CROSS JOIN bounds b LEFT JOIN counted c ON c.start = k.start
 ORDER BY k.start;

-- name: performance
-- Duration histogram, error patterns, slowest steps, retry hotspots and the figures the tips use, for executions created in [since, until) (default the last 30 days), as jsonb.
-- The steps are read by execution id through their index (work in proportion to the window, not to
-- the table); error details are kept only for failures, and the per-step figures come from one pass.
WITH bounds AS (
    SELECT coalesce($4::timestamptz, now() - interval '30 days') AS since, coalesce($5::timestamptz, now()) AS until
), e AS MATERIALIZED (
    SELECT x.id, x.status, CASE WHEN x.status = 'failed' THEN x.error_details END AS error_details,
           coalesce(x.completed_at, x.updated_at) AS seen_at,
           CASE WHEN x.status IN ('completed', 'failed', 'cancelled', 'timeout')
                THEN extract(epoch FROM x.completed_at - x.started_at)::float8 END AS duration
      FROM workflow_executions x, bounds b
     WHERE ($1::uuid IS NULL OR x.customer_id = $1)
       AND ($2::uuid IS NULL OR x.agent_id = $2)
       AND ($3::text IS NULL OR x.workflow_type = $3::workflow_type)
       AND x.created_at >= b.since AND x.created_at < b.until
), s AS MATERIALIZED (
    SELECT st.step_name, st.status, st.retry_count,
           CASE WHEN st.status = 'failed' THEN st.error_details END AS error_details,
           coalesce(st.completed_at, st.updated_at) AS seen_at,
           extract(epoch FROM st.completed_at - st.started_at)::float8 AS duration
      FROM workflow_steps st
     WHERE st.workflow_execution_id = ANY (ARRAY(SELECT id FROM e))
), per_step AS MATERIALIZED (
    SELECT step_name, count(*) AS steps, count(duration) AS timed, avg(duration) AS avg_seconds,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY duration) AS p95_seconds,
           sum(retry_count) AS total_retries, count(*) FILTER (WHERE retry_count > 0) AS retried,
           count(*) FILTER (WHERE status IN ('completed', 'failed')) AS runs,
           count(*) FILTER (WHERE status = 'failed') AS failed
      FROM s GROUP BY step_name
), errors AS (
    SELECT 'execution' AS source, coalesce(error_details->>'error_type', 'unspecified') AS error_type, seen_at,
           coalesce(error_details->>'error_message', error_details->>'error') AS message
      FROM e WHERE status = 'failed'
    UNION ALL
    SELECT 'step', coalesce(error_details->>'error_type', 'unspecified'), seen_at,
           coalesce(error_details->>'error_message', error_details->>'error')
      FROM s WHERE status = 'failed'
)
SELECT (SELECT since FROM bounds) AS since, (SELECT until FROM bounds) AS until,
       (SELECT jsonb_build_object(
                   'finished', count(duration),
                   'completed', count(*) FILTER (WHERE status = 'completed'),
                   'ended', count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled', 'timeout')),
                   'p50', percentile_cont(0.5) WITHIN GROUP (ORDER BY duration),
                   'p95', percentile_cont(0.95) WITHIN GROUP (ORDER BY duration),
                   'buckets', jsonb_build_array(
                       count(*) FILTER (WHERE duration < 60),
                       count(*) FILTER (WHERE duration >= 60 AND duration < 300),
                       count(*) FILTER (WHERE duration >= 300 AND duration < 900),
                       count(*) FILTER (WHERE duration >= 900 AND duration < 3600),
                       count(*) FILTER (WHERE duration >= 3600)))
          FROM e) AS executions,
       (SELECT coalesce(jsonb_agg(p ORDER BY p.count DESC, p.last_seen DESC, p.source, p.error_type), '[]')
          FROM (SELECT source, error_type, count(*) AS count, max(seen_at) AS last_seen,
                       (array_agg(message ORDER BY seen_at DESC) FILTER (WHERE message IS NOT NULL))[1] AS sample_message
                  FROM errors GROUP BY source, error_type) p) AS error_patterns,
       (SELECT coalesce(jsonb_agg(t ORDER BY t.p95_seconds DESC, t.step_name), '[]')
          FROM (SELECT step_name, timed AS count, avg_seconds, p95_seconds
                  FROM per_step WHERE timed > 0
                 ORDER BY p95_seconds DESC, step_name LIMIT 10) t) AS slowest_steps,
       (SELECT coalesce(jsonb_agg(r ORDER BY r.total_retries DESC, r.step_name), '[]')
          FROM (SELECT step_name, steps, total_retries, retried::float8 / steps AS share_retried
                  FROM per_step WHERE total_retries > 0
                 ORDER BY total_retries DESC, step_name LIMIT 10) r) AS retry_hotspots,
       (SELECT coalesce(sum(total_retries), 0)::bigint FROM per_step) AS total_retries,
       (SELECT coalesce(jsonb_agg(f ORDER BY f.step_name), '[]')
          FROM (SELECT step_name, runs, failed FROM per_step) f) AS step_failures;
