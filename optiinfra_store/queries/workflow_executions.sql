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
-- The execution an agent created for a customer with this idempotency key, once it is durable: a
-- create retried after a lost reply returns it as its own, and its first attempt's wait for the
-- synchronous standby may have been cut short (a failover would take the row back).
-- An empty transactional WAL message, written for the row found (OFFSET 0 keeps the row's search
-- apart, so the message is not tried on other rows first), gives this statement's transaction WAL
-- of its own, so that its commit waits for the standby to flush the WAL up to it, and so the row.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at
  FROM (SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at, input_data,
               output_data, error_details, metadata, idempotency_key, version, created_at, updated_at
          FROM workflow_executions
         WHERE customer_id = $1 AND agent_id = $2 AND idempotency_key = $3
        OFFSET 0) AS found
 WHERE pg_logical_emit_message(true, 'optiinfra.durable', '') IS NOT NULL;

-- name: get_by_id
-- One execution.
-- $2: a confined store's customer on a schema distributed by customer (the read goes to one shard); else null.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, idempotency_key, version, created_at, updated_at
  FROM workflow_executions WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: get_version
-- The current version, to explain why an update with an expected version matched nothing, once it
-- is durable (as get_status: a caller may take it for its own update applied).
-- $2: the row's customer when known on a schema distributed by customer (the read goes to one shard); else null.
SELECT version, pg_logical_emit_message(true, 'optiinfra.durable', '') AS durable
  FROM workflow_executions WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: exists
-- Whether the execution exists (history's answer when it has no transitions); a plain read, which
-- a replica can serve.
-- $2: a confined store's customer on a schema distributed by customer (the read goes to one shard); else null.
SELECT true FROM workflow_executions WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: get_status
-- The current status, to explain why a transition matched nothing, once it is durable: the status
-- may be a commit whose wait for the synchronous standby was cut short (its client timed out or
-- was cut off), which a failover would take back, and a caller may take it for its own transition
-- applied. `durable`, an empty transactional WAL message written for the row found (a select
-- list is computed for the rows returned only), gives this statement's transaction WAL of its own,
-- so that its commit waits for the standby to flush the WAL up to it, and so all committed before.
-- $2: the row's customer when known on a schema distributed by customer (the read goes to one shard); else null.
SELECT status, pg_logical_emit_message(true, 'optiinfra.durable', '') AS durable
  FROM workflow_executions WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: delete_by_id
-- Delete an execution with its steps and artifacts.
-- $2: the row's customer, given on a schema distributed by customer (the write goes to one shard).
DELETE FROM workflow_executions WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) RETURNING id;

-- name: update
-- Partial update of the data columns: each field comes as (was it given, value); with an expected
-- version, only if the row is still at that version.
-- :customer_id: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE workflow_executions
   SET metadata = CASE WHEN :given_metadata THEN coalesce(:metadata, metadata) ELSE metadata END,
       input_data = CASE WHEN :given_input_data THEN coalesce(:input_data, input_data) ELSE input_data END,
       output_data = CASE WHEN :given_output_data THEN coalesce(:output_data, output_data) ELSE output_data END
 WHERE id = :id AND (:customer_id::uuid IS NULL OR customer_id = :customer_id)
   AND (:expected_version::integer IS NULL OR version = :expected_version)
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
-- $2: a confined store's customer on a schema distributed by customer, in each of the three tables'
-- conditions (the subqueries' join to the execution is not enough for Citus to place them on one
-- shard); else null.
SELECT e.id, e.agent_id, e.customer_id, e.workflow_type, e.status, e.started_at, e.completed_at,
       e.input_data, e.output_data, e.error_details, e.metadata, e.idempotency_key, e.version,
       e.created_at, e.updated_at,
       coalesce((
           SELECT json_agg(s ORDER BY s.step_order)
             FROM (SELECT id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
                          input_data, output_data, error_details, retry_count, max_retries, metadata,
                          created_at, updated_at
                     FROM workflow_steps
                    WHERE workflow_execution_id = e.id AND customer_id = e.customer_id
                      AND ($2::uuid IS NULL OR customer_id = $2)) s
       )::text, '[]') AS steps,
       coalesce((
           SELECT json_agg(a ORDER BY a.created_at, a.id)
             FROM (SELECT id, workflow_execution_id, workflow_step_id, customer_id, artifact_type, artifact_name,
                          artifact_path, artifact_size_bytes, content_type, metadata, created_at, updated_at
                     FROM workflow_artifacts
                    WHERE workflow_execution_id = e.id AND customer_id = e.customer_id
                      AND ($2::uuid IS NULL OR customer_id = $2)) a
       )::text, '[]') AS artifacts
  FROM workflow_executions e
 WHERE e.id = $1 AND ($2::uuid IS NULL OR e.customer_id = $2);

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
-- $2: a confined store's customer on a schema distributed by customer (the read goes to one shard); else null.
SELECT id, workflow_execution_id, workflow_step_id, customer_id, from_status, to_status, at, actor, reason
  FROM workflow_transitions
 WHERE workflow_execution_id = $1 AND ($2::uuid IS NULL OR customer_id = $2)
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

