-- Workflow analytics from rollups: per UTC day (and, over every customer, per hour) the counts,
-- exact duration sums and a mergeable duration sketch of the executions created then, the same
-- of their steps, and their error patterns. statistics(), performance() and trend() read whole
-- days and hours from here and only the rest of their window from the raw tables.
--
-- How the rollups stay exact: `Store.maintain()` rolls up closed hours and advances a watermark
-- (`workflow_rollup_state.rolled_up_to`). A change to an execution or step of an hour already
-- rolled up (a late completion, a retry, an imported or purged row) marks that hour in
-- `workflow_rollup_pending`, in the writer's own transaction; readers take a marked hour from
-- the raw tables until the next maintain() rolls it up again. A writer holds a shared advisory
-- lock on each hour it writes until it commits, and maintain() rolls up an hour only when it can
-- take that lock exclusively, so no write slips between the two.
SET LOCAL lock_timeout = '5s';

CREATE TABLE workflow_rollup_state (
    singleton     boolean PRIMARY KEY DEFAULT true,
    -- every hour before this is rolled up, but for the hours marked pending; null: none yet
    rolled_up_to  timestamptz,
    CONSTRAINT workflow_rollup_state_singleton_check CHECK (singleton)
);
INSERT INTO workflow_rollup_state DEFAULT VALUES;

-- Hours (UTC) changed after they were rolled up; appended by writers, consumed by maintain().
CREATE TABLE workflow_rollup_pending (
    hour  timestamptz NOT NULL,
    CONSTRAINT workflow_rollup_pending_hour_check CHECK (hour = date_trunc('hour', hour, 'UTC'))
);
CREATE INDEX workflow_rollup_pending_hour_idx ON workflow_rollup_pending (hour);

-- The all-zero uuid stands for "every customer" / "every agent" in the rollups' keys.
CREATE FUNCTION optiinfra_everyone() RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '00000000-0000-0000-0000-000000000000'::uuid;

