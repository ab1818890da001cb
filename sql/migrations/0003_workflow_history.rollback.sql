DROP INDEX agent_states_current_workflow_id_idx;
ALTER TABLE agent_states DROP COLUMN current_workflow_id;
DROP TABLE workflow_artifacts;
DROP TABLE workflow_steps;
DROP TABLE workflow_executions;
DROP TYPE artifact_type;
DROP TYPE step_status;
DROP TYPE workflow_status;
DROP TYPE workflow_type;
