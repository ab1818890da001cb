-- agent_metrics partition upkeep on a Citus cluster (agent_metrics distributed by agent_id, each
-- daily partition with it), and a turn that waits for the one before it:
-- - a partition made on the cluster is distributed as it is attached, a statement Citus refuses
--   after a multi-shard one ran in parallel in the same transaction ("cannot modify table ...
--   because there was a parallel operation on a distributed table": agent_metrics has a foreign
--   key to a reference table, agents): where agent_metrics is distributed, the upkeep runs its
--   multi-shard statements one connection per node (citus.multi_shard_modify_mode = sequential),
--   and the points it moved out of the default partition, copied into the shards as the partition
--   is distributed, are removed from the coordinator's own copy of the table; and maintain()
--   makes each partition in a transaction of its own (optiinfra_metric_days_wanted);
-- - maintain() and purge take turns at the partitions (an advisory lock). The lock_timeout of 0013
--   (2 s, so that no writer queues long behind the upkeep's table locks) bounded the wait for the
--   turn too, so one maintain() failed while another created more than 2 s of partitions (many
--   days, or any on a cluster, where each is made on every shard): the turn is now waited for
--   under the caller's statement_timeout, the table locks under the 2 s as before.
-- On one server the partitions are made as before. Nothing is rewritten, nothing locked but the
-- functions' catalog rows.
-- depends: 0027_transitions_by_node

SET LOCAL lock_timeout = '5s';

-- Whether agent_metrics is a distributed table (a Citus cluster after `distribute`); Citus's
-- catalog is read only where the extension is installed.
CREATE OR REPLACE FUNCTION optiinfra_metrics_distributed() RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = 'public.agent_metrics'::regclass);
END;
$$;
REVOKE ALL ON FUNCTION optiinfra_metrics_distributed() FROM PUBLIC;

-- The days maintain() makes partitions for on a cluster, oldest first: from today to `days_ahead`
-- days ahead, those without one, and each day the default partition caught. There each is made
-- in a transaction of its own (optiinfra_create_metric_partitions(day, day)): while a partition
-- is attached, the default partition is locked, and Citus locks every partition for each write
-- of points, so every metric write waits for the transaction that makes one.
CREATE OR REPLACE FUNCTION optiinfra_metric_days_wanted(days_ahead integer)
RETURNS SETOF date
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    IF days_ahead IS NULL OR days_ahead < 0 OR days_ahead > 366 THEN
        RAISE EXCEPTION 'days_ahead must be between 0 and 366, got %', days_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT d.day FROM (
        SELECT g::date AS day FROM generate_series(today, today + days_ahead, interval '1 day') g
         WHERE NOT EXISTS (SELECT FROM optiinfra_metric_partitions() p
                            WHERE NOT p.is_default
                              AND coalesce(p.lower_bound, '-infinity') < (g::date + 1)::timestamptz
                              AND coalesce(p.upper_bound, 'infinity') > g::date::timestamptz)
        UNION
        SELECT DISTINCT (collection_timestamp AT TIME ZONE 'UTC')::date FROM agent_metrics_default
    ) d ORDER BY d.day;
END
$$;
REVOKE ALL ON FUNCTION optiinfra_metric_days_wanted(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_metric_days_wanted(integer) TO optiinfra_app;

-- 0013's, on a cluster too; the turn waited for, the table locks under 2 s.
CREATE OR REPLACE FUNCTION optiinfra_create_metric_partitions(first_day date, last_day date)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
SET lock_timeout = '2s'
AS $$
DECLARE
    day date;
    lo timestamptz;
    hi timestamptz;
    name text;
    created integer := 0;
    distributed boolean := optiinfra_metrics_distributed();
BEGIN
    IF distributed THEN  -- before any multi-shard statement of the transaction
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
    PERFORM set_config('lock_timeout', '0', true);  -- the turn: as long as the caller waits
    PERFORM pg_advisory_xact_lock(hashtext('optiinfra_metric_partitions'));  -- one process at a time
    PERFORM set_config('lock_timeout', '2s', true);
    IF last_day - first_day > 3660 THEN
        RAISE EXCEPTION 'at most 3,660 days of partitions at once, asked for % to %', first_day, last_day
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR day IN SELECT d::date FROM generate_series(first_day, last_day, interval '1 day') d LOOP
        lo := day::timestamptz;
        hi := (day + 1)::timestamptz;
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM optiinfra_metric_partitions() p
             WHERE NOT p.is_default
               AND coalesce(p.lower_bound, '-infinity') < hi
               AND coalesce(p.upper_bound, 'infinity') > lo);
        name := format('agent_metrics_p%s', to_char(day, 'YYYYMMDD'));
        EXECUTE format('CREATE TABLE public.%I (LIKE agent_metrics INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
        EXECUTE format('WITH moved AS (DELETE FROM agent_metrics_default WHERE collection_timestamp >= %L '
                       'AND collection_timestamp < %L RETURNING *) INSERT INTO public.%I SELECT * FROM moved',
                       lo, hi, name);
        EXECUTE format('ALTER TABLE agent_metrics ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                       name, lo, hi);
        IF distributed THEN  -- attached, the partition is distributed and its points copied into its shards
            PERFORM truncate_local_data_after_distributing_table(format('public.%I', name)::regclass);
        END IF;
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

CREATE OR REPLACE FUNCTION optiinfra_drop_metric_partitions(cutoff timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
    doomed record;
    points bigint;
    dropped bigint := 0;
BEGIN
    IF optiinfra_metrics_distributed() THEN
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
    PERFORM set_config('lock_timeout', '0', true);
    PERFORM pg_advisory_xact_lock(hashtext('optiinfra_metric_partitions'));
    PERFORM set_config('lock_timeout', '2s', true);
    FOR doomed IN SELECT p.partition FROM optiinfra_metric_partitions() p
                   WHERE NOT p.is_default AND p.upper_bound <= cutoff
                   ORDER BY p.upper_bound LOOP
        EXECUTE format('SELECT count(*) FROM %s', doomed.partition) INTO points;
        EXECUTE format('DROP TABLE %s', doomed.partition);
        dropped := dropped + points;
    END LOOP;
    RETURN dropped;
END
$$;

CREATE OR REPLACE FUNCTION optiinfra_maintain_metric_partitions(days_ahead integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    caught date;
    created integer;
BEGIN
    IF days_ahead IS NULL OR days_ahead < 0 OR days_ahead > 366 THEN
        RAISE EXCEPTION 'days_ahead must be between 0 and 366, got %', days_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF optiinfra_metrics_distributed() THEN  -- for the read of the default partition between the days made
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
    created := optiinfra_create_metric_partitions(today, today + days_ahead);
    FOR caught IN SELECT DISTINCT (collection_timestamp AT TIME ZONE 'UTC')::date FROM agent_metrics_default LOOP
        created := created + optiinfra_create_metric_partitions(caught, caught);
    END LOOP;
    RETURN created;
END
$$;
