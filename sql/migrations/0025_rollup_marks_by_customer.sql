-- Rollup marks say whose hour changed, so that on a Citus cluster each mark is placed with its
-- customer's rows, and the row trigger that `distribute` puts in place of the statement triggers
-- of 0014 on the cluster. On one server nothing else changes: marks made there say "every
-- customer" (the all-zero uuid), and maintain() rebuilds a marked hour for every customer, as before.
-- depends: 0024_audit_columns

SET LOCAL lock_timeout = '5s';

-- a constant default: no rewrite, no scan
ALTER TABLE workflow_rollup_pending
    ADD COLUMN IF NOT EXISTS customer_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000'::uuid;

-- On a Citus cluster, for each changed execution or step: its hour, for its customer, always
-- marked. A shard has no transition tables, and the advisory lock a writer takes on the worker
-- holding its row is not the one maintain() takes on the coordinator, so the watermark cannot
-- tell the hours that need no mark; maintain() consumes every mark. A step's hour is its
-- execution's, read on the same node (the two are placed together by customer).
CREATE OR REPLACE FUNCTION optiinfra_rollup_mark() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF TG_ARGV[0] = 'step' THEN
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO workflow_rollup_pending (customer_id, hour)
            SELECT e.customer_id, date_trunc('hour', e.created_at, 'UTC') FROM workflow_executions e
             WHERE e.customer_id = NEW.customer_id AND e.id = NEW.workflow_execution_id;
        END IF;
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.workflow_execution_id IS DISTINCT FROM NEW.workflow_execution_id) THEN
            INSERT INTO workflow_rollup_pending (customer_id, hour)
            SELECT e.customer_id, date_trunc('hour', e.created_at, 'UTC') FROM workflow_executions e
             WHERE e.customer_id = OLD.customer_id AND e.id = OLD.workflow_execution_id;
        END IF;
    ELSE
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO workflow_rollup_pending (customer_id, hour)
            VALUES (NEW.customer_id, date_trunc('hour', NEW.created_at, 'UTC'));
        END IF;
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.created_at IS DISTINCT FROM NEW.created_at) THEN
            INSERT INTO workflow_rollup_pending (customer_id, hour)
            VALUES (OLD.customer_id, date_trunc('hour', OLD.created_at, 'UTC'));
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
-- called by the owner's triggers alone (as 0018 did for the functions of 0014)
REVOKE ALL ON FUNCTION optiinfra_rollup_mark() FROM PUBLIC;
