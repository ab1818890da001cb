-- name: insert
-- A new execution. With an idempotency key the agent has used before for the same customer,
-- nothing is written and nothing returned: the caller reads the first row instead. No conflict
-- target: the statement works on the unique key of 0021 (customer, agent, key) and on the one
-- before it (agent, key), so this code can be deployed before the migration runs.
INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status, started_at, completed_at,
                                 input_data, output_data, error_details, metadata, idempotency_key)
VALUES (:agent_id, :customer_id, :workflow_type, :status, :started_at, :completed_at, :input_data, :output_data, :error_details, :metadata, :idempotency_key)
ON CONFLICT DO NOTHING
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at;

-- name: get_by_idempotency_key
-- The execution an agent created for a customer with this idempotency key.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at
  FROM workflow_executions WHERE customer_id = $1 AND agent_id = $2 AND idempotency_key = $3;

-- name: get_by_id
-- One execution.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at
  FROM workflow_executions WHERE id = $1;

-- name: get_version
-- The current version, to explain why an update with an expected version matched nothing.
SELECT version FROM workflow_executions WHERE id = $1;

-- name: get_status
-- The current status, to explain why a transition matched nothing.
SELECT status FROM workflow_executions WHERE id = $1;

-- name: delete_by_id
-- Delete an execution with its steps and artifacts.
DELETE FROM workflow_executions WHERE id = $1 RETURNING id;

-- name: update
-- Partial update of the data columns: each field comes as (was it given, value); with an expected
-- version, only if the row is still at that version.
UPDATE workflow_executions
   SET metadata = CASE WHEN :given_metadata THEN coalesce(:metadata, metadata) ELSE metadata END,
       input_data = CASE WHEN :given_input_data THEN coalesce(:input_data, input_data) ELSE input_data END,
       output_data = CASE WHEN :given_output_data THEN coalesce(:output_data, output_data) ELSE output_data END
 WHERE id = :id AND (:expected_version::integer IS NULL OR version = :expected_version)
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at;

-- name: start
-- pending -> running.
-- $4: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE workflow_executions SET status = 'running', started_at = now(), audit_actor = $2, audit_reason = $3
 WHERE id = $1 AND ($4::uuid IS NULL OR customer_id = $4) AND status = 'pending'
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at;

-- name: finish
-- running -> completed, failed or timeout ($2), with the output and the error details (each kept as is when null).
-- $7: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE workflow_executions
   SET status = $2::workflow_status, completed_at = greatest(now(), started_at),
       output_data = coalesce($3, output_data), error_details = coalesce($4, error_details),
       audit_actor = $5, audit_reason = $6
 WHERE id = $1 AND ($7::uuid IS NULL OR customer_id = $7) AND status = 'running' AND $2::workflow_status IN ('completed', 'failed', 'timeout')
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at;

-- name: cancel
-- pending or running -> cancelled; the reason, if any, goes to error_details and the audit trail.
-- $4: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE workflow_executions
   SET status = 'cancelled', completed_at = greatest(now(), started_at),
       error_details = CASE WHEN $2::jsonb IS NULL THEN error_details
                            ELSE jsonb_build_object('error_type', 'Cancelled') || $2::jsonb END,
       audit_actor = $3, audit_reason = $2
 WHERE id = $1 AND ($4::uuid IS NULL OR customer_id = $4) AND status IN ('pending', 'running')
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at;

