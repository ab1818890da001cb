-- Tenant isolation, enforced by the database.
-- `optiinfra_app` is the role agents run as: it owns nothing and holds only the privileges the
-- repositories need, so row-level security applies to it (table owners and superusers, such as
-- the role that runs migrations, bypass it). A store confined to one customer binds
-- `optiinfra.customer_id` to each transaction; the policies then show and accept only that
-- customer's rows. Without the setting the role sees no customer's rows at all.
-- depends: 0006_versions_and_idempotency

-- Roles belong to the whole server: create it once, whichever database gets there first (and
-- not at all where an administrator made it already, so a migrating role without CREATEROLE works).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'optiinfra_app') THEN
        CREATE ROLE optiinfra_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END;
$$;

GRANT USAGE ON SCHEMA public TO optiinfra_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    customers, events, recommendations, approvals, optimizations,
    agent_configs, agent_states, agent_capabilities, agent_metrics,
    workflow_executions, workflow_steps, workflow_artifacts
    TO optiinfra_app;
-- Agents are shared by every customer: deleting one cascades into every customer's executions and
-- recommendations, and cascades run as the table owner, past row-level security. So agents are
-- registered and updated by the application role and deleted only by the owner.
GRANT SELECT, INSERT, UPDATE ON agents TO optiinfra_app;
-- the audit trail is append-only; its rows are written by the transition trigger as the caller
GRANT SELECT, INSERT ON workflow_transitions TO optiinfra_app;

-- The customer the current transaction is confined to (null: none).
CREATE FUNCTION optiinfra_customer_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('optiinfra.customer_id', true), '')::uuid
$$;

ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY customers_customer_isolation ON customers
    USING (id = optiinfra_customer_id());

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_customer_isolation ON events
    USING (customer_id = optiinfra_customer_id());

ALTER TABLE recommendations ENABLE ROW LEVEL SECURITY;
CREATE POLICY recommendations_customer_isolation ON recommendations
    USING (customer_id = optiinfra_customer_id());

-- rows without a customer of their own belong to their parent's: visible when the parent is
-- (the subquery is itself filtered by the parent's policy)
ALTER TABLE approvals ENABLE ROW LEVEL SECURITY;
CREATE POLICY approvals_customer_isolation ON approvals
    USING (EXISTS (SELECT FROM recommendations r WHERE r.id = recommendation_id));

ALTER TABLE optimizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY optimizations_customer_isolation ON optimizations
    USING (EXISTS (SELECT FROM recommendations r WHERE r.id = recommendation_id));

ALTER TABLE workflow_executions ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_executions_customer_isolation ON workflow_executions
    USING (customer_id = optiinfra_customer_id());

ALTER TABLE workflow_steps ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_steps_customer_isolation ON workflow_steps
    USING (EXISTS (SELECT FROM workflow_executions e WHERE e.id = workflow_execution_id));

ALTER TABLE workflow_artifacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_artifacts_customer_isolation ON workflow_artifacts
    USING (EXISTS (SELECT FROM workflow_executions e WHERE e.id = workflow_execution_id));

ALTER TABLE workflow_transitions ENABLE ROW LEVEL SECURITY;
CREATE POLICY workflow_transitions_customer_isolation ON workflow_transitions
    USING (EXISTS (SELECT FROM workflow_executions e WHERE e.id = workflow_execution_id));
