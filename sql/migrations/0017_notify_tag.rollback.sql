SET LOCAL lock_timeout = '5s';

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
    PERFORM pg_notify('optiinfra_workflow_transitions', transition_id::text || ':' || coalesce(customer::text, ''));
    RETURN NULL;
END;
$$;

DROP FUNCTION optiinfra_notify_key();
DROP FUNCTION optiinfra_notify_tag(uuid);
DROP TABLE optiinfra_notify_key;