-- The duration sketch: a duration of d > 0 seconds counts in bucket ceil(log_1.04(d)), zero in
-- bucket "z". Estimating a bucket by 2 * 1.04^k / 2.04 is within 2% of every value it holds.
CREATE FUNCTION optiinfra_sketch_key(seconds numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN seconds IS NULL THEN NULL
            WHEN seconds <= 0 THEN 'z'
            ELSE ceil(ln(seconds::float8) / ln(1.04::float8))::integer::text END;

-- The executions created in the ranges [los[i], his[i]), optionally of one customer, agent and
-- workflow type, with their duration in seconds (finished ones with both timestamps): what the
-- rollups count, and the raw side of every analytics query. Inlined into the calling query, under
-- the caller's row-level security.
CREATE FUNCTION optiinfra_executions_in(los timestamptz[], his timestamptz[], customer uuid, agent uuid, kind text)
RETURNS TABLE (id uuid, customer_id uuid, agent_id uuid, workflow_type workflow_type, status workflow_status,
               created_at timestamptz, error_details jsonb, seen_at timestamptz, duration numeric)
LANGUAGE sql STABLE
AS $$
    SELECT x.id, x.customer_id, x.agent_id, x.workflow_type, x.status, x.created_at, x.error_details,
           coalesce(x.completed_at, x.updated_at),
           CASE WHEN x.status IN ('completed', 'failed', 'cancelled', 'timeout')
                THEN extract(epoch FROM x.completed_at - x.started_at) END
      FROM unnest(los, his) AS w (lo, hi)
      JOIN workflow_executions x ON x.created_at >= w.lo AND x.created_at < w.hi
     WHERE (customer IS NULL OR x.customer_id = customer)
       AND (agent IS NULL OR x.agent_id = agent)
       AND (kind IS NULL OR x.workflow_type = kind::workflow_type)
$$;

-- Executions: day rows per (customer, agent), per customer, per agent and overall; hour rows
-- overall. Each per workflow type and for every type at once (workflow_type null).
CREATE TABLE workflow_rollups (
    width            text NOT NULL,
    bucket           timestamptz NOT NULL,
    customer_id      uuid NOT NULL,
    agent_id         uuid NOT NULL,
    workflow_type    workflow_type,  -- null: every type
    total            bigint NOT NULL,
    pending          bigint NOT NULL,
    running          bigint NOT NULL,
    completed        bigint NOT NULL,
    failed           bigint NOT NULL,
    cancelled        bigint NOT NULL,
    timeout          bigint NOT NULL,
    timed            bigint NOT NULL,  -- finished, with both timestamps: what the durations cover
    duration_sum     numeric NOT NULL,  -- seconds, exact
    duration_max     double precision,
    duration_sketch  jsonb NOT NULL,
    under_1m         bigint NOT NULL,
    under_5m         bigint NOT NULL,
    under_15m        bigint NOT NULL,
    under_1h         bigint NOT NULL,
    over_1h          bigint NOT NULL,
    CONSTRAINT workflow_rollups_key UNIQUE NULLS NOT DISTINCT (width, customer_id, agent_id, bucket, workflow_type),
    CONSTRAINT workflow_rollups_width_check CHECK (width IN ('hour', 'day'))
);

-- Steps, by the hour or day their execution was created: day rows per customer and overall; hour
-- rows overall; per workflow type and for every type.
CREATE TABLE workflow_step_rollups (
    width            text NOT NULL,
    bucket           timestamptz NOT NULL,
    customer_id      uuid NOT NULL,
    workflow_type    workflow_type,  -- null: every type
    step_name        text NOT NULL,
    steps            bigint NOT NULL,
    timed            bigint NOT NULL,
    duration_sum     numeric NOT NULL,
    duration_sketch  jsonb NOT NULL,
    total_retries    bigint NOT NULL,
    retried          bigint NOT NULL,
    runs             bigint NOT NULL,  -- completed or failed
    failed           bigint NOT NULL,
    CONSTRAINT workflow_step_rollups_key
        UNIQUE NULLS NOT DISTINCT (width, customer_id, bucket, workflow_type, step_name),
    CONSTRAINT workflow_step_rollups_width_check CHECK (width IN ('hour', 'day'))
);

-- Failures of executions and steps by error_type, with the latest message; same keys as the steps'.
CREATE TABLE workflow_error_rollups (
    width          text NOT NULL,
    bucket         timestamptz NOT NULL,
    customer_id    uuid NOT NULL,
    workflow_type  workflow_type,  -- null: every type
    source         text NOT NULL,
    error_type     text NOT NULL,
    occurrences    bigint NOT NULL,
    last_seen      timestamptz NOT NULL,
    message        text,
    message_seen   timestamptz,
    CONSTRAINT workflow_error_rollups_width_check CHECK (width IN ('hour', 'day')),
    CONSTRAINT workflow_error_rollups_source_check CHECK (source IN ('execution', 'step'))
);
-- error types are free text: keyed by their hash so that a long one still fits the index
CREATE UNIQUE INDEX workflow_error_rollups_key
    ON workflow_error_rollups (width, customer_id, bucket, workflow_type, source, md5(error_type)) NULLS NOT DISTINCT;

-- A customer's rows only, like the tables they come from (the all-customer rows: nobody's).
ALTER TABLE workflow_rollups ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_rollups_customer_isolation ON workflow_rollups
    USING (customer_id = optiinfra_customer_id());
ALTER TABLE workflow_step_rollups ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_step_rollups_customer_isolation ON workflow_step_rollups
    USING (customer_id = optiinfra_customer_id());
ALTER TABLE workflow_error_rollups ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_error_rollups_customer_isolation ON workflow_error_rollups
    USING (customer_id = optiinfra_customer_id());
GRANT SELECT ON workflow_rollups, workflow_step_rollups, workflow_error_rollups TO optiinfra_app, optiinfra_tenant;

