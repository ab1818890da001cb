-- transactional: false
--
-- Back to children that find their customer through their parent: the policies look the parent
-- up again, the foreign keys lose the customer (the old ones validated beside writers, then
-- swapped in under their names), and the column goes.
SET lock_timeout = '5s';

ALTER POLICY approvals_customer_isolation ON approvals
    USING (EXISTS (SELECT FROM recommendations r WHERE r.id = approvals.recommendation_id));
ALTER POLICY optimizations_customer_isolation ON optimizations
    USING (EXISTS (SELECT FROM recommendations r WHERE r.id = optimizations.recommendation_id));
ALTER POLICY workflow_steps_customer_isolation ON workflow_steps
    USING (EXISTS (SELECT FROM workflow_executions e WHERE e.id = workflow_steps.workflow_execution_id));
ALTER POLICY workflow_artifacts_customer_isolation ON workflow_artifacts
    USING (EXISTS (SELECT FROM workflow_executions e WHERE e.id = workflow_artifacts.workflow_execution_id));
ALTER POLICY workflow_transitions_customer_isolation ON workflow_transitions
    USING (EXISTS (SELECT FROM workflow_executions e WHERE e.id = workflow_transitions.workflow_execution_id));

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS approvals_id_recommendation_id_key
    ON approvals (id, recommendation_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS workflow_steps_id_execution_id_key
    ON workflow_steps (id, workflow_execution_id);
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'approvals_id_recommendation_id_key') THEN
        ALTER TABLE approvals ADD CONSTRAINT approvals_id_recommendation_id_key
            UNIQUE USING INDEX approvals_id_recommendation_id_key;
    END IF;
    COMMIT;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workflow_steps_id_execution_id_key') THEN
        ALTER TABLE workflow_steps ADD CONSTRAINT workflow_steps_id_execution_id_key
            UNIQUE USING INDEX workflow_steps_id_execution_id_key;
    END IF;
END;
$$;

-- As in 0022: a statement locking a parent and its child, under a short lock_timeout, until it
-- gets both (waiting while holding one could deadlock with a writer).
CREATE OR REPLACE FUNCTION pg_temp.optiinfra_locked(statement text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    FOR attempt IN 1..600 LOOP
        BEGIN
            PERFORM set_config('lock_timeout', '100ms', true);
            EXECUTE statement;
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM pg_sleep(0.05);
        END;
    END LOOP;
    RAISE EXCEPTION 'could not lock the tables of "%" in 600 tries', statement USING ERRCODE = 'lock_not_available';
END;
$$;

DO $$
DECLARE
    k record;
BEGIN
    FOR k IN SELECT * FROM (VALUES
        ('approvals', 'approvals_recommendation_id_fkey',
         'FOREIGN KEY (recommendation_id) REFERENCES recommendations (id) ON DELETE CASCADE'),
        ('optimizations', 'optimizations_recommendation_id_fkey',
         'FOREIGN KEY (recommendation_id) REFERENCES recommendations (id) ON DELETE CASCADE'),
        ('optimizations', 'optimizations_approval_id_fkey',
         'FOREIGN KEY (approval_id, recommendation_id) REFERENCES approvals (id, recommendation_id) ON DELETE CASCADE'),
        ('workflow_steps', 'workflow_steps_workflow_execution_id_fkey',
         'FOREIGN KEY (workflow_execution_id) REFERENCES workflow_executions (id) ON DELETE CASCADE'),
        ('workflow_artifacts', 'workflow_artifacts_workflow_execution_id_fkey',
         'FOREIGN KEY (workflow_execution_id) REFERENCES workflow_executions (id) ON DELETE CASCADE'),
        ('workflow_artifacts', 'workflow_artifacts_workflow_step_id_fkey',
         'FOREIGN KEY (workflow_step_id, workflow_execution_id) REFERENCES workflow_steps (id, workflow_execution_id) ON DELETE CASCADE'),
        ('workflow_transitions', 'workflow_transitions_workflow_execution_id_fkey',
         'FOREIGN KEY (workflow_execution_id) REFERENCES workflow_executions (id) ON DELETE CASCADE'),
        ('workflow_transitions', 'workflow_transitions_workflow_step_id_fkey',
         'FOREIGN KEY (workflow_step_id) REFERENCES workflow_steps (id) ON DELETE CASCADE')) AS v (tab, fkey, def) LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_constraint c JOIN pg_attribute a
                                      ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                                   WHERE c.conname = k.fkey AND a.attname = 'customer_id');
        IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = replace(k.fkey, '_fkey', '_plain_fkey')) THEN
            PERFORM pg_temp.optiinfra_locked(format('ALTER TABLE %I ADD CONSTRAINT %I %s NOT VALID',
                                                    k.tab, replace(k.fkey, '_fkey', '_plain_fkey'), k.def));
            COMMIT;
        END IF;
        EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', k.tab, replace(k.fkey, '_fkey', '_plain_fkey'));
        COMMIT;
        PERFORM pg_temp.optiinfra_locked(format('ALTER TABLE %I DROP CONSTRAINT %I', k.tab, k.fkey));
        COMMIT;
        EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I', k.tab, replace(k.fkey, '_fkey', '_plain_fkey'), k.fkey);
        COMMIT;
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION optiinfra_record_transition() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    transition_id bigint;
    execution_id uuid;
    step_id uuid;
    customer uuid;
