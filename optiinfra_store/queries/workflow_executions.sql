-- name: insert
-- A new execution; columns in WorkflowExecutionCreate's field order.
INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status, started_at, completed_at,
                                 input_data, output_data, error_details, metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, created_at, updated_at;

-- name: get_by_id
-- One execution.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, created_at, updated_at
  FROM workflow_executions WHERE id = $1;

-- name: get_status
-- The current status, to explain why a transition matched nothing.
SELECT status FROM workflow_executions WHERE id = $1;

-- name: delete_by_id
-- Delete an execution with its steps and artifacts.
DELETE FROM workflow_executions WHERE id = $1 RETURNING id;

-- name: update
-- Partial update of the data columns: each field comes as (was it given, value).
UPDATE workflow_executions
   SET metadata = CASE WHEN $2 THEN coalesce($3, metadata) ELSE metadata END,
       input_data = CASE WHEN $4 THEN coalesce($5, input_data) ELSE input_data END,
       output_data = CASE WHEN $6 THEN coalesce($7, output_data) ELSE output_data END
 WHERE id = $1
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, created_at, updated_at;

-- name: start
-- pending -> running.
WITH audit AS MATERIALIZED (
    -- who and why, for the transition trigger; local to this statement's transaction
    SELECT set_config('optiinfra.actor', coalesce($2::text, ''), true),
           set_config('optiinfra.reason', coalesce($3::jsonb::text, ''), true)
)
UPDATE workflow_executions SET status = 'running', started_at = now()
 WHERE id = $1 AND (SELECT true FROM audit) AND status = 'pending'
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, created_at, updated_at;

-- name: complete
-- running -> completed, with the output (kept as is when $2 is null).
WITH audit AS MATERIALIZED (
    -- who and why, for the transition trigger; local to this statement's transaction
    SELECT set_config('optiinfra.actor', coalesce($3::text, ''), true),
           set_config('optiinfra.reason', coalesce($4::jsonb::text, ''), true)
)
UPDATE workflow_executions
   SET status = 'completed', completed_at = greatest(now(), started_at), output_data = coalesce($2, output_data)
 WHERE id = $1 AND (SELECT true FROM audit) AND status = 'running'
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, created_at, updated_at;

-- name: fail
-- running -> failed, with what went wrong.
WITH audit AS MATERIALIZED (
    -- who and why, for the transition trigger; local to this statement's transaction
    SELECT set_config('optiinfra.actor', coalesce($3::text, ''), true),
           set_config('optiinfra.reason', coalesce($4::jsonb::text, ''), true)
)
UPDATE workflow_executions
   SET status = 'failed', completed_at = greatest(now(), started_at), error_details = coalesce($2, error_details)
 WHERE id = $1 AND (SELECT true FROM audit) AND status = 'running'
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, created_at, updated_at;

-- name: cancel
-- pending or running -> cancelled; the reason, if any, goes to error_details and the audit trail.
WITH audit AS MATERIALIZED (
    -- who and why, for the transition trigger; local to this statement's transaction
    SELECT set_config('optiinfra.actor', coalesce($3::text, ''), true),
           set_config('optiinfra.reason', coalesce($2::jsonb::text, ''), true)
)
UPDATE workflow_executions
   SET status = 'cancelled', completed_at = greatest(now(), started_at),
       error_details = CASE WHEN $2::jsonb IS NULL THEN error_details
                            ELSE jsonb_build_object('error_type', 'Cancelled') || $2::jsonb END
 WHERE id = $1 AND (SELECT true FROM audit) AND status IN ('pending', 'running')
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, created_at, updated_at;

-- name: time_out
-- running -> timeout.
WITH audit AS MATERIALIZED (
    -- who and why, for the transition trigger; local to this statement's transaction
    SELECT set_config('optiinfra.actor', coalesce($3::text, ''), true),
           set_config('optiinfra.reason', coalesce($4::jsonb::text, ''), true)
)
UPDATE workflow_executions
   SET status = 'timeout', completed_at = greatest(now(), started_at), error_details = coalesce($2, error_details)
 WHERE id = $1 AND (SELECT true FROM audit) AND status = 'running'
RETURNING id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
          input_data, output_data, error_details, metadata, created_at, updated_at;

-- name: get_detail
-- An execution with its steps (by step_order) and artifacts, in one round trip.
SELECT e.id, e.agent_id, e.customer_id, e.workflow_type, e.status, e.started_at, e.completed_at,
       e.input_data, e.output_data, e.error_details, e.metadata, e.created_at, e.updated_at,
       coalesce((
           SELECT jsonb_agg(s ORDER BY s.step_order)
             FROM (SELECT id, workflow_execution_id, step_name, step_order, status, started_at, completed_at,
                          input_data, output_data, error_details, retry_count, max_retries, metadata,
                          created_at, updated_at
                     FROM workflow_steps WHERE workflow_execution_id = e.id) s
       ), '[]') AS steps,
       coalesce((
           SELECT jsonb_agg(a ORDER BY a.created_at, a.id)
             FROM (SELECT id, workflow_execution_id, workflow_step_id, artifact_type, artifact_name,
                          artifact_path, artifact_size_bytes, content_type, metadata, created_at, updated_at
                     FROM workflow_artifacts WHERE workflow_execution_id = e.id) a
       ), '[]') AS artifacts
  FROM workflow_executions e
 WHERE e.id = $1;

-- name: list
-- One page, newest first (keyset on created_at, id), with optional filters.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, created_at, updated_at
  FROM workflow_executions
 WHERE ($1::uuid IS NULL OR customer_id = $1)
   AND ($2::uuid IS NULL OR agent_id = $2)
   AND ($3::text IS NULL OR workflow_type = $3::workflow_type)
   AND ($4::text[] IS NULL OR status = ANY($4::text[]::workflow_status[]))
   AND ($5::timestamptz IS NULL OR started_at >= $5)
   AND ($6::timestamptz IS NULL OR started_at < $6)
   AND ($7::timestamptz IS NULL OR (created_at, id) < ($7, $8::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT $9;

-- name: list_active
-- Every pending or running execution, oldest first.
SELECT id, agent_id, customer_id, workflow_type, status, started_at, completed_at,
       input_data, output_data, error_details, metadata, created_at, updated_at
  FROM workflow_executions
 WHERE status IN ('pending', 'running')
 ORDER BY created_at, id;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM workflow_executions;

-- name: history
-- Every status change of the execution and its steps, oldest first.
SELECT id, workflow_execution_id, workflow_step_id, from_status, to_status, at, actor, reason
  FROM workflow_transitions
 WHERE workflow_execution_id = $1
 ORDER BY id;
