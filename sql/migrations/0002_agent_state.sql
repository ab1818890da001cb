-- Per-agent configuration, runtime state, capabilities and metrics.
-- depends: 0001_core

CREATE TYPE config_type AS ENUM (
    'string',
    'number',   -- config_value holds a decimal number
    'boolean',  -- config_value is 'true' or 'false'
    'json'      -- config_value holds a JSON document
);

CREATE TYPE agent_status_detail AS ENUM (
    'initializing',  -- starting up, loading configs
    'idle',          -- healthy, nothing to do
    'active',        -- running a workflow
    'busy',          -- at capacity, not taking new work
    'error',         -- failing; see last_error
    'stopped'        -- shut down cleanly
);

CREATE TYPE metric_type AS ENUM (
    'gauge',      -- a value at a point in time
    'counter',    -- a running total
    'histogram',  -- a distribution; metadata carries the buckets
    'summary'     -- precomputed quantiles; metadata carries them
);

CREATE TABLE agent_configs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id      uuid NOT NULL,
    config_key    varchar(255) NOT NULL,
    config_value  text NOT NULL,
    config_type   config_type NOT NULL DEFAULT 'string',
    description   text,
    is_sensitive  boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_configs_agent_id_fkey FOREIGN KEY (agent_id)
        REFERENCES agents (id) ON DELETE CASCADE,
    CONSTRAINT agent_configs_agent_id_config_key_key UNIQUE (agent_id, config_key),
    CONSTRAINT agent_configs_config_key_check CHECK (btrim(config_key) <> ''),
    -- typed values must parse as their type, so readers can convert them without guarding
    CONSTRAINT agent_configs_number_value_check CHECK (
        config_type <> 'number' OR config_value ~ '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$'),
    CONSTRAINT agent_configs_boolean_value_check CHECK (
        config_type <> 'boolean' OR config_value IN ('true', 'false'))
);

CREATE TABLE agent_states (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id          uuid NOT NULL,
    status            agent_status_detail NOT NULL DEFAULT 'idle',
    current_workflow  varchar(255),
    workflow_data     jsonb NOT NULL DEFAULT '{}',
    resource_locks    text[] NOT NULL DEFAULT '{}',
    error_count       integer NOT NULL DEFAULT 0,
    last_error        jsonb,
    last_heartbeat    timestamptz NOT NULL DEFAULT now(),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_states_agent_id_fkey FOREIGN KEY (agent_id)
        REFERENCES agents (id) ON DELETE CASCADE,
    CONSTRAINT agent_states_agent_id_key UNIQUE (agent_id),  -- one state row per agent
    CONSTRAINT agent_states_error_count_check CHECK (error_count >= 0)
);
CREATE INDEX agent_states_status_idx ON agent_states (status);
CREATE INDEX agent_states_last_heartbeat_idx ON agent_states (last_heartbeat);

CREATE TABLE agent_capabilities (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id            uuid NOT NULL,
    capability_name     varchar(255) NOT NULL,
    capability_version  varchar(50) NOT NULL,
    description         text,
    parameters          jsonb NOT NULL DEFAULT '{}',
    is_enabled          boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_capabilities_agent_id_fkey FOREIGN KEY (agent_id)
        REFERENCES agents (id) ON DELETE CASCADE,
    CONSTRAINT agent_capabilities_agent_id_name_version_key
        UNIQUE (agent_id, capability_name, capability_version),
    CONSTRAINT agent_capabilities_capability_name_check CHECK (btrim(capability_name) <> ''),
    CONSTRAINT agent_capabilities_capability_version_check CHECK (btrim(capability_version) <> '')
);
CREATE INDEX agent_capabilities_capability_name_idx ON agent_capabilities (capability_name, is_enabled);

CREATE TABLE agent_metrics (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id              uuid NOT NULL,
    metric_name           varchar(255) NOT NULL,
    metric_type           metric_type NOT NULL DEFAULT 'gauge',
    metric_value          double precision NOT NULL,
    metric_unit           varchar(50),
    collection_timestamp  timestamptz NOT NULL DEFAULT now(),
    metadata              jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_metrics_agent_id_fkey FOREIGN KEY (agent_id)
        REFERENCES agents (id) ON DELETE CASCADE,
    CONSTRAINT agent_metrics_metric_name_check CHECK (btrim(metric_name) <> ''),
    -- NaN and infinities poison every aggregate over the series
    CONSTRAINT agent_metrics_metric_value_check
        CHECK (metric_value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8))
);
CREATE INDEX agent_metrics_agent_id_metric_name_collection_timestamp_idx
    ON agent_metrics (agent_id, metric_name, collection_timestamp);
CREATE INDEX agent_metrics_collection_timestamp_idx ON agent_metrics (collection_timestamp);
-- jsonb_path_ops: smaller and faster than the default opclass for @> containment, the only search we run
CREATE INDEX agent_metrics_metadata_idx ON agent_metrics USING gin (metadata jsonb_path_ops);

CREATE TRIGGER agent_configs_set_updated_at BEFORE UPDATE ON agent_configs
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
CREATE TRIGGER agent_states_set_updated_at BEFORE UPDATE ON agent_states
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
CREATE TRIGGER agent_capabilities_set_updated_at BEFORE UPDATE ON agent_capabilities
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
CREATE TRIGGER agent_metrics_set_updated_at BEFORE UPDATE ON agent_metrics
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
