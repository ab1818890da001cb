-- The role stays: it belongs to the whole server, and other databases may grant to it.
DROP POLICY workflow_transitions_customer_isolation ON workflow_transitions;
DROP POLICY workflow_artifacts_customer_isolation ON workflow_artifacts;
DROP POLICY workflow_steps_customer_isolation ON workflow_steps;
DROP POLICY workflow_executions_customer_isolation ON workflow_executions;
DROP POLICY optimizations_customer_isolation ON optimizations;
DROP POLICY approvals_customer_isolation ON approvals;
DROP POLICY recommendations_customer_isolation ON recommendations;
DROP POLICY events_customer_isolation ON events;
DROP POLICY customers_customer_isolation ON customers;
ALTER TABLE workflow_transitions DISABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_artifacts DISABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_steps DISABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_executions DISABLE ROW LEVEL SECURITY;
ALTER TABLE optimizations DISABLE ROW LEVEL SECURITY;
ALTER TABLE approvals DISABLE ROW LEVEL SECURITY;
ALTER TABLE recommendations DISABLE ROW LEVEL SECURITY;
ALTER TABLE events DISABLE ROW LEVEL SECURITY;
ALTER TABLE customers DISABLE ROW LEVEL SECURITY;
DROP FUNCTION optiinfra_customer_id();
REVOKE ALL ON workflow_transitions FROM optiinfra_app;
REVOKE ALL ON
    customers, agents, events, recommendations, approvals, optimizations,
    agent_configs, agent_states, agent_capabilities, agent_metrics,
    workflow_executions, workflow_steps, workflow_artifacts
    FROM optiinfra_app;
REVOKE USAGE ON SCHEMA public FROM optiinfra_app;
