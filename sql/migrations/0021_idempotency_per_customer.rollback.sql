-- transactional: false
--
-- Back to keys unique per agent. Fails (unique violation, nothing changed) while two customers
-- hold the same key of one agent.
SET lock_timeout = '5s';

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS workflow_executions_agent_id_idempotency_key_key
    ON workflow_executions (agent_id, idempotency_key);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_constraint WHERE conname = 'workflow_executions_agent_id_idempotency_key_key'
                                           AND conrelid = 'public.workflow_executions'::regclass) THEN
        RETURN;
    END IF;
    ALTER TABLE workflow_executions
        ADD CONSTRAINT workflow_executions_agent_id_idempotency_key_key
            UNIQUE USING INDEX workflow_executions_agent_id_idempotency_key_key,
        DROP CONSTRAINT workflow_executions_customer_id_agent_id_idempotency_key_key;
END;
$$;
