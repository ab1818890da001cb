-- Analytics on a Citus cluster distributed by customer. Citus plans no SQL-language function that
-- reads a distributed table, and runs no function that reads one inside a statement it sends to a
-- worker: the analytics statements read the executions themselves now (not through
-- optiinfra_executions_in), take the window's plan as arguments (a statement of its own before
-- them, on the coordinator), and the rollups are rebuilt by a PL/pgSQL function, which Citus plans
-- statement by statement. With a customer named, each statement then goes to the one node holding
-- that customer's rows and rollups; over every customer, the raw rows are read on every node and
-- the rollups of "every customer" on the one holding them.
--
-- - optiinfra_rollup_plan(..., customer): the plan of one customer's call reads that customer's
--   marks (and those for every customer, all one server makes); null: every mark, as before. In a
--   confined transaction, the bound customer's, whichever is asked for: which hours another
--   customer changed late is theirs.
-- - optiinfra_roll_up_buckets: the same rows as 0026 made, from PL/pgSQL.
--
-- On one server the answers and the plans of the statements are the same. The four-argument
-- optiinfra_rollup_plan and optiinfra_executions_in stay for the previous release's code (the
-- former now the five-argument one for every customer).
-- depends: 0030_confine_on_citus

SET LOCAL lock_timeout = '5s';

CREATE OR REPLACE FUNCTION optiinfra_rollup_plan(since timestamptz, until timestamptz, hours boolean, days boolean,
                                      customer uuid)
