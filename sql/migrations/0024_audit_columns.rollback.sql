-- transactional: false
--
-- Back to the audit settings made by optiinfra_audit() alone. Deploy the code of the previous
-- release first: this release's transitions name the columns dropped here.
SET lock_timeout = '5s';

DROP TRIGGER IF EXISTS workflow_executions_take_audit ON workflow_executions;
DROP TRIGGER IF EXISTS workflow_steps_take_audit ON workflow_steps;
DROP FUNCTION IF EXISTS optiinfra_take_audit();
ALTER TABLE workflow_executions DROP COLUMN IF EXISTS audit_actor, DROP COLUMN IF EXISTS audit_reason;
ALTER TABLE workflow_steps DROP COLUMN IF EXISTS audit_actor, DROP COLUMN IF EXISTS audit_reason;