-- Confinement now also guards the rollups: a role for which their row-level security would not
-- hold is refused like one for which the tables' would not (0010).
CREATE OR REPLACE FUNCTION optiinfra_confine(customer uuid, local boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF customer IS NULL THEN
        RAISE EXCEPTION 'optiinfra_confine: no customer given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM set_config('role', 'optiinfra_tenant', local);
    PERFORM set_config('optiinfra.customer_id', customer::text, local);
    IF NOT (row_security_active('public.customers') AND row_security_active('public.events')
            AND row_security_active('public.recommendations') AND row_security_active('public.approvals')
            AND row_security_active('public.optimizations') AND row_security_active('public.workflow_executions')
            AND row_security_active('public.workflow_steps') AND row_security_active('public.workflow_artifacts')
            AND row_security_active('public.workflow_transitions') AND row_security_active('public.agent_configs')
            AND row_security_active('public.agent_states') AND row_security_active('public.workflow_rollups')
            AND row_security_active('public.workflow_step_rollups')
            AND row_security_active('public.workflow_error_rollups')) THEN
        RAISE EXCEPTION 'row-level security does not hold for optiinfra_tenant: a confined transaction would see every customer'
            USING ERRCODE = 'OI001',
                  HINT = 'optiinfra_tenant must not be a superuser, bypass row-level security, or own (or be a member of the owner of) the tables';
    END IF;
END;
$$;

-- Record that the executions of `hours` changed. An hour not rolled up yet needs no mark: the
-- shared lock held until commit makes maintain() wait for this write before rolling it up.
-- Writers in other isolation levels, and statements touching many hours, mark every hour.
CREATE FUNCTION optiinfra_rollup_touch(hours timestamptz[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    h timestamptz;
    watermark timestamptz;
BEGIN
    IF hours IS NULL OR cardinality(hours) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(hours) <= 32 AND current_setting('transaction_isolation') = 'read committed' THEN
        FOREACH h IN ARRAY hours LOOP
            PERFORM pg_advisory_xact_lock_shared(hashtext('optiinfra_rollup_hour'), (extract(epoch FROM h) / 3600)::integer);
        END LOOP;
        -- read committed: this statement sees a maintain() that committed while we waited
        SELECT rolled_up_to INTO watermark FROM workflow_rollup_state;
        INSERT INTO workflow_rollup_pending (hour) SELECT x FROM unnest(hours) x WHERE x < watermark;
    ELSE
        INSERT INTO workflow_rollup_pending (hour) SELECT x FROM unnest(hours) x;
    END IF;
END;
$$;

CREATE FUNCTION optiinfra_rollup_touch_executions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM optiinfra_rollup_touch(ARRAY(SELECT DISTINCT date_trunc('hour', created_at, 'UTC') FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM optiinfra_rollup_touch(ARRAY(
            SELECT date_trunc('hour', created_at, 'UTC') FROM new_rows
             UNION SELECT date_trunc('hour', created_at, 'UTC') FROM old_rows));
    ELSE
        PERFORM optiinfra_rollup_touch(ARRAY(SELECT DISTINCT date_trunc('hour', created_at, 'UTC') FROM old_rows));
    END IF;
    RETURN NULL;
END;
$$;

-- A step counts in the hour its execution was created. Steps deleted with their execution are
-- covered by the execution's own mark (the join finds it gone).
CREATE FUNCTION optiinfra_rollup_touch_steps() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM optiinfra_rollup_touch(ARRAY(
            SELECT DISTINCT date_trunc('hour', e.created_at, 'UTC')
              FROM workflow_executions e WHERE e.id IN (SELECT workflow_execution_id FROM new_rows)));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM optiinfra_rollup_touch(ARRAY(
            SELECT DISTINCT date_trunc('hour', e.created_at, 'UTC')
              FROM workflow_executions e
             WHERE e.id IN (SELECT workflow_execution_id FROM new_rows
                            UNION SELECT workflow_execution_id FROM old_rows)));
    ELSE
        PERFORM optiinfra_rollup_touch(ARRAY(
            SELECT DISTINCT date_trunc('hour', e.created_at, 'UTC')
              FROM workflow_executions e WHERE e.id IN (SELECT workflow_execution_id FROM old_rows)));
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER workflow_executions_rollup_insert AFTER INSERT ON workflow_executions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION optiinfra_rollup_touch_executions();
CREATE TRIGGER workflow_executions_rollup_update AFTER UPDATE ON workflow_executions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION optiinfra_rollup_touch_executions();
CREATE TRIGGER workflow_executions_rollup_delete AFTER DELETE ON workflow_executions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION optiinfra_rollup_touch_executions();
CREATE TRIGGER workflow_steps_rollup_insert AFTER INSERT ON workflow_steps
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION optiinfra_rollup_touch_steps();
CREATE TRIGGER workflow_steps_rollup_update AFTER UPDATE ON workflow_steps
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION optiinfra_rollup_touch_steps();
CREATE TRIGGER workflow_steps_rollup_delete AFTER DELETE ON workflow_steps
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION optiinfra_rollup_touch_steps();

-- Emptying the executions (TRUNCATE, which row and statement triggers do not see) empties the
-- rollups: the next maintain() starts over from the oldest execution.
CREATE FUNCTION optiinfra_rollup_reset() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    DELETE FROM workflow_rollups;
    DELETE FROM workflow_step_rollups;
    DELETE FROM workflow_error_rollups;
    DELETE FROM workflow_rollup_pending;
    UPDATE workflow_rollup_state SET rolled_up_to = NULL;
    RETURN NULL;
END;
$$;

CREATE TRIGGER workflow_executions_rollup_truncate AFTER TRUNCATE ON workflow_executions
    FOR EACH STATEMENT EXECUTE FUNCTION optiinfra_rollup_reset();
CREATE TRIGGER workflow_steps_rollup_truncate AFTER TRUNCATE ON workflow_steps
    FOR EACH STATEMENT EXECUTE FUNCTION optiinfra_rollup_reset();

-- Where an analytics call over [since, until) reads from: whole days ('day', with `days`) and
-- whole hours ('hour', with `hours`) that are rolled up and not pending, and the raw tables
-- ('raw') for the rest of the window.
CREATE FUNCTION optiinfra_rollup_plan(since timestamptz, until timestamptz, hours boolean, days boolean)
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

-- Rebuild the rollup rows of `buckets` (hours or days, by `width`; each ends at the same place in
-- `bucket_ends`) from the raw tables. Day rows
-- are kept per customer and agent, per customer, per agent and overall (steps and errors: per
-- customer and overall); hour rows overall only; each per workflow type and for every type.
CREATE FUNCTION optiinfra_roll_up_buckets(width text, buckets timestamptz[], bucket_ends timestamptz[]) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
BEGIN ATOMIC
    INSERT INTO workflow_rollups (width, bucket, customer_id, agent_id, workflow_type, total, pending, running,
                                  completed, failed, cancelled, timeout, timed, duration_sum, duration_max,
                                  duration_sketch, under_1m, under_5m, under_15m, under_1h, over_1h)
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
           m.under_1m, m.under_5m, m.under_15m, m.under_1h, m.over_1h
      FROM m
      LEFT JOIN k ON k.bucket = m.bucket AND k.c = m.c AND k.a = m.a AND k.t IS NOT DISTINCT FROM m.t;

    INSERT INTO workflow_step_rollups (width, bucket, customer_id, workflow_type, step_name, steps, timed,
                                       duration_sum, duration_sketch, total_retries, retried, runs, failed)
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
           coalesce(k.sketch, '{}'), m.total_retries, m.retried, m.runs, m.failed
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

-- Roll up at most `max_hours` hours: the closed hours after the watermark (advancing it) and the
-- hours marked pending. Returns how many hours it rolled up; 0 when there is nothing to do (or
-- the next hour has a writer in flight). One call at a time (the others wait for it); each call is
-- one short transaction.
CREATE FUNCTION optiinfra_roll_up(max_hours integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
SET lock_timeout = '10s'
AS $$
DECLARE
    watermark timestamptz;
    next_mark timestamptz;
    closed timestamptz := date_trunc('hour', now());
    start timestamptz;
    todo timestamptz[];
    rolled integer;
    h timestamptz;
BEGIN
    IF max_hours IS NULL OR max_hours < 1 THEN
        RAISE EXCEPTION 'max_hours must be at least 1, got %', max_hours USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('optiinfra_roll_up'));
    INSERT INTO workflow_rollup_state DEFAULT VALUES ON CONFLICT DO NOTHING;
    SELECT rolled_up_to INTO watermark FROM workflow_rollup_state FOR UPDATE;

    -- the next closed hours after the watermark (the first run starts at the oldest execution's);
    -- every one is locked below, empty or not, so that no writer of it is still in flight
    IF watermark IS NULL THEN
        start := (SELECT date_trunc('hour', min(created_at)) FROM workflow_executions);
    END IF;
    start := least(coalesce(watermark, start, closed), closed);
    next_mark := least(closed, start + make_interval(hours => max_hours));
    -- an hour a writer is still in (it holds the hour's lock shared) stops the batch there: that
    -- hour and the ones after it wait for the next run. Nothing here waits, so nothing deadlocks.
    todo := '{}';
    FOR h IN SELECT generate_series(start, next_mark - interval '1 hour', interval '1 hour') LOOP
        IF NOT pg_try_advisory_xact_lock(hashtext('optiinfra_rollup_hour'), (extract(epoch FROM h) / 3600)::integer) THEN
            next_mark := h;
            EXIT;
        END IF;
        todo := todo || h;
    END LOOP;
    -- and the marked hours before it; what this statement sees marked is what the statements below
    -- roll up (each later statement sees at least as much); marks added since stay for next time
    WITH consumed AS (
        DELETE FROM workflow_rollup_pending
         WHERE hour IN (SELECT DISTINCT hour FROM workflow_rollup_pending
                         WHERE hour < next_mark ORDER BY hour LIMIT max_hours)
        RETURNING hour
    )
    SELECT ARRAY(SELECT DISTINCT t FROM unnest(todo || ARRAY(SELECT hour FROM consumed)) t) INTO todo;
    rolled := cardinality(todo);
    IF rolled = 0 THEN
        UPDATE workflow_rollup_state SET rolled_up_to = greatest(rolled_up_to, next_mark);
        RETURN 0;
    END IF;

    -- hour rows (every customer): delete, then rebuild from the raw rows
    DELETE FROM workflow_rollups WHERE width = 'hour' AND bucket = ANY (todo);
    DELETE FROM workflow_step_rollups WHERE width = 'hour' AND bucket = ANY (todo);
    DELETE FROM workflow_error_rollups WHERE width = 'hour' AND bucket = ANY (todo);
    PERFORM optiinfra_roll_up_buckets('hour', todo, ARRAY(SELECT t + interval '1 hour' FROM unnest(todo) t));

    -- day rows, for the days of those hours that are wholly rolled up now
    todo := ARRAY(SELECT DISTINCT date_trunc('day', t) FROM unnest(todo) t
                   WHERE date_trunc('day', t) + interval '1 day' <= next_mark);
    DELETE FROM workflow_rollups WHERE width = 'day' AND bucket = ANY (todo);
    DELETE FROM workflow_step_rollups WHERE width = 'day' AND bucket = ANY (todo);
    DELETE FROM workflow_error_rollups WHERE width = 'day' AND bucket = ANY (todo);
    PERFORM optiinfra_roll_up_buckets('day', todo, ARRAY(SELECT t + interval '1 day' FROM unnest(todo) t));

    UPDATE workflow_rollup_state SET rolled_up_to = greatest(rolled_up_to, next_mark);
    RETURN rolled;
END;
$$;
