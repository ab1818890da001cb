-- transactional: false
--
-- agent_metrics partitioned by day of collection_timestamp (UTC), so that retention drops whole
-- days instead of deleting rows one by one.
--
-- A new partitioned table takes the place of the old one without rewriting it: the old table
-- becomes the partition of everything collected before the end of tomorrow (`agent_metrics_legacy`,
-- dropped whole by a purge once its range has aged out, or dropped here when it is empty), daily
-- partitions follow, and a default partition catches any point outside them. The steps that take
-- long (an index, a constraint check) run without blocking writers; the swap itself is one short
-- transaction. Every step can run again after a failure.
SET lock_timeout = '5s';

-- The partitions of agent_metrics, with their bounds (null: unbounded, or the default partition).
CREATE OR REPLACE FUNCTION optiinfra_metric_partitions()
RETURNS TABLE (partition regclass, lower_bound timestamptz, upper_bound timestamptz, is_default boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
SET timezone = 'UTC'
AS $$
    SELECT c.oid::regclass,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM $r$FROM \('([^']*)'\)$r$)::timestamptz,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM $r$TO \('([^']*)'\)$r$)::timestamptz,
           pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'public.agent_metrics'::regclass
$$;

-- 1. The old table's upper bound: the end of tomorrow, or of the day of its newest point if later.
--    New points beyond it are refused for the few seconds until the swap (a check constraint, added
--    without a scan and validated without blocking writes).
DO $$
DECLARE
    bound timestamptz;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'public.agent_metrics'::regclass) = 'p' THEN
        RETURN;  -- converted already
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'agent_metrics_legacy_range'
                                                 AND conrelid = 'public.agent_metrics'::regclass) THEN
        SELECT greatest(date_trunc('day', now(), 'UTC'), date_trunc('day', max(collection_timestamp), 'UTC'))
               + interval '2 days'
          INTO bound FROM agent_metrics;
        EXECUTE format('ALTER TABLE agent_metrics ADD CONSTRAINT agent_metrics_legacy_range '
                       'CHECK (collection_timestamp < %L) NOT VALID', bound);
    END IF;
END
$$;

DO $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'public.agent_metrics'::regclass) = 'r' THEN
        ALTER TABLE agent_metrics VALIDATE CONSTRAINT agent_metrics_legacy_range;
    END IF;
END
$$;

-- 2. The old table's rows keyed as the partitioned table keys them (a partitioned table's primary
--    key includes the partition key), built without blocking writes. An index left invalid by an
--    interrupted build is dropped first.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('public.agent_metrics_legacy_pkey')
                                        AND NOT indisvalid) THEN
        DROP INDEX agent_metrics_legacy_pkey;
    END IF;
END
$$;

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS agent_metrics_legacy_pkey
    ON agent_metrics (id, collection_timestamp);

-- 3. The partitioned table, its indexes (built now, on no rows) and its default partition.
CREATE TABLE IF NOT EXISTS agent_metrics_partitioned (
    id                    uuid NOT NULL DEFAULT optiinfra_uuid7(),
    agent_id              uuid NOT NULL,
    metric_name           varchar(255) NOT NULL,
    metric_type           metric_type NOT NULL DEFAULT 'gauge',
    metric_value          double precision NOT NULL,
    metric_unit           varchar(50),
    collection_timestamp  timestamptz NOT NULL DEFAULT now(),
    metadata              jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_metrics_partitioned_pkey PRIMARY KEY (id, collection_timestamp),
    CONSTRAINT agent_metrics_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    CONSTRAINT agent_metrics_metric_name_check CHECK (btrim(metric_name) <> ''),
    -- NaN and infinities poison every aggregate over the series
    CONSTRAINT agent_metrics_metric_value_check
        CHECK (metric_value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8))
) PARTITION BY RANGE (collection_timestamp);

