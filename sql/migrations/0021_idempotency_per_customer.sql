-- transactional: false
--
-- Idempotency keys are unique per customer and agent, no longer per agent across customers: an
-- agent shared by many customers could otherwise tell a confined caller that another customer had
-- used a key (AlreadyExists where an unused key succeeds), and a create under a key another
-- customer's open transaction had just taken waited for that transaction. The new key leads with
-- customer_id, as a table distributed by customer needs.
--
-- Deploy the code of this release before running it: its insert names no conflict target and
-- works on both keys; code of an earlier release names (agent_id, idempotency_key) and fails on
-- the new key.
--
-- The index is built beside writers (CONCURRENTLY); the swap of the constraints is one short
-- transaction. Every step can run again after a failure (an index left invalid by a failed build:
-- DROP INDEX CONCURRENTLY it, then run this again).
-- depends: 0020_database_connect

SET lock_timeout = '5s';

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS workflow_executions_customer_id_agent_id_idempotency_key_key
    ON workflow_executions (customer_id, agent_id, idempotency_key);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_constraint WHERE conname = 'workflow_executions_customer_id_agent_id_idempotency_key_key'
                                           AND conrelid = 'public.workflow_executions'::regclass) THEN
        RETURN;
    END IF;
    ALTER TABLE workflow_executions
        ADD CONSTRAINT workflow_executions_customer_id_agent_id_idempotency_key_key
            UNIQUE USING INDEX workflow_executions_customer_id_agent_id_idempotency_key_key,
        DROP CONSTRAINT workflow_executions_agent_id_idempotency_key_key;
END;
$$;
