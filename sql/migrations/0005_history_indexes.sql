-- Covering index for workflow statistics and trends of one customer over a window of created_at:
-- the statistics, trend and performance statements read it with an index-only scan instead of
-- visiting one heap page per execution.
-- depends: 0004_workflow_transitions

CREATE INDEX workflow_executions_customer_id_created_at_stats_idx
    ON workflow_executions (customer_id, created_at)
    INCLUDE (status, workflow_type, started_at, completed_at, agent_id);

-- Retention finds finished executions oldest first by completed_at (pending and running have none).
CREATE INDEX workflow_executions_completed_at_idx
    ON workflow_executions (completed_at) WHERE completed_at IS NOT NULL;