-- (on a new, empty table: nothing to wait for; and a partitioned table's index cannot be CONCURRENTLY)
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS agent_metrics_partitioned_series_idx
    ON agent_metrics_partitioned (agent_id, metric_name, collection_timestamp);
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS agent_metrics_partitioned_collection_timestamp_idx
    ON agent_metrics_partitioned (collection_timestamp);
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS agent_metrics_partitioned_metadata_idx
    ON agent_metrics_partitioned USING gin (metadata jsonb_path_ops);

CREATE TABLE IF NOT EXISTS agent_metrics_default PARTITION OF agent_metrics_partitioned DEFAULT;

-- 4. The swap, in one short transaction: the old table becomes the partition before its bound (or,
--    empty, goes), and the partitioned table takes its name, indexes' names, grants and trigger.
DO $$
DECLARE
    bound timestamptz;
    legacy_rows boolean;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'public.agent_metrics'::regclass) = 'p' THEN
        RETURN;
    END IF;
    LOCK TABLE agent_metrics IN ACCESS EXCLUSIVE MODE;
    bound := substring(pg_get_constraintdef((SELECT oid FROM pg_constraint
                                              WHERE conname = 'agent_metrics_legacy_range'
                                                AND conrelid = 'public.agent_metrics'::regclass))
                       FROM $r$'([^']*)'$r$)::timestamptz;
    legacy_rows := EXISTS (SELECT 1 FROM agent_metrics);

    ALTER TABLE agent_metrics RENAME TO agent_metrics_legacy;
    ALTER TABLE agent_metrics_legacy DROP CONSTRAINT agent_metrics_pkey;
    ALTER TABLE agent_metrics_legacy
        ADD CONSTRAINT agent_metrics_legacy_pkey PRIMARY KEY USING INDEX agent_metrics_legacy_pkey;
    DROP TRIGGER agent_metrics_set_updated_at ON agent_metrics_legacy;
    ALTER INDEX agent_metrics_agent_id_metric_name_collection_timestamp_idx
        RENAME TO agent_metrics_legacy_series_idx;
    ALTER INDEX agent_metrics_collection_timestamp_idx RENAME TO agent_metrics_legacy_collection_timestamp_idx;
    ALTER INDEX agent_metrics_metadata_idx RENAME TO agent_metrics_legacy_metadata_idx;

    ALTER TABLE agent_metrics_partitioned RENAME TO agent_metrics;
    ALTER TABLE agent_metrics RENAME CONSTRAINT agent_metrics_partitioned_pkey TO agent_metrics_pkey;
    ALTER INDEX agent_metrics_partitioned_series_idx
        RENAME TO agent_metrics_agent_id_metric_name_collection_timestamp_idx;
    ALTER INDEX agent_metrics_partitioned_collection_timestamp_idx RENAME TO agent_metrics_collection_timestamp_idx;
    ALTER INDEX agent_metrics_partitioned_metadata_idx RENAME TO agent_metrics_metadata_idx;
    CREATE TRIGGER agent_metrics_set_updated_at BEFORE UPDATE ON agent_metrics
        FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
    GRANT SELECT, INSERT, UPDATE, DELETE ON agent_metrics TO optiinfra_app;
    GRANT SELECT, INSERT ON agent_metrics TO optiinfra_tenant;

    IF legacy_rows THEN
        -- the validated range constraint proves the rows fit: no scan
        EXECUTE format('ALTER TABLE agent_metrics ATTACH PARTITION agent_metrics_legacy '
                       'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
        ALTER TABLE agent_metrics_legacy DROP CONSTRAINT agent_metrics_legacy_range;
    ELSE
        DROP TABLE agent_metrics_legacy;
    END IF;
END
$$;

-- Create the daily partitions of [first_day, last_day] that do not exist yet. Points of such a day
-- that the default partition caught are moved into the new partition. Returns how many it created.
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

REVOKE ALL ON FUNCTION optiinfra_maintain_metric_partitions(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_maintain_metric_partitions(integer) TO optiinfra_app;
REVOKE ALL ON FUNCTION optiinfra_create_metric_partitions(date, date) FROM PUBLIC;
REVOKE ALL ON FUNCTION optiinfra_drop_metric_partitions(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_create_metric_partitions(date, date) TO optiinfra_app;
GRANT EXECUTE ON FUNCTION optiinfra_drop_metric_partitions(timestamptz) TO optiinfra_app;

-- 5. Partitions from today to a week ahead (the store's maintain() keeps them ahead).
DO $$ BEGIN PERFORM optiinfra_maintain_metric_partitions(7); END $$;

RESET lock_timeout;