-- name: purge_shards
-- On a schema distributed by customer: the customers with executions finished (in one of the statuses $2) before $1, in groups that share a shard, the group holding the oldest first, their ids as text (an array the driver decodes without asking the server for its type); purge_batch_by_customers then deletes a group's batches on its shard alone (Citus locks rows only in a statement that goes to one shard).
WITH doomed AS MATERIALIZED (  -- per customer on each shard; grouped on the coordinator
    SELECT customer_id, min(completed_at) AS oldest
      FROM workflow_executions
     WHERE status = ANY($2::text[]::workflow_status[])
       AND completed_at < $1
     GROUP BY customer_id
)
SELECT array_agg(customer_id::text ORDER BY customer_id) AS customers
  FROM doomed
 GROUP BY get_shard_id_for_distribution_column('workflow_executions', customer_id)
 ORDER BY min(oldest);

-- name: purge_batch_by_customers
-- purge_batch for the customers $4 (their ids as text), which share a shard (purge_shards): every table read and written by customer, so that the statement, its row locks included, goes to that shard alone.
WITH doomed AS MATERIALIZED (
    SELECT id
      FROM workflow_executions
     WHERE customer_id = ANY($4::text[]::uuid[])
       AND status = ANY($2::text[]::workflow_status[])
       AND completed_at < $1
     ORDER BY completed_at
     LIMIT $3
       FOR UPDATE SKIP LOCKED
), counts AS MATERIALIZED (
    SELECT (SELECT count(*) FROM workflow_steps
             WHERE customer_id = ANY($4::text[]::uuid[]) AND workflow_execution_id IN (SELECT id FROM doomed)) AS steps,
           (SELECT count(*) FROM workflow_artifacts
             WHERE customer_id = ANY($4::text[]::uuid[]) AND workflow_execution_id IN (SELECT id FROM doomed)) AS artifacts,
           (SELECT count(*) FROM workflow_transitions
             WHERE customer_id = ANY($4::text[]::uuid[]) AND workflow_execution_id IN (SELECT id FROM doomed)) AS transitions
), deleted AS (
    DELETE FROM workflow_executions
     WHERE customer_id = ANY($4::text[]::uuid[]) AND id IN (SELECT id FROM doomed)
    RETURNING id
)
SELECT (SELECT count(*) FROM deleted) AS executions, c.steps, c.artifacts, c.transitions
  FROM counts c;

