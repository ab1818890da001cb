DROP TRIGGER agent_states_next_version ON agent_states;
DROP TRIGGER workflow_executions_next_version ON workflow_executions;
DROP FUNCTION optiinfra_next_version();
ALTER TABLE agent_states DROP COLUMN version;
ALTER TABLE workflow_executions DROP COLUMN version, DROP COLUMN idempotency_key;
