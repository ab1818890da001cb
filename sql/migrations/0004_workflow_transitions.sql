-- Append-only audit trail of every status change of a workflow execution or step, written by
-- triggers (so a change made with raw SQL is recorded too) and announced with NOTIFY.
-- depends: 0003_workflow_history

CREATE TABLE workflow_transitions (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_execution_id  uuid NOT NULL,
    workflow_step_id       uuid,  -- null for the execution's own transitions
    from_status            text,  -- null when the row was created
    to_status              text NOT NULL,
    at                     timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor                  text,
    reason                 jsonb,
    -- the writing transaction: live subscribers use it (with the snapshot's xmin) to know when no
    -- transaction still in flight can add a row they have not seen, so none is skipped
    txid                   xid8 NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT workflow_transitions_workflow_execution_id_fkey FOREIGN KEY (workflow_execution_id)
        REFERENCES workflow_executions (id) ON DELETE CASCADE,
    CONSTRAINT workflow_transitions_workflow_step_id_fkey FOREIGN KEY (workflow_step_id)
        REFERENCES workflow_steps (id) ON DELETE CASCADE
);
CREATE INDEX workflow_transitions_execution_id_id_idx ON workflow_transitions (workflow_execution_id, id);
CREATE INDEX workflow_transitions_step_id_idx ON workflow_transitions (workflow_step_id);
CREATE INDEX workflow_transitions_txid_idx ON workflow_transitions (txid);

-- Who and why come from transaction-local settings that the repositories set in the same
-- statement as the change (set_config(..., true)); raw SQL leaves them null.
CREATE FUNCTION optiinfra_record_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    transition_id bigint;
    execution_id uuid;
    step_id uuid;
BEGIN
    IF TG_TABLE_NAME = 'workflow_steps' THEN
        execution_id := NEW.workflow_execution_id;
        step_id := NEW.id;
    ELSE
        execution_id := NEW.id;
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
    PERFORM pg_notify('optiinfra_workflow_transitions', transition_id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER workflow_executions_record_insert AFTER INSERT ON workflow_executions
    FOR EACH ROW EXECUTE FUNCTION optiinfra_record_transition();
CREATE TRIGGER workflow_executions_record_transition AFTER UPDATE OF status ON workflow_executions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION optiinfra_record_transition();
CREATE TRIGGER workflow_steps_record_insert AFTER INSERT ON workflow_steps
    FOR EACH ROW EXECUTE FUNCTION optiinfra_record_transition();
CREATE TRIGGER workflow_steps_record_transition AFTER UPDATE OF status ON workflow_steps
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION optiinfra_record_transition();

-- The trail is append-only: no row is ever changed, and rows are deleted only with their
-- execution or step (a cascade runs inside the foreign key's trigger, so its depth is above 1).
CREATE FUNCTION optiinfra_refuse_transition_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'workflow_transitions is append-only (% refused)', TG_OP
        USING ERRCODE = 'check_violation', CONSTRAINT = 'workflow_transitions_append_only_check',
              TABLE = 'workflow_transitions';
END;
$$;

CREATE TRIGGER workflow_transitions_append_only BEFORE UPDATE OR DELETE ON workflow_transitions
    FOR EACH ROW EXECUTE FUNCTION optiinfra_refuse_transition_change();