-- name: purge_count_by_customer
-- purge_count on a schema distributed by customer: each child joined to its execution by customer and id, which every shard counts on its own (the ids of purge_count's list would be sent to every shard).
SELECT (SELECT count(*) FROM workflow_executions e
         WHERE e.status = ANY($2::text[]::workflow_status[]) AND e.completed_at < $1) AS executions,
       (SELECT count(*) FROM workflow_steps c
          JOIN workflow_executions e ON e.customer_id = c.customer_id AND e.id = c.workflow_execution_id
         WHERE e.status = ANY($2::text[]::workflow_status[]) AND e.completed_at < $1) AS steps,
       (SELECT count(*) FROM workflow_artifacts c
          JOIN workflow_executions e ON e.customer_id = c.customer_id AND e.id = c.workflow_execution_id
         WHERE e.status = ANY($2::text[]::workflow_status[]) AND e.completed_at < $1) AS artifacts,
       (SELECT count(*) FROM workflow_transitions c
          JOIN workflow_executions e ON e.customer_id = c.customer_id AND e.id = c.workflow_execution_id
         WHERE e.status = ANY($2::text[]::workflow_status[]) AND e.completed_at < $1) AS transitions;

-- name: rollup_plan
-- Where an analytics call reads each part of its window [since, until) ($1, $2; default the last 30 days to now): the raw ranges (executions created in [raw_los[i], raw_his[i])), and the whole days and hours read from the rollups. $3: may hours be used (over every customer and agent), $4: may days, $5: the customer whose marks matter (null: every customer's). A statement of its own: on a Citus cluster it runs on the coordinator, the reads it plans on the node of the customer's rows.
SELECT b.since, b.until,
       coalesce(array_agg(p.lo) FILTER (WHERE p.kind = 'raw'), '{}') AS raw_los,
       coalesce(array_agg(p.hi) FILTER (WHERE p.kind = 'raw'), '{}') AS raw_his,
       coalesce(array_agg(p.lo) FILTER (WHERE p.kind = 'day'), '{}') AS days,
       coalesce(array_agg(p.lo) FILTER (WHERE p.kind = 'hour'), '{}') AS hours
  FROM (SELECT coalesce($1::timestamptz, now() - interval '30 days') AS since,
               coalesce($2::timestamptz, now()) AS until) b
  LEFT JOIN LATERAL optiinfra_rollup_plan(b.since, b.until, $3, $4, $5::uuid) p ON true
 GROUP BY b.since, b.until;

-- name: statistics
-- Per workflow type, for executions created in the window `rollup_plan` planned ($4/$5 its raw ranges, $6 its rolled-up days, $7 hours): counts per status, exact duration sums, the min and max, the merged duration sketch, and the durations themselves when there are at most 100 (sketch.EXACT_UP_TO) and every one is known (null otherwise; a min is null when a row rolled up before 0026 hides it). Every table is read by customer when $1 names one (one node of a Citus cluster).
WITH raw AS MATERIALIZED (
    SELECT x.workflow_type, x.status,
           CASE WHEN x.status IN ('completed', 'failed', 'cancelled', 'timeout')
                THEN extract(epoch FROM x.completed_at - x.started_at) END AS d
      FROM unnest($4::timestamptz[], $5::timestamptz[]) AS w (lo, hi)
      JOIN workflow_executions x ON x.created_at >= w.lo AND x.created_at < w.hi
     WHERE ($1::uuid IS NULL OR x.customer_id = $1) AND ($2::uuid IS NULL OR x.agent_id = $2)
       AND ($3::text IS NULL OR x.workflow_type = $3::workflow_type)
), rolled AS MATERIALIZED (
    SELECT r.workflow_type, r.total, r.pending, r.running, r.completed, r.failed, r.cancelled, r.timeout,
           r.timed, r.duration_sum, r.duration_max, r.duration_sketch, r.duration_min, r.duration_sample
      FROM workflow_rollups r
     WHERE r.customer_id = coalesce($1::uuid, optiinfra_everyone()) AND r.agent_id = coalesce($2::uuid, optiinfra_everyone())
       AND (r.width = 'day' AND r.bucket = ANY ($6::timestamptz[]) OR r.width = 'hour' AND r.bucket = ANY ($7::timestamptz[]))
       AND r.workflow_type IS NOT NULL AND ($3::text IS NULL OR r.workflow_type = $3::workflow_type)
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
SELECT t.workflow_type, t.total, t.pending, t.running, t.completed, t.failed, t.cancelled, t.timeout, t.timed,
       t.duration_sum, t.duration_max, coalesce(s.sketch, '{}') AS sketch, t.duration_min,
       CASE WHEN t.exact THEN coalesce(x.sample, '{}') END AS sample
  FROM per_type t
  LEFT JOIN sketches s ON s.workflow_type = t.workflow_type
  LEFT JOIN samples x ON x.workflow_type = t.workflow_type
 ORDER BY t.workflow_type;

-- name: trend
-- Executions per date_bin bucket of width $6 microseconds from origin $4 up to $5, in the window `rollup_plan` planned ($7/$8 its raw ranges, $9 its rolled-up days, $10 hours; used where they fall wholly inside one bucket): counts per status and the exact duration sum behind the average, empty buckets included. Every table is read by customer when $1 names one.
WITH bounds AS (
    SELECT $4::timestamptz AS since, $5::timestamptz AS until, $6::bigint * interval '1 microsecond' AS width
), buckets AS (
    SELECT s AS start
      FROM bounds b, generate_series(b.since, b.until, b.width) AS s
     WHERE s < b.until
), facts AS (
    SELECT date_bin(b.width, x.created_at, b.since) AS start, 1 AS total,
           (x.status = 'pending')::int AS pending, (x.status = 'running')::int AS running,
           (x.status = 'completed')::int AS completed, (x.status = 'failed')::int AS failed,
           (x.status = 'cancelled')::int AS cancelled, (x.status = 'timeout')::int AS timeout,
           (x.completed_at IS NOT NULL AND x.started_at IS NOT NULL
            AND x.status IN ('completed', 'failed', 'cancelled', 'timeout'))::int AS timed,
           CASE WHEN x.status IN ('completed', 'failed', 'cancelled', 'timeout')
                THEN coalesce(extract(epoch FROM x.completed_at - x.started_at), 0) ELSE 0 END AS duration_sum
      FROM bounds b, unnest($7::timestamptz[], $8::timestamptz[]) AS w (lo, hi)
      JOIN workflow_executions x ON x.created_at >= w.lo AND x.created_at < w.hi
     WHERE ($1::uuid IS NULL OR x.customer_id = $1) AND ($2::uuid IS NULL OR x.agent_id = $2)
       AND ($3::text IS NULL OR x.workflow_type = $3::workflow_type)
    UNION ALL
    SELECT date_bin(b.width, r.bucket, b.since), r.total, r.pending, r.running, r.completed, r.failed,
           r.cancelled, r.timeout, r.timed, r.duration_sum
      FROM bounds b, workflow_rollups r
     WHERE r.customer_id = coalesce($1::uuid, optiinfra_everyone()) AND r.agent_id = coalesce($2::uuid, optiinfra_everyone())
       AND (r.width = 'day' AND r.bucket = ANY ($9::timestamptz[]) OR r.width = 'hour' AND r.bucket = ANY ($10::timestamptz[]))
       AND r.workflow_type IS NOT DISTINCT FROM $3::text::workflow_type  -- null: the every-type row
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
-- For executions created in the window `rollup_plan` planned ($4/$5 its raw ranges, $6 its rolled-up days, $7 hours; no rollups with an agent filter) and their steps, as jsonb: execution counts, duration buckets, min, max and sketch; per step name counts, exact duration sums, min, max and sketches; error patterns. The durations themselves (of the executions, of each step name) when there are at most 100 (sketch.EXACT_UP_TO) and every one is known; null otherwise. Every table is read by customer when $1 names one.
WITH e AS MATERIALIZED (
    SELECT x.id, x.workflow_type, x.status, x.error_details, coalesce(x.completed_at, x.updated_at) AS seen_at,
           CASE WHEN x.status IN ('completed', 'failed', 'cancelled', 'timeout')
                THEN extract(epoch FROM x.completed_at - x.started_at) END AS d
      FROM unnest($4::timestamptz[], $5::timestamptz[]) AS w (lo, hi)
      JOIN workflow_executions x ON x.created_at >= w.lo AND x.created_at < w.hi
     WHERE ($1::uuid IS NULL OR x.customer_id = $1) AND ($2::uuid IS NULL OR x.agent_id = $2)
       AND ($3::text IS NULL OR x.workflow_type = $3::workflow_type)
), s AS MATERIALIZED (  -- the raw executions' steps, read by execution id through their index
    SELECT st.step_name, st.status, st.retry_count, st.error_details,
           coalesce(st.completed_at, st.updated_at) AS seen_at,
           extract(epoch FROM st.completed_at - st.started_at) AS d
      FROM workflow_steps st
     WHERE st.workflow_execution_id = ANY (ARRAY(SELECT id FROM e))
       AND ($1::uuid IS NULL OR st.customer_id = $1)
), rolled AS MATERIALIZED (
    SELECT r.completed, r.failed, r.cancelled, r.timeout, r.timed, r.duration_sketch, r.under_1m, r.under_5m,
           r.under_15m, r.under_1h, r.over_1h, r.duration_min, r.duration_max, r.duration_sample
      FROM workflow_rollups r
     WHERE r.customer_id = coalesce($1::uuid, optiinfra_everyone()) AND r.agent_id = optiinfra_everyone()
       AND (r.width = 'day' AND r.bucket = ANY ($6::timestamptz[]) OR r.width = 'hour' AND r.bucket = ANY ($7::timestamptz[]))
       AND r.workflow_type IS NOT DISTINCT FROM $3::text::workflow_type
), rolled_steps AS MATERIALIZED (
    SELECT r.step_name, r.steps, r.timed, r.duration_sum, r.duration_sketch, r.total_retries, r.retried,
           r.runs, r.failed, r.duration_min, r.duration_max, r.duration_sample
      FROM workflow_step_rollups r
     WHERE r.customer_id = coalesce($1::uuid, optiinfra_everyone())
       AND (r.width = 'day' AND r.bucket = ANY ($6::timestamptz[]) OR r.width = 'hour' AND r.bucket = ANY ($7::timestamptz[]))
       AND r.workflow_type IS NOT DISTINCT FROM $3::text::workflow_type
), rolled_errors AS (
    SELECT r.source, r.error_type, r.occurrences, r.last_seen, r.message, r.message_seen
      FROM workflow_error_rollups r
     WHERE r.customer_id = coalesce($1::uuid, optiinfra_everyone())
       AND (r.width = 'day' AND r.bucket = ANY ($6::timestamptz[]) OR r.width = 'hour' AND r.bucket = ANY ($7::timestamptz[]))
       AND r.workflow_type IS NOT DISTINCT FROM $3::text::workflow_type
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
SELECT (SELECT to_jsonb(x) FROM executions x) AS executions,
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
          FROM errors r) AS error_patterns;

-- name: customer_of
-- The customer of one row: a write on a schema distributed by customer names it, to go to one shard.
SELECT customer_id FROM workflow_executions WHERE id = $1;
