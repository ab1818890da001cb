ALTER TABLE workflow_artifacts ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE workflow_steps ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE workflow_executions ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE agent_metrics ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE events ALTER COLUMN id SET DEFAULT gen_random_uuid();
DROP FUNCTION optiinfra_uuid7();
