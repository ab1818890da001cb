-- Workflow executions, their ordered steps and the artifacts they produce.
-- depends: 0002_agent_state

CREATE TYPE workflow_type AS ENUM (
    'cost_analysis',
    'performance_tuning',
    'resource_optimization',
    'quality_check',
    'scaling_decision',
    'configuration_update',
    'health_check',
    'anomaly_detection'
);

CREATE TYPE workflow_status AS ENUM (
    'pending',    -- created, not started
    'running',
    'completed',
    'failed',
    'cancelled',  -- stopped by a caller before it finished
    'timeout'     -- ran past its deadline
);

CREATE TYPE step_status AS ENUM (
    'pending',
    'running',
    'completed',
    'failed',
    'skipped',   -- not needed in this run
    'retrying'   -- failed, waiting to run again
);

CREATE TYPE artifact_type AS ENUM (
    'report',
    'config',
    'log',
    'recommendation',
    'chart',
    'metrics',
    'alert',
    'diagnostic'
);

CREATE TABLE workflow_executions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id       uuid NOT NULL,
    customer_id    uuid NOT NULL,
    workflow_type  workflow_type NOT NULL,
    status         workflow_status NOT NULL DEFAULT 'pending',
    started_at     timestamptz,
    completed_at   timestamptz,
    input_data     jsonb NOT NULL DEFAULT '{}',
    output_data    jsonb NOT NULL DEFAULT '{}',
    error_details  jsonb,
    metadata       jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_executions_agent_id_fkey FOREIGN KEY (agent_id)
        REFERENCES agents (id) ON DELETE CASCADE,
    CONSTRAINT workflow_executions_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES customers (id) ON DELETE CASCADE,
    CONSTRAINT workflow_executions_completed_at_check CHECK (completed_at >= started_at)
);
CREATE INDEX workflow_executions_agent_id_status_idx ON workflow_executions (agent_id, status);
CREATE INDEX workflow_executions_customer_id_workflow_type_idx
    ON workflow_executions (customer_id, workflow_type);
CREATE INDEX workflow_executions_started_at_idx ON workflow_executions (started_at);
CREATE INDEX workflow_executions_status_idx ON workflow_executions (status);
CREATE INDEX workflow_executions_workflow_type_idx ON workflow_executions (workflow_type);
-- newest-first pages per customer and per agent (keyset on created_at, id)
CREATE INDEX workflow_executions_customer_id_created_at_idx
    ON workflow_executions (customer_id, created_at DESC, id DESC);
CREATE INDEX workflow_executions_agent_id_created_at_idx
    ON workflow_executions (agent_id, created_at DESC, id DESC);
CREATE INDEX workflow_executions_created_at_idx ON workflow_executions (created_at DESC, id DESC);

CREATE TABLE workflow_steps (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_execution_id  uuid NOT NULL,
    step_name              varchar(255) NOT NULL,
    step_order             integer NOT NULL,
    status                 step_status NOT NULL DEFAULT 'pending',
    started_at             timestamptz,
    completed_at           timestamptz,
    input_data             jsonb NOT NULL DEFAULT '{}',
    output_data            jsonb NOT NULL DEFAULT '{}',
    error_details          jsonb,
    retry_count            integer NOT NULL DEFAULT 0,
    max_retries            integer NOT NULL DEFAULT 3,
    metadata               jsonb NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_steps_workflow_execution_id_fkey FOREIGN KEY (workflow_execution_id)
        REFERENCES workflow_executions (id) ON DELETE CASCADE,
    CONSTRAINT workflow_steps_execution_id_step_order_key UNIQUE (workflow_execution_id, step_order),
    -- target of workflow_artifacts' composite key: an artifact's step is in the artifact's execution
    CONSTRAINT workflow_steps_id_execution_id_key UNIQUE (id, workflow_execution_id),
    CONSTRAINT workflow_steps_step_name_check CHECK (btrim(step_name) <> ''),
    CONSTRAINT workflow_steps_step_order_check CHECK (step_order >= 1),
    CONSTRAINT workflow_steps_retry_count_check CHECK (retry_count >= 0),
    CONSTRAINT workflow_steps_max_retries_check CHECK (max_retries >= 0),
    CONSTRAINT workflow_steps_retries_within_max_check CHECK (retry_count <= max_retries),
    CONSTRAINT workflow_steps_completed_at_check CHECK (completed_at >= started_at)
);
CREATE INDEX workflow_steps_execution_id_status_idx ON workflow_steps (workflow_execution_id, status);
CREATE INDEX workflow_steps_step_name_status_idx ON workflow_steps (step_name, status);
CREATE INDEX workflow_steps_status_idx ON workflow_steps (status);

CREATE TABLE workflow_artifacts (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_execution_id  uuid NOT NULL,
    workflow_step_id       uuid,  -- null for artifacts of the execution as a whole
    artifact_type          artifact_type NOT NULL,
    artifact_name          varchar(255) NOT NULL,
    artifact_path          text NOT NULL,
    artifact_size_bytes    bigint,
    content_type           varchar(100),
    metadata               jsonb NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_artifacts_workflow_execution_id_fkey FOREIGN KEY (workflow_execution_id)
        REFERENCES workflow_executions (id) ON DELETE CASCADE,
    -- MATCH SIMPLE: unchecked while workflow_step_id is null
    CONSTRAINT workflow_artifacts_workflow_step_id_fkey FOREIGN KEY (workflow_step_id, workflow_execution_id)
        REFERENCES workflow_steps (id, workflow_execution_id) ON DELETE CASCADE,
    CONSTRAINT workflow_artifacts_artifact_name_check CHECK (btrim(artifact_name) <> ''),
    CONSTRAINT workflow_artifacts_artifact_path_check CHECK (btrim(artifact_path) <> ''),
    CONSTRAINT workflow_artifacts_artifact_size_bytes_check CHECK (artifact_size_bytes >= 0)
);
CREATE INDEX workflow_artifacts_execution_id_type_idx
    ON workflow_artifacts (workflow_execution_id, artifact_type);
CREATE INDEX workflow_artifacts_step_id_type_idx ON workflow_artifacts (workflow_step_id, artifact_type);
CREATE INDEX workflow_artifacts_artifact_type_idx ON workflow_artifacts (artifact_type);

ALTER TABLE agent_states
    ADD COLUMN current_workflow_id uuid,
    ADD CONSTRAINT agent_states_current_workflow_id_fkey FOREIGN KEY (current_workflow_id)
        REFERENCES workflow_executions (id) ON DELETE SET NULL;
CREATE INDEX agent_states_current_workflow_id_idx ON agent_states (current_workflow_id);

CREATE TRIGGER workflow_executions_set_updated_at BEFORE UPDATE ON workflow_executions
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
CREATE TRIGGER workflow_steps_set_updated_at BEFORE UPDATE ON workflow_steps
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
CREATE TRIGGER workflow_artifacts_set_updated_at BEFORE UPDATE ON workflow_artifacts
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
