-- agent_metrics back to one plain table, from whatever state the conversion reached. Once the
-- partitioned table is in place this copies every point into a new table while holding the old
-- one locked: plan for the time a copy of the table takes.
DO $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'public.agent_metrics'::regclass) = 'p' THEN
        LOCK TABLE agent_metrics IN ACCESS EXCLUSIVE MODE;
        CREATE TABLE agent_metrics_plain (
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
            CONSTRAINT agent_metrics_metric_name_check CHECK (btrim(metric_name) <> ''),
            CONSTRAINT agent_metrics_metric_value_check
                CHECK (metric_value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8))
        );
        INSERT INTO agent_metrics_plain (id, agent_id, metric_name, metric_type, metric_value, metric_unit,
                                         collection_timestamp, metadata, created_at, updated_at)
        SELECT id, agent_id, metric_name, metric_type, metric_value, metric_unit,
               collection_timestamp, metadata, created_at, updated_at
          FROM agent_metrics;
        DROP TABLE agent_metrics;
        ALTER TABLE agent_metrics_plain RENAME TO agent_metrics;
        ALTER TABLE agent_metrics ADD CONSTRAINT agent_metrics_pkey PRIMARY KEY (id);
        ALTER TABLE agent_metrics ADD CONSTRAINT agent_metrics_agent_id_fkey FOREIGN KEY (agent_id)
            REFERENCES agents (id) ON DELETE CASCADE;
        CREATE INDEX agent_metrics_agent_id_metric_name_collection_timestamp_idx
            ON agent_metrics (agent_id, metric_name, collection_timestamp);
        CREATE INDEX agent_metrics_collection_timestamp_idx ON agent_metrics (collection_timestamp);
        CREATE INDEX agent_metrics_metadata_idx ON agent_metrics USING gin (metadata jsonb_path_ops);
        CREATE TRIGGER agent_metrics_set_updated_at BEFORE UPDATE ON agent_metrics
            FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
        GRANT SELECT, INSERT, UPDATE, DELETE ON agent_metrics TO optiinfra_app;
        GRANT SELECT, INSERT ON agent_metrics TO optiinfra_tenant;
    ELSE  -- stopped before the swap
        DROP TABLE IF EXISTS agent_metrics_partitioned;
        DROP INDEX IF EXISTS agent_metrics_legacy_pkey;
        ALTER TABLE agent_metrics DROP CONSTRAINT IF EXISTS agent_metrics_legacy_range;
    END IF;
    DROP FUNCTION IF EXISTS optiinfra_maintain_metric_partitions(integer);
    DROP FUNCTION IF EXISTS optiinfra_create_metric_partitions(date, date);
    DROP FUNCTION IF EXISTS optiinfra_drop_metric_partitions(timestamptz);
    DROP FUNCTION IF EXISTS optiinfra_metric_partitions();
END
$$;