RETURNS TABLE (kind text, lo timestamptz, hi timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 50
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    unit text := CASE WHEN hours THEN 'hour' ELSE 'day' END;
    step interval := CASE WHEN hours THEN interval '1 hour' ELSE interval '1 day' END;
    watermark timestamptz := (SELECT rolled_up_to FROM workflow_rollup_state);
    bound uuid := nullif(current_setting('optiinfra.customer_id', true), '')::uuid;
    first timestamptz;
    last timestamptz;
BEGIN
    IF bound IS NOT NULL THEN  -- a confined transaction reads its own customer's marks, whoever it asks for
        customer := bound;
    END IF;
    IF since IS NULL OR until IS NULL OR since >= until THEN
        RETURN;
    END IF;
    first := date_trunc(unit, since);
    IF first < since THEN
        first := first + step;
    END IF;
    last := least(date_trunc(unit, until), date_trunc(unit, watermark));  -- least() skips a null
    IF NOT (hours OR days) OR watermark IS NULL OR first >= last THEN
        RETURN QUERY SELECT 'raw', since, until;
        RETURN;
    END IF;
    RETURN QUERY
    WITH marked AS (
        SELECT DISTINCT p.hour FROM workflow_rollup_pending p
         WHERE p.hour >= first AND p.hour < last
           AND (customer IS NULL OR p.customer_id IN (customer, optiinfra_everyone()))
    ), whole_days AS (  -- whole days inside [first, last) with no marked hour
        SELECT d FROM generate_series(date_trunc('day', first), last - interval '1 day', interval '1 day') d
         WHERE days AND d >= first AND d + interval '1 day' <= last
           AND NOT EXISTS (SELECT FROM marked m WHERE m.hour >= d AND m.hour < d + interval '1 day')
    ), units AS (  -- the hours (or marked days) left
        SELECT u FROM generate_series(first, last - step, step) u
         WHERE NOT EXISTS (SELECT FROM whole_days w WHERE u >= w.d AND u < w.d + interval '1 day')
    )
    SELECT 'raw', since, first WHERE since < first
    UNION ALL
    SELECT 'raw', last, until WHERE last < until
    UNION ALL
    SELECT 'day', d, d + interval '1 day' FROM whole_days
    UNION ALL
    SELECT CASE WHEN hours AND NOT EXISTS (SELECT FROM marked m WHERE m.hour = u) THEN 'hour' ELSE 'raw' END,
           u, u + step
      FROM units;
END;
$$;

REVOKE ALL ON FUNCTION optiinfra_rollup_plan(timestamptz, timestamptz, boolean, boolean, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_rollup_plan(timestamptz, timestamptz, boolean, boolean, uuid)
    TO optiinfra_app, optiinfra_tenant;

CREATE OR REPLACE FUNCTION optiinfra_rollup_plan(since timestamptz, until timestamptz, hours boolean, days boolean)
RETURNS TABLE (kind text, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
ROWS 50
SET search_path = pg_catalog, public, pg_temp
AS $$ SELECT p.kind, p.lo, p.hi FROM optiinfra_rollup_plan(since, until, hours, days, NULL) p $$;

-- Rebuild the rollup rows of `buckets` (hours or days, by `width`; each ends at the same place in
-- `bucket_ends`) from the raw tables. Day rows are kept per customer and agent, per customer, per
-- agent and overall (steps and errors: per customer and overall); hour rows overall only; each per
-- workflow type and for every type.
CREATE OR REPLACE FUNCTION optiinfra_roll_up_buckets(width text, buckets timestamptz[], bucket_ends timestamptz[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
BEGIN
    INSERT INTO workflow_rollups (width, bucket, customer_id, agent_id, workflow_type, total, pending, running,
                                  completed, failed, cancelled, timeout, timed, duration_sum, duration_max,
                                  duration_sketch, under_1m, under_5m, under_15m, under_1h, over_1h,
                                  duration_min, duration_sample)
    WITH x AS MATERIALIZED (
        SELECT date_trunc(width, e.created_at) AS bucket, e.customer_id, e.agent_id, e.workflow_type, e.status,
               CASE WHEN e.status IN ('completed', 'failed', 'cancelled', 'timeout')
                    THEN extract(epoch FROM e.completed_at - e.started_at) END AS d
          FROM unnest(buckets, bucket_ends) AS w (lo, hi)
          JOIN workflow_executions e ON e.created_at >= w.lo AND e.created_at < w.hi
    ), m AS (
        SELECT bucket,
               CASE WHEN grouping(customer_id) = 1 THEN optiinfra_everyone() ELSE customer_id END AS c,
               CASE WHEN grouping(agent_id) = 1 THEN optiinfra_everyone() ELSE agent_id END AS a,
               CASE WHEN grouping(workflow_type) = 0 THEN workflow_type END AS t,
               count(*) AS total,
               count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'running') AS running,
               count(*) FILTER (WHERE status = 'completed') AS completed,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
               count(*) FILTER (WHERE status = 'timeout') AS timeout,
               count(d) AS timed, coalesce(sum(d), 0) AS duration_sum, max(d)::float8 AS duration_max,
               min(d)::float8 AS duration_min,
               CASE WHEN count(d) <= 100
                    THEN coalesce(array_agg(d::float8) FILTER (WHERE d IS NOT NULL), '{}') END AS duration_sample,
               count(*) FILTER (WHERE d < 60) AS under_1m,
               count(*) FILTER (WHERE d >= 60 AND d < 300) AS under_5m,
               count(*) FILTER (WHERE d >= 300 AND d < 900) AS under_15m,
               count(*) FILTER (WHERE d >= 900 AND d < 3600) AS under_1h,
               count(*) FILTER (WHERE d >= 3600) AS over_1h
          FROM x
         GROUP BY bucket, CUBE (customer_id, agent_id, workflow_type)
        HAVING width = 'day' OR (grouping(customer_id) = 1 AND grouping(agent_id) = 1)
    ), k AS (
        SELECT bucket, c, a, t, jsonb_object_agg(key, n) AS sketch
          FROM (SELECT bucket, optiinfra_sketch_key(d) AS key, count(*) AS n,
                       CASE WHEN grouping(customer_id) = 1 THEN optiinfra_everyone() ELSE customer_id END AS c,
                       CASE WHEN grouping(agent_id) = 1 THEN optiinfra_everyone() ELSE agent_id END AS a,
                       CASE WHEN grouping(workflow_type) = 0 THEN workflow_type END AS t
                  FROM x WHERE d IS NOT NULL
                 GROUP BY bucket, optiinfra_sketch_key(d), CUBE (customer_id, agent_id, workflow_type)
                HAVING width = 'day' OR (grouping(customer_id) = 1 AND grouping(agent_id) = 1)) per_key
         GROUP BY bucket, c, a, t
    )
    SELECT width, m.bucket, m.c, m.a, m.t, m.total, m.pending, m.running, m.completed, m.failed,
           m.cancelled, m.timeout, m.timed, m.duration_sum, m.duration_max, coalesce(k.sketch, '{}'),
           m.under_1m, m.under_5m, m.under_15m, m.under_1h, m.over_1h, m.duration_min, m.duration_sample
      FROM m
      LEFT JOIN k ON k.bucket = m.bucket AND k.c = m.c AND k.a = m.a AND k.t IS NOT DISTINCT FROM m.t;

    INSERT INTO workflow_step_rollups (width, bucket, customer_id, workflow_type, step_name, steps, timed,
                                       duration_sum, duration_sketch, total_retries, retried, runs, failed,
                                       duration_min, duration_max, duration_sample)
    WITH e AS MATERIALIZED (
        SELECT x.id, date_trunc(width, x.created_at) AS bucket, x.customer_id, x.workflow_type
          FROM unnest(buckets, bucket_ends) AS w (lo, hi)
          JOIN workflow_executions x ON x.created_at >= w.lo AND x.created_at < w.hi
    ), s AS MATERIALIZED (  -- the steps by their execution id: an index probe each, whatever the planner guesses
        SELECT e.bucket, e.customer_id, e.workflow_type, st.step_name, st.status, st.retry_count,
               extract(epoch FROM st.completed_at - st.started_at) AS d
          FROM workflow_steps st JOIN e ON e.id = st.workflow_execution_id
         WHERE st.workflow_execution_id = ANY (ARRAY(SELECT id FROM e))
    ), m AS (
        SELECT bucket, step_name,
               CASE WHEN grouping(customer_id) = 1 THEN optiinfra_everyone() ELSE customer_id END AS c,
               CASE WHEN grouping(workflow_type) = 0 THEN workflow_type END AS t,
               count(*) AS steps, count(d) AS timed, coalesce(sum(d), 0) AS duration_sum,
               min(d)::float8 AS duration_min, max(d)::float8 AS duration_max,
               CASE WHEN count(d) <= 100
                    THEN coalesce(array_agg(d::float8) FILTER (WHERE d IS NOT NULL), '{}') END AS duration_sample,
               sum(retry_count) AS total_retries, count(*) FILTER (WHERE retry_count > 0) AS retried,
               count(*) FILTER (WHERE status IN ('completed', 'failed')) AS runs,
               count(*) FILTER (WHERE status = 'failed') AS failed
          FROM s
         GROUP BY bucket, step_name, CUBE (customer_id, workflow_type)
        HAVING width = 'day' OR grouping(customer_id) = 1
    ), k AS (
        SELECT bucket, step_name, c, t, jsonb_object_agg(key, n) AS sketch
          FROM (SELECT bucket, step_name, optiinfra_sketch_key(d) AS key, count(*) AS n,
                       CASE WHEN grouping(customer_id) = 1 THEN optiinfra_everyone() ELSE customer_id END AS c,
                       CASE WHEN grouping(workflow_type) = 0 THEN workflow_type END AS t
                  FROM s WHERE d IS NOT NULL
                 GROUP BY bucket, step_name, optiinfra_sketch_key(d), CUBE (customer_id, workflow_type)
                HAVING width = 'day' OR grouping(customer_id) = 1) per_key
         GROUP BY bucket, step_name, c, t
    )
    SELECT width, m.bucket, m.c, m.t, m.step_name, m.steps, m.timed, m.duration_sum,
           coalesce(k.sketch, '{}'), m.total_retries, m.retried, m.runs, m.failed, m.duration_min, m.duration_max,
           m.duration_sample
      FROM m
      LEFT JOIN k ON k.bucket = m.bucket AND k.step_name = m.step_name AND k.c = m.c
                 AND k.t IS NOT DISTINCT FROM m.t;

    INSERT INTO workflow_error_rollups (width, bucket, customer_id, workflow_type, source, error_type, occurrences,
                                        last_seen, message, message_seen)
    WITH e AS MATERIALIZED (
        SELECT date_trunc(width, x.created_at) AS bucket, x.id, x.customer_id, x.workflow_type, x.status,
               x.error_details, coalesce(x.completed_at, x.updated_at) AS seen_at
          FROM unnest(buckets, bucket_ends) AS w (lo, hi)
          JOIN workflow_executions x ON x.created_at >= w.lo AND x.created_at < w.hi
    ), failures AS (
        SELECT bucket, customer_id, workflow_type, 'execution' AS source, error_details, seen_at
          FROM e WHERE status = 'failed'
        UNION ALL
        SELECT e.bucket, e.customer_id, e.workflow_type, 'step', st.error_details,
               coalesce(st.completed_at, st.updated_at)
          FROM workflow_steps st JOIN e ON e.id = st.workflow_execution_id
         WHERE st.workflow_execution_id = ANY (ARRAY(SELECT id FROM e)) AND st.status = 'failed'
    ), f AS (
        SELECT bucket, customer_id, workflow_type, source, seen_at,
               coalesce(error_details->>'error_type', 'unspecified') AS error_type,
               coalesce(error_details->>'error_message', error_details->>'error') AS message
          FROM failures
    )
    SELECT width, bucket, CASE WHEN grouping(customer_id) = 1 THEN optiinfra_everyone() ELSE customer_id END,
           CASE WHEN grouping(workflow_type) = 0 THEN workflow_type END, source, error_type, count(*),
           max(seen_at), (array_agg(message ORDER BY seen_at DESC) FILTER (WHERE message IS NOT NULL))[1],
           max(seen_at) FILTER (WHERE message IS NOT NULL)
      FROM f
     GROUP BY bucket, source, error_type, CUBE (customer_id, workflow_type)
    HAVING width = 'day' OR grouping(customer_id) = 1;
END;
$$;
