-- The partition upkeep of 0013 back as it was (one server's; the turn under the 2 s lock timeout).
SET LOCAL lock_timeout = '5s';

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
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('optiinfra_metric_partitions'));  -- one process at a time
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
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

-- Drop the partitions whose whole range lies before `cutoff`; returns how many points went with
-- them. The rest of a purge (the partition holding the cutoff, the default partition) deletes rows.
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
    PERFORM pg_advisory_xact_lock(hashtext('optiinfra_metric_partitions'));
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

-- The upkeep maintain() runs: partitions from today to `days_ahead` days ahead, and one for each day
-- whose points the default partition caught (moved into it). Returns how many it created.
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
    created := optiinfra_create_metric_partitions(today, today + days_ahead);
    FOR caught IN SELECT DISTINCT (collection_timestamp AT TIME ZONE 'UTC')::date FROM agent_metrics_default LOOP
        created := created + optiinfra_create_metric_partitions(caught, caught);
    END LOOP;
    RETURN created;
END
$$;

DROP FUNCTION IF EXISTS optiinfra_metric_days_wanted(integer);
DROP FUNCTION IF EXISTS optiinfra_metrics_distributed();
