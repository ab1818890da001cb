-- Back to the analytics functions of 0014 and 0026: the plan of every customer's marks, and the
-- rollups rebuilt by a SQL function.
SET LOCAL lock_timeout = '5s';

DROP FUNCTION IF EXISTS optiinfra_rollup_plan(timestamptz, timestamptz, boolean, boolean, uuid);

CREATE OR REPLACE FUNCTION optiinfra_rollup_plan(since timestamptz, until timestamptz, hours boolean, days boolean)
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
    first timestamptz;
    last timestamptz;
BEGIN
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
        SELECT DISTINCT p.hour FROM workflow_rollup_pending p WHERE p.hour >= first AND p.hour < last
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

CREATE OR REPLACE FUNCTION optiinfra_roll_up_buckets(width text, buckets timestamptz[], bucket_ends timestamptz[]) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
BEGIN ATOMIC
    INSERT INTO workflow_rollups (width, bucket, customer_id, agent_id, workflow_type, total, pending, running,
                                  completed, failed, cancelled, timeout, timed, duration_sum, duration_max,
                                  duration_sketch, under_1m, under_5m, under_15m, under_1h, over_1h,
                                  duration_min, duration_sample)
    WITH x AS MATERIALIZED (
        SELECT date_trunc(width, e.created_at) AS bucket, e.customer_id, e.agent_id, e.workflow_type, e.status,
               e.duration AS d
          FROM optiinfra_executions_in(buckets, bucket_ends, NULL, NULL, NULL) e
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
          FROM optiinfra_executions_in(buckets, bucket_ends, NULL, NULL, NULL) x
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
               x.error_details, x.seen_at
          FROM optiinfra_executions_in(buckets, bucket_ends, NULL, NULL, NULL) x
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
