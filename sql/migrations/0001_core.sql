-- Core tables of the OptiInfra platform: customers, agents and what agents raise for customers.
-- Needs PostgreSQL 13 or newer (gen_random_uuid() in core).

-- Keeps updated_at true on every UPDATE, whoever writes the row.
CREATE FUNCTION optiinfra_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TYPE customer_status AS ENUM (
    'trial',      -- evaluating the platform
    'active',     -- paying, agents running
    'suspended',  -- agents paused, data kept
    'churned'     -- left; data kept for audit
);

CREATE TYPE agent_type AS ENUM (
    'cost',         -- finds savings in GPU and cloud spend
    'performance',  -- tunes latency and throughput of LLM serving
    'resource',     -- scales and balances GPU capacity
    'application'   -- watches output quality of LLM applications
);

CREATE TYPE agent_status AS ENUM (
    'registered',   -- known, never seen running
    'active',       -- running and heartbeating
    'inactive',     -- stopped on purpose
    'error',        -- running but failing
    'maintenance'   -- taken out of rotation by an operator
);

CREATE TYPE event_type AS ENUM (
    'cost_anomaly',             -- spend out of its usual range
    'performance_degradation',  -- latency or throughput got worse
    'resource_saturation',      -- GPUs, memory or queues near their limit
    'quality_regression',       -- model output quality dropped
    'recommendation_created',
    'optimization_applied',
    'optimization_rolled_back',
    'agent_error'
);

CREATE TYPE event_severity AS ENUM (
    'info',
    'low',
    'medium',
    'high',
    'critical'
);

CREATE TYPE recommendation_type AS ENUM (
    'cost_reduction',       -- spot instances, rightsizing, storage tiering
    'performance_tuning',   -- KV cache, batching, quantization
    'resource_scaling',     -- scale GPU pools up or down
    'quality_improvement',  -- roll back or change a model
    'configuration_change'  -- any other setting
);

CREATE TYPE approval_status AS ENUM (
    'pending',   -- waiting for a decision
    'approved',  -- may be carried out
    'rejected',  -- will not be carried out
    'expired'    -- nobody decided in time
);

CREATE TYPE optimization_status AS ENUM (
    'pending',      -- approved, not started
    'in_progress',  -- being applied
    'completed',    -- applied
    'failed',       -- could not be applied
    'rolled_back'   -- applied, then undone
);

CREATE TABLE customers (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        varchar(255) NOT NULL,
    email       varchar(320) NOT NULL,
    status      customer_status NOT NULL DEFAULT 'active',
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_name_check CHECK (btrim(name) <> ''),
    CONSTRAINT customers_email_check CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT customers_email_key UNIQUE (email)
);

CREATE TABLE agents (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type            agent_type NOT NULL,
    name            varchar(255) NOT NULL,
    version         varchar(50) NOT NULL,
    status          agent_status NOT NULL DEFAULT 'registered',
    endpoint        text,
    capabilities    text[] NOT NULL DEFAULT '{}',
    last_heartbeat  timestamptz,
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agents_name_check CHECK (btrim(name) <> ''),
    CONSTRAINT agents_version_check CHECK (btrim(version) <> '')
);
CREATE INDEX agents_type_status_idx ON agents (type, status);
CREATE INDEX agents_last_heartbeat_idx ON agents (last_heartbeat);

-- Events outlive the agent that raised them: the customer's history stays whole.
CREATE TABLE events (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id  uuid NOT NULL,
    agent_id     uuid,
    event_type   event_type NOT NULL,
    severity     event_severity NOT NULL DEFAULT 'info',
    title        varchar(255) NOT NULL,
    description  text,
    data         jsonb NOT NULL DEFAULT '{}',
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES customers (id) ON DELETE CASCADE,
    CONSTRAINT events_agent_id_fkey FOREIGN KEY (agent_id)
        REFERENCES agents (id) ON DELETE SET NULL,
    CONSTRAINT events_title_check CHECK (btrim(title) <> '')
);
CREATE INDEX events_customer_id_occurred_at_idx ON events (customer_id, occurred_at DESC);
CREATE INDEX events_agent_id_occurred_at_idx ON events (agent_id, occurred_at DESC);
CREATE INDEX events_event_type_severity_idx ON events (event_type, severity);

