-- transactional: false
--
-- Who made a transition and why travel with the row the transition changes, no longer as settings
-- of the transaction made by optiinfra_audit() in the statement's WHERE clause. On a Citus cluster
-- the row's triggers run on the worker holding its shard, where settings made on the coordinator
-- never arrive, and a modification of a distributed table may not call a VOLATILE function in its
-- WHERE clause.
--
-- A transition sets audit_actor and audit_reason beside the status; a BEFORE trigger, on the node
-- holding the row, hands them to the transition trigger as the transaction-local settings it has
-- always read, and clears them: a named CHECK keeps them from ever being stored. Statements of the
-- previous release, which call optiinfra_audit(), keep working: the trigger fires only when the
-- columns are set.
--
-- Adding a nullable column without a default rewrites nothing; the CHECK is added NOT VALID and
-- validated in a transaction of its own (that scan takes a lock that blocks no writer).
-- depends: 0023_durable_lsn

SET lock_timeout = '5s';
-- On a Citus cluster the triggers below go to every shard of their table (a placeholder setting
-- elsewhere): they read and write only the row they fire for, and settings local to the node.
SET citus.enable_unsafe_triggers = on;

ALTER TABLE workflow_executions ADD COLUMN IF NOT EXISTS audit_actor text, ADD COLUMN IF NOT EXISTS audit_reason jsonb;
ALTER TABLE workflow_steps ADD COLUMN IF NOT EXISTS audit_actor text, ADD COLUMN IF NOT EXISTS audit_reason jsonb;

CREATE OR REPLACE FUNCTION optiinfra_take_audit() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        -- local to the transaction on this node; the transition trigger spends them
        PERFORM set_config('optiinfra.actor', coalesce(NEW.audit_actor, ''), true),
                set_config('optiinfra.reason', coalesce(NEW.audit_reason::text, ''), true);
    END IF;
    NEW.audit_actor := NULL;
    NEW.audit_reason := NULL;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER workflow_executions_take_audit BEFORE UPDATE ON workflow_executions
    FOR EACH ROW WHEN (NEW.audit_actor IS NOT NULL OR NEW.audit_reason IS NOT NULL)
    EXECUTE FUNCTION optiinfra_take_audit();
CREATE OR REPLACE TRIGGER workflow_steps_take_audit BEFORE UPDATE ON workflow_steps
    FOR EACH ROW WHEN (NEW.audit_actor IS NOT NULL OR NEW.audit_reason IS NOT NULL)
    EXECUTE FUNCTION optiinfra_take_audit();

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workflow_executions_audit_not_stored') THEN
        ALTER TABLE workflow_executions ADD CONSTRAINT workflow_executions_audit_not_stored
            CHECK (audit_actor IS NULL AND audit_reason IS NULL) NOT VALID;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workflow_steps_audit_not_stored') THEN
        ALTER TABLE workflow_steps ADD CONSTRAINT workflow_steps_audit_not_stored
            CHECK (audit_actor IS NULL AND audit_reason IS NULL) NOT VALID;
    END IF;
END;
$$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_constraint WHERE conname = 'workflow_executions_audit_not_stored' AND NOT convalidated) THEN
        ALTER TABLE workflow_executions VALIDATE CONSTRAINT workflow_executions_audit_not_stored;
    END IF;
END;
$$;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_constraint WHERE conname = 'workflow_steps_audit_not_stored' AND NOT convalidated) THEN
        ALTER TABLE workflow_steps VALIDATE CONSTRAINT workflow_steps_audit_not_stored;
    END IF;
END;
$$;

-- this migration runs outside a transaction: its settings would last for the rest of the run
RESET citus.enable_unsafe_triggers;
RESET lock_timeout;
