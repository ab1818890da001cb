-- The role stays: it belongs to the whole server, and other databases may grant to it.
DROP FUNCTION optiinfra_confine(uuid, boolean);
ALTER FUNCTION optiinfra_record_transition() SECURITY INVOKER RESET search_path;
GRANT EXECUTE ON FUNCTION optiinfra_record_transition() TO PUBLIC;
GRANT INSERT ON workflow_transitions TO optiinfra_app;
DROP TRIGGER agent_states_owner ON agent_states;
DROP FUNCTION optiinfra_agent_state_owner();
DROP POLICY agent_states_tenant ON agent_states;
DROP POLICY agent_states_platform ON agent_states;
ALTER TABLE agent_states DISABLE ROW LEVEL SECURITY;
DROP INDEX agent_states_customer_id_idx;
ALTER TABLE agent_states DROP COLUMN customer_id;
DROP POLICY agent_configs_tenant_not_sensitive ON agent_configs;
DROP POLICY agent_configs_platform ON agent_configs;
ALTER TABLE agent_configs DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON
    customers, events, recommendations, approvals, optimizations, workflow_transitions,
    agents, agent_configs, agent_capabilities, agent_metrics, agent_states,
    workflow_executions, workflow_steps, workflow_artifacts
    FROM optiinfra_tenant;
REVOKE USAGE ON SCHEMA public FROM optiinfra_tenant;