BEGIN
    IF TG_TABLE_NAME = 'workflow_steps' THEN
        execution_id := NEW.workflow_execution_id;
        step_id := NEW.id;
        SELECT e.customer_id INTO customer FROM workflow_executions e WHERE e.id = execution_id;
    ELSE
        execution_id := NEW.id;
        customer := NEW.customer_id;
    END IF;
    INSERT INTO workflow_transitions (workflow_execution_id, workflow_step_id, from_status, to_status, actor, reason)
    VALUES (execution_id, step_id,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.status::text END,
            NEW.status::text,
            nullif(current_setting('optiinfra.actor', true), ''),
            nullif(current_setting('optiinfra.reason', true), '')::jsonb)
    RETURNING id INTO transition_id;
    -- spent: the next change in this transaction must not inherit them
    PERFORM set_config('optiinfra.actor', '', true), set_config('optiinfra.reason', '', true);
    -- delivered at commit, in commit order; listeners read the row by id
    PERFORM pg_notify('optiinfra_workflow_transitions',
                      transition_id::text || ':' || coalesce(optiinfra_notify_tag(customer), ''));
    RETURN NULL;
END;
$$;

-- the function above tells by table name again; the triggers lose their argument
CREATE OR REPLACE TRIGGER workflow_executions_record_insert AFTER INSERT ON workflow_executions
    FOR EACH ROW EXECUTE FUNCTION optiinfra_record_transition();
CREATE OR REPLACE TRIGGER workflow_executions_record_transition AFTER UPDATE OF status ON workflow_executions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION optiinfra_record_transition();
CREATE OR REPLACE TRIGGER workflow_steps_record_insert AFTER INSERT ON workflow_steps
    FOR EACH ROW EXECUTE FUNCTION optiinfra_record_transition();
CREATE OR REPLACE TRIGGER workflow_steps_record_transition AFTER UPDATE OF status ON workflow_steps
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION optiinfra_record_transition();

DROP TRIGGER IF EXISTS approvals_customer ON approvals;
DROP TRIGGER IF EXISTS optimizations_customer ON optimizations;
DROP TRIGGER IF EXISTS workflow_steps_customer ON workflow_steps;
DROP TRIGGER IF EXISTS workflow_artifacts_customer ON workflow_artifacts;
DROP TRIGGER IF EXISTS workflow_transitions_customer ON workflow_transitions;
DROP FUNCTION IF EXISTS optiinfra_customer_of_recommendation();
DROP FUNCTION IF EXISTS optiinfra_customer_of_execution();

ALTER TABLE recommendations DROP CONSTRAINT IF EXISTS recommendations_id_customer_id_key;
ALTER TABLE approvals DROP CONSTRAINT IF EXISTS approvals_id_recommendation_id_customer_id_key;
ALTER TABLE workflow_executions DROP CONSTRAINT IF EXISTS workflow_executions_id_customer_id_key;
ALTER TABLE workflow_steps DROP CONSTRAINT IF EXISTS workflow_steps_id_execution_id_customer_id_key;

ALTER TABLE approvals DROP COLUMN IF EXISTS customer_id;
ALTER TABLE optimizations DROP COLUMN IF EXISTS customer_id;
ALTER TABLE workflow_steps DROP COLUMN IF EXISTS customer_id;
ALTER TABLE workflow_artifacts DROP COLUMN IF EXISTS customer_id;
ALTER TABLE workflow_transitions DROP COLUMN IF EXISTS customer_id;