CREATE TABLE recommendations (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id            uuid NOT NULL,
    agent_id               uuid NOT NULL,
    recommendation_type    recommendation_type NOT NULL,
    title                  varchar(255) NOT NULL,
    description            text,
    estimated_savings_usd  numeric(14, 2),
    confidence_score       double precision,
    details                jsonb NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT recommendations_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES customers (id) ON DELETE CASCADE,
    CONSTRAINT recommendations_agent_id_fkey FOREIGN KEY (agent_id)
        REFERENCES agents (id) ON DELETE CASCADE,
    CONSTRAINT recommendations_title_check CHECK (btrim(title) <> ''),
    CONSTRAINT recommendations_estimated_savings_usd_check CHECK (estimated_savings_usd >= 0),
    CONSTRAINT recommendations_confidence_score_check CHECK (confidence_score BETWEEN 0 AND 1)
);
CREATE INDEX recommendations_customer_id_type_idx ON recommendations (customer_id, recommendation_type);
CREATE INDEX recommendations_agent_id_idx ON recommendations (agent_id);

CREATE TABLE approvals (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    recommendation_id  uuid NOT NULL,
    status             approval_status NOT NULL DEFAULT 'pending',
    requested_by       varchar(255),
    decided_by         varchar(255),
    comment            text,
    decided_at         timestamptz,
    expires_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT approvals_recommendation_id_fkey FOREIGN KEY (recommendation_id)
        REFERENCES recommendations (id) ON DELETE CASCADE,
    -- lets an optimization name its approval and recommendation together
    CONSTRAINT approvals_id_recommendation_id_key UNIQUE (id, recommendation_id),
    -- a decision has a time, and only a decision has one
    CONSTRAINT approvals_decided_at_check CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX approvals_recommendation_id_status_idx ON approvals (recommendation_id, status);
CREATE INDEX approvals_status_idx ON approvals (status);

CREATE TABLE optimizations (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    recommendation_id  uuid NOT NULL,
    approval_id        uuid NOT NULL,
    status             optimization_status NOT NULL DEFAULT 'pending',
    started_at         timestamptz,
    completed_at       timestamptz,
    result             jsonb NOT NULL DEFAULT '{}',
    error_details      jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT optimizations_recommendation_id_fkey FOREIGN KEY (recommendation_id)
        REFERENCES recommendations (id) ON DELETE CASCADE,
    -- the approval must be one of this recommendation's
    CONSTRAINT optimizations_approval_id_fkey FOREIGN KEY (approval_id, recommendation_id)
        REFERENCES approvals (id, recommendation_id) ON DELETE CASCADE,
    CONSTRAINT optimizations_completed_at_check CHECK (completed_at >= started_at)
);
CREATE INDEX optimizations_recommendation_id_idx ON optimizations (recommendation_id);
CREATE INDEX optimizations_approval_id_idx ON optimizations (approval_id);
CREATE INDEX optimizations_status_idx ON optimizations (status);

-- Only an approved recommendation may be carried out.
CREATE FUNCTION optiinfra_optimizations_require_approval() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM approvals WHERE id = NEW.approval_id AND status = 'approved') THEN
        RAISE EXCEPTION 'optimization % needs an approved approval, % is not approved',
            NEW.id, NEW.approval_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'optimizations_approval_approved_check',
                  TABLE = 'optimizations';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER optimizations_require_approval
    BEFORE INSERT OR UPDATE OF approval_id ON optimizations
    FOR EACH ROW EXECUTE FUNCTION optiinfra_optimizations_require_approval();

CREATE TRIGGER customers_set_updated_at BEFORE UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
CREATE TRIGGER agents_set_updated_at BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
CREATE TRIGGER events_set_updated_at BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
CREATE TRIGGER recommendations_set_updated_at BEFORE UPDATE ON recommendations
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
CREATE TRIGGER approvals_set_updated_at BEFORE UPDATE ON approvals
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
CREATE TRIGGER optimizations_set_updated_at BEFORE UPDATE ON optimizations
    FOR EACH ROW EXECUTE FUNCTION optiinfra_set_updated_at();