-- name: get_detail
-- An execution with its steps (by step_order) and artifacts, in one round trip; the steps and
-- artifacts as JSON text, which the records parse and validate in one pass. Joined by customer
-- too: on a cluster distributed by customer, the join stays on the execution's node.
SELECT e.id, e.agent_id, e.customer_id, e.workflow_type, e.status, e.started_at, e.completed_at,
       e.input_data, e.output_data, e.error_details, e.metadata, e.idempotency_key, e.version,
       e.created_at, e.updated_at,
       coalesce((
           SELECT json_agg(s ORDER BY s.step_order)
             FROM (SELECT id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
                          input_data, output_data, error_details, retry_count, max_retries, metadata,
                          created_at, updated_at
                     FROM workflow_steps WHERE workflow_execution_id = e.id AND customer_id = e.customer_id) s
       )::text, '[]') AS steps,
       coalesce((
           SELECT json_agg(a ORDER BY a.created_at, a.id)
             FROM (SELECT id, workflow_execution_id, workflow_step_id, customer_id, artifact_type, artifact_name,
                          artifact_path, artifact_size_bytes, content_type, metadata, created_at, updated_at
                     FROM workflow_artifacts WHERE workflow_execution_id = e.id AND customer_id = e.customer_id) a
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
SELECT id, workflow_execution_id, workflow_step_id, customer_id, from_status, to_status, at, actor, reason
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
-- Per workflow type, for executions created in [since, until) (default the last 30 days): counts per status, exact duration sums, the min and max, the merged duration sketch, and the durations themselves when there are at most 100 (sketch.EXACT_UP_TO) and every one is known (null otherwise; a min is null when a row rolled up before 0026 hides it). Whole days (and, over every customer and agent, whole hours) come from the rollups; the rest of the window from the raw table.
WITH bounds AS (
    SELECT coalesce($4::timestamptz, now() - interval '30 days') AS since, coalesce($5::timestamptz, now()) AS until
), plan AS MATERIALIZED (
    SELECT p.kind, p.lo, p.hi
      FROM bounds b, optiinfra_rollup_plan(b.since, b.until, $1::uuid IS NULL AND $2::uuid IS NULL, true) p
), raw AS MATERIALIZED (
    SELECT x.workflow_type, x.status, x.duration AS d
      FROM (SELECT array_agg(lo) AS los, array_agg(hi) AS his FROM plan WHERE kind = 'raw') p,
           optiinfra_executions_in(p.los, p.his, $1::uuid, $2::uuid, $3::text) x
), rolled AS MATERIALIZED (
    SELECT r.workflow_type, r.total, r.pending, r.running, r.completed, r.failed, r.cancelled, r.timeout,
           r.timed, r.duration_sum, r.duration_max, r.duration_sketch, r.duration_min, r.duration_sample
      FROM plan p
     CROSS JOIN LATERAL (  -- by key, one plan row at a time (OFFSET 0: not flattened into a join)
           SELECT r.workflow_type, r.total, r.pending, r.running, r.completed, r.failed, r.cancelled, r.timeout,
                  r.timed, r.duration_sum, r.duration_max, r.duration_sketch, r.duration_min, r.duration_sample
             FROM workflow_rollups r
            WHERE r.width = p.kind AND r.bucket = p.lo
              AND r.customer_id = coalesce($1::uuid, optiinfra_everyone())
              AND r.agent_id = coalesce($2::uuid, optiinfra_everyone())
              AND r.workflow_type IS NOT NULL AND ($3::text IS NULL OR r.workflow_type = $3::workflow_type) OFFSET 0) r
), facts AS (
    SELECT workflow_type, total, pending, running, completed, failed, cancelled, timeout, timed, duration_sum,
           duration_max, duration_min, (timed > 0 AND duration_min IS NULL)::int AS min_unknown,
           coalesce(cardinality(duration_sample), 0) AS sampled
      FROM rolled
    UNION ALL
    SELECT workflow_type, 1, (status = 'pending')::int, (status = 'running')::int, (status = 'completed')::int,
           (status = 'failed')::int, (status = 'cancelled')::int, (status = 'timeout')::int, (d IS NOT NULL)::int,
           coalesce(d, 0), d::float8, d::float8, 0, (d IS NOT NULL)::int
      FROM raw
), per_type AS (
    SELECT workflow_type, sum(total)::bigint AS total, sum(pending)::bigint AS pending,
           sum(running)::bigint AS running, sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
           sum(cancelled)::bigint AS cancelled, sum(timeout)::bigint AS timeout, sum(timed)::bigint AS timed,
           sum(duration_sum) AS duration_sum, max(duration_max) AS duration_max,
           CASE WHEN sum(min_unknown) = 0 THEN min(duration_min) END AS duration_min,
           sum(sampled) = sum(timed) AND sum(timed) <= 100 AS exact
      FROM facts GROUP BY workflow_type
), samples AS (  -- every duration, of the types that have at most 100 and know each
    SELECT workflow_type, array_agg(v) AS sample
      FROM (SELECT r.workflow_type, v FROM rolled r, unnest(r.duration_sample) v
            UNION ALL
            SELECT workflow_type, d::float8 FROM raw WHERE d IS NOT NULL) known
     WHERE workflow_type IN (SELECT workflow_type FROM per_type WHERE exact)
     GROUP BY workflow_type
), sketches AS (
    SELECT workflow_type, jsonb_object_agg(key, n) AS sketch
      FROM (SELECT workflow_type, key, sum(n) AS n
              FROM (SELECT r.workflow_type, e.key, e.value::bigint AS n
                      FROM rolled r, jsonb_each_text(r.duration_sketch) e
                    UNION ALL
                    SELECT workflow_type, optiinfra_sketch_key(d), 1 FROM raw WHERE d IS NOT NULL) k
             GROUP BY workflow_type, key) merged
     GROUP BY workflow_type
)
SELECT b.since, b.until, t.workflow_type, t.total, t.pending, t.running, t.completed, t.failed, t.cancelled,
       t.timeout, t.timed, t.duration_sum, t.duration_max, coalesce(s.sketch, '{}') AS sketch, t.duration_min,
       CASE WHEN t.exact THEN coalesce(x.sample, '{}') END AS sample
  FROM bounds b
  LEFT JOIN per_type t ON true
  LEFT JOIN sketches s ON s.workflow_type = t.workflow_type
  LEFT JOIN samples x ON x.workflow_type = t.workflow_type
 ORDER BY t.workflow_type;

-- name: trend
-- Executions per date_bin bucket of width $6 microseconds from origin $4 up to $5 (default now): counts per status and the exact duration sum behind the average, empty buckets included. Rolled-up hours ($7) and days ($8) are used where they fall wholly inside one bucket.
WITH bounds AS (
    SELECT $4::timestamptz AS since, coalesce($5::timestamptz, now()) AS until,
           $6::bigint * interval '1 microsecond' AS width
), plan AS MATERIALIZED (
    SELECT p.kind, p.lo, p.hi FROM bounds b, optiinfra_rollup_plan(b.since, b.until, $7, $8) p
), buckets AS (
    SELECT s AS start
      FROM bounds b, generate_series(b.since, b.until, b.width) AS s
     WHERE s < b.until
), facts AS (
    SELECT date_bin(b.width, x.created_at, b.since) AS start, 1 AS total,
           (x.status = 'pending')::int AS pending, (x.status = 'running')::int AS running,
           (x.status = 'completed')::int AS completed, (x.status = 'failed')::int AS failed,
           (x.status = 'cancelled')::int AS cancelled, (x.status = 'timeout')::int AS timeout,
           (x.duration IS NOT NULL)::int AS timed, coalesce(x.duration, 0) AS duration_sum
      FROM bounds b,
           (SELECT array_agg(lo) AS los, array_agg(hi) AS his FROM plan WHERE kind = 'raw') p,
           optiinfra_executions_in(p.los, p.his, $1::uuid, $2::uuid, $3::text) x
    UNION ALL
    SELECT date_bin(b.width, r.bucket, b.since), r.total, r.pending, r.running, r.completed, r.failed,
           r.cancelled, r.timeout, r.timed, r.duration_sum
      FROM bounds b
      JOIN plan p ON p.kind <> 'raw'
     CROSS JOIN LATERAL (
           SELECT r.bucket, r.total, r.pending, r.running, r.completed, r.failed, r.cancelled, r.timeout, r.timed,
                  r.duration_sum
             FROM workflow_rollups r
            WHERE r.width = p.kind AND r.bucket = p.lo
              AND r.customer_id = coalesce($1::uuid, optiinfra_everyone())
              AND r.agent_id = coalesce($2::uuid, optiinfra_everyone())
              AND r.workflow_type IS NOT DISTINCT FROM $3::text::workflow_type OFFSET 0) r  -- null: the every-type row
), counted AS (
    SELECT start, sum(total)::bigint AS total, sum(pending)::bigint AS pending, sum(running)::bigint AS running,
           sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
           sum(cancelled)::bigint AS cancelled, sum(timeout)::bigint AS timeout,
           sum(timed)::bigint AS timed, sum(duration_sum) AS duration_sum
      FROM facts GROUP BY start
)
SELECT k.start, k.start + b.width AS "end",
       coalesce(c.total, 0) AS total,
       coalesce(c.pending, 0) AS pending, coalesce(c.running, 0) AS running,
       coalesce(c.completed, 0) AS completed, coalesce(c.failed, 0) AS failed,
       coalesce(c.cancelled, 0) AS cancelled, coalesce(c.timeout, 0) AS timeout,
       coalesce(c.timed, 0) AS timed, coalesce(c.duration_sum, 0) AS duration_sum
  FROM buckets k CROSS JOIN bounds b LEFT JOIN counted c ON c.start = k.start
 ORDER BY k.start;

-- name: performance
-- For executions created in [since, until) (default the last 30 days) and their steps, as jsonb: execution counts, duration buckets, min, max and sketch; per step name counts, exact duration sums, min, max and sketches; error patterns. The durations themselves (of the executions, of each step name) when there are at most 100 (sketch.EXACT_UP_TO) and every one is known; null otherwise. Whole days (per customer or overall) and, over every customer, whole hours come from the rollups ($6: may rollups be used, false with an agent filter); the rest from the raw tables.
WITH bounds AS (
    SELECT coalesce($4::timestamptz, now() - interval '30 days') AS since, coalesce($5::timestamptz, now()) AS until
), plan AS MATERIALIZED (
    SELECT p.kind, p.lo, p.hi
      FROM bounds b, optiinfra_rollup_plan(b.since, b.until, $6 AND $1::uuid IS NULL, $6) p
), e AS MATERIALIZED (
    SELECT x.id, x.workflow_type, x.status, x.error_details, x.seen_at, x.duration AS d
      FROM (SELECT array_agg(lo) AS los, array_agg(hi) AS his FROM plan WHERE kind = 'raw') p,
           optiinfra_executions_in(p.los, p.his, $1::uuid, $2::uuid, $3::text) x
), s AS MATERIALIZED (  -- the raw executions' steps, read by execution id through their index
    SELECT st.step_name, st.status, st.retry_count, st.error_details,
           coalesce(st.completed_at, st.updated_at) AS seen_at,
           extract(epoch FROM st.completed_at - st.started_at) AS d
      FROM workflow_steps st
     WHERE st.workflow_execution_id = ANY (ARRAY(SELECT id FROM e))
), rolled AS MATERIALIZED (
    SELECT r.* FROM plan p
     CROSS JOIN LATERAL (
           SELECT r.completed, r.failed, r.cancelled, r.timeout, r.timed, r.duration_sketch, r.under_1m, r.under_5m,
                  r.under_15m, r.under_1h, r.over_1h, r.duration_min, r.duration_max, r.duration_sample
             FROM workflow_rollups r
            WHERE r.width = p.kind AND r.bucket = p.lo AND r.customer_id = coalesce($1::uuid, optiinfra_everyone()) AND r.agent_id = optiinfra_everyone()
              AND r.workflow_type IS NOT DISTINCT FROM $3::text::workflow_type OFFSET 0) r
), rolled_steps AS MATERIALIZED (
    SELECT r.* FROM plan p
     CROSS JOIN LATERAL (
           SELECT r.step_name, r.steps, r.timed, r.duration_sum, r.duration_sketch, r.total_retries, r.retried,
                  r.runs, r.failed, r.duration_min, r.duration_max, r.duration_sample
             FROM workflow_step_rollups r
            WHERE r.width = p.kind AND r.bucket = p.lo AND r.customer_id = coalesce($1::uuid, optiinfra_everyone())
              AND r.workflow_type IS NOT DISTINCT FROM $3::text::workflow_type OFFSET 0) r
), rolled_errors AS (
    SELECT r.* FROM plan p
     CROSS JOIN LATERAL (
           SELECT r.source, r.error_type, r.occurrences, r.last_seen, r.message, r.message_seen
             FROM workflow_error_rollups r
            WHERE r.width = p.kind AND r.bucket = p.lo AND r.customer_id = coalesce($1::uuid, optiinfra_everyone())
              AND r.workflow_type IS NOT DISTINCT FROM $3::text::workflow_type OFFSET 0) r
), executions AS (
    SELECT coalesce(sum(completed), 0)::bigint AS completed,
           coalesce(sum(completed + failed + cancelled + timeout), 0)::bigint AS ended,
           coalesce(sum(timed), 0)::bigint AS timed,
           jsonb_build_array(coalesce(sum(under_1m), 0), coalesce(sum(under_5m), 0), coalesce(sum(under_15m), 0),
                             coalesce(sum(under_1h), 0), coalesce(sum(over_1h), 0)) AS buckets,
           CASE WHEN coalesce(sum(min_unknown), 0) = 0 THEN min(dmin) END AS min, max(dmax) AS max,
           coalesce(sum(sampled), 0) = coalesce(sum(timed), 0) AND coalesce(sum(timed), 0) <= 100 AS exact
      FROM (SELECT completed, failed, cancelled, timeout, timed, under_1m, under_5m, under_15m, under_1h, over_1h,
                   duration_min AS dmin, duration_max AS dmax, (timed > 0 AND duration_min IS NULL)::int AS min_unknown,
                   coalesce(cardinality(duration_sample), 0) AS sampled
              FROM rolled
            UNION ALL
            SELECT (status = 'completed')::int, (status = 'failed')::int, (status = 'cancelled')::int,
                   (status = 'timeout')::int, (d IS NOT NULL)::int, (d < 60)::int, (d >= 60 AND d < 300)::int,
                   (d >= 300 AND d < 900)::int, (d >= 900 AND d < 3600)::int, (d >= 3600)::int,
                   d::float8, d::float8, 0, (d IS NOT NULL)::int
              FROM e) f
), execution_sample AS (  -- read only when `exact`
    SELECT coalesce(array_agg(v), '{}') AS sample
      FROM (SELECT v FROM rolled r, unnest(r.duration_sample) v
            UNION ALL
            SELECT d::float8 FROM e WHERE d IS NOT NULL) known
), execution_sketch AS (
    SELECT coalesce(jsonb_object_agg(key, n), '{}') AS sketch
      FROM (SELECT key, sum(n) AS n
              FROM (SELECT k.key, k.value::bigint AS n FROM rolled r, jsonb_each_text(r.duration_sketch) k
                    UNION ALL
                    SELECT optiinfra_sketch_key(d), 1 FROM e WHERE d IS NOT NULL) keyed
             GROUP BY key) merged
), step_facts AS (
    SELECT step_name, steps, timed, duration_sum, total_retries, retried, runs, failed, duration_min AS dmin,
           duration_max AS dmax, (timed > 0 AND duration_min IS NULL)::int AS min_unknown,
           coalesce(cardinality(duration_sample), 0) AS sampled
      FROM rolled_steps
    UNION ALL
    SELECT step_name, 1, (d IS NOT NULL)::int, coalesce(d, 0), retry_count, (retry_count > 0)::int,
           (status IN ('completed', 'failed'))::int, (status = 'failed')::int, d::float8, d::float8, 0,
           (d IS NOT NULL)::int
      FROM s
), step_sketches AS (
    SELECT step_name, jsonb_object_agg(key, n) AS sketch
      FROM (SELECT step_name, key, sum(n) AS n
              FROM (SELECT r.step_name, k.key, k.value::bigint AS n
                      FROM rolled_steps r, jsonb_each_text(r.duration_sketch) k
                    UNION ALL
                    SELECT step_name, optiinfra_sketch_key(d), 1 FROM s WHERE d IS NOT NULL) keyed
             GROUP BY step_name, key) merged
     GROUP BY step_name
), per_step AS (
    SELECT f.step_name, sum(f.steps)::bigint AS steps, sum(f.timed)::bigint AS timed,
           sum(f.duration_sum) AS duration_sum, sum(f.total_retries)::bigint AS total_retries,
           sum(f.retried)::bigint AS retried, sum(f.runs)::bigint AS runs, sum(f.failed)::bigint AS failed,
           -- a step row rolled up before 0026 has neither: both unknown then
           CASE WHEN sum(f.min_unknown) = 0 THEN min(f.dmin) END AS min,
           CASE WHEN sum(f.min_unknown) = 0 THEN max(f.dmax) END AS max,
           sum(f.sampled) = sum(f.timed) AND sum(f.timed) <= 100 AS exact
      FROM step_facts f GROUP BY f.step_name
), step_samples AS (  -- every duration, of the step names that have at most 100 and know each
    SELECT step_name, array_agg(v) AS sample
      FROM (SELECT r.step_name, v FROM rolled_steps r, unnest(r.duration_sample) v
            UNION ALL
            SELECT step_name, d::float8 FROM s WHERE d IS NOT NULL) known
     WHERE step_name IN (SELECT step_name FROM per_step WHERE exact)
     GROUP BY step_name
), error_facts AS (
    SELECT source, error_type, occurrences, last_seen, message, message_seen FROM rolled_errors
    UNION ALL
    SELECT 'execution', coalesce(error_details->>'error_type', 'unspecified'), 1, seen_at,
           coalesce(error_details->>'error_message', error_details->>'error'), seen_at
      FROM e WHERE status = 'failed'
    UNION ALL
    SELECT 'step', coalesce(error_details->>'error_type', 'unspecified'), 1, seen_at,
           coalesce(error_details->>'error_message', error_details->>'error'), seen_at
      FROM s WHERE status = 'failed'
), errors AS (
    SELECT source, error_type, sum(occurrences)::bigint AS count, max(last_seen) AS last_seen,
           (array_agg(message ORDER BY message_seen DESC) FILTER (WHERE message IS NOT NULL))[1] AS sample_message
      FROM error_facts GROUP BY source, error_type
)
SELECT b.since, b.until,
       (SELECT to_jsonb(x) FROM executions x) AS executions,
       (SELECT sketch FROM execution_sketch) AS execution_sketch,
       CASE WHEN (SELECT exact FROM executions) THEN (SELECT sample FROM execution_sample) END AS execution_sample,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'step_name', p.step_name, 'steps', p.steps, 'timed', p.timed, 'duration_sum', p.duration_sum,
                   'total_retries', p.total_retries, 'retried', p.retried, 'runs', p.runs, 'failed', p.failed,
                   'sketch', coalesce(k.sketch, '{}'), 'min', p.min, 'max', p.max,
                   'sample', CASE WHEN p.exact THEN coalesce(x.sample, '{}') END) ORDER BY p.step_name), '[]')
          FROM per_step p LEFT JOIN step_sketches k ON k.step_name = p.step_name
          LEFT JOIN step_samples x ON x.step_name = p.step_name) AS steps,
       (SELECT coalesce(jsonb_agg(r ORDER BY r.count DESC, r.last_seen DESC, r.source, r.error_type), '[]')
          FROM errors r) AS error_patterns
  FROM bounds b;

-- name: customer_of
-- The customer of one row: a write on a schema distributed by customer names it, to go to one shard.
SELECT customer_id FROM workflow_executions WHERE id = $1;
