-- name: insert
-- An agent's first state row, heartbeat defaults to now.
-- Nothing is written and nothing returned when the agent has a state: the caller tells whether it
-- is one it may see (without aborting the caller's transaction on a unique violation).
INSERT INTO agent_states (agent_id, status, current_workflow, current_workflow_id, workflow_data,
                          resource_locks, error_count, last_error, last_heartbeat)
VALUES (:agent_id, :status, :current_workflow, :current_workflow_id, :workflow_data, :resource_locks, :error_count, :last_error, coalesce(:last_heartbeat, now()))
ON CONFLICT (agent_id) DO NOTHING
RETURNING id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
          error_count, last_error, last_heartbeat, version, created_at, updated_at;

-- name: upsert
-- Insert an agent's state, or update the fields the caller gave (`given`: their names) on the one it
-- has. (VALUES, not a SELECT: Citus cannot plan parameters in the ON CONFLICT clause of an INSERT ...
-- SELECT into a reference table.)
INSERT INTO agent_states (agent_id, status, current_workflow, current_workflow_id, workflow_data,
                          resource_locks, error_count, last_error, last_heartbeat)
VALUES (:agent_id::uuid, :status::agent_status_detail, :current_workflow::varchar, :current_workflow_id::uuid,
        :workflow_data::jsonb, :resource_locks::text[], :error_count::integer, :last_error::jsonb,
        coalesce(:last_heartbeat::timestamptz, now()))
ON CONFLICT (agent_id) DO UPDATE
   SET status = CASE WHEN 'status' = ANY(:given::text[]) THEN EXCLUDED.status ELSE agent_states.status END,
       current_workflow = CASE WHEN 'current_workflow' = ANY(:given::text[])
                               THEN EXCLUDED.current_workflow ELSE agent_states.current_workflow END,
       current_workflow_id = CASE WHEN 'current_workflow_id' = ANY(:given::text[])
                                  THEN EXCLUDED.current_workflow_id ELSE agent_states.current_workflow_id END,
       workflow_data = CASE WHEN 'workflow_data' = ANY(:given::text[])
                            THEN EXCLUDED.workflow_data ELSE agent_states.workflow_data END,
       resource_locks = CASE WHEN 'resource_locks' = ANY(:given::text[])
                             THEN EXCLUDED.resource_locks ELSE agent_states.resource_locks END,
       error_count = CASE WHEN 'error_count' = ANY(:given::text[])
                          THEN EXCLUDED.error_count ELSE agent_states.error_count END,
       last_error = CASE WHEN 'last_error' = ANY(:given::text[]) THEN EXCLUDED.last_error ELSE agent_states.last_error END,
       last_heartbeat = EXCLUDED.last_heartbeat
RETURNING id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
          error_count, last_error, last_heartbeat, version, created_at, updated_at;

-- name: update_versioned
-- Update the fields the caller gave (`given`: their names) on the agent's state, only if it is still
-- at the expected version; never inserts. The heartbeat given, else now(): the first of the two that
-- is not null, as coalesce would (Citus refuses now() inside coalesce in an UPDATE).
UPDATE agent_states
   SET status = CASE WHEN 'status' = ANY(:given::text[]) THEN :status::agent_status_detail ELSE status END,
       current_workflow = CASE WHEN 'current_workflow' = ANY(:given::text[])
                               THEN :current_workflow::varchar ELSE current_workflow END,
       current_workflow_id = CASE WHEN 'current_workflow_id' = ANY(:given::text[])
                                  THEN :current_workflow_id::uuid ELSE current_workflow_id END,
       workflow_data = CASE WHEN 'workflow_data' = ANY(:given::text[])
                            THEN :workflow_data::jsonb ELSE workflow_data END,
       resource_locks = CASE WHEN 'resource_locks' = ANY(:given::text[])
                             THEN :resource_locks::text[] ELSE resource_locks END,
       error_count = CASE WHEN 'error_count' = ANY(:given::text[]) THEN :error_count::integer ELSE error_count END,
       last_error = CASE WHEN 'last_error' = ANY(:given::text[]) THEN :last_error::jsonb ELSE last_error END,
       last_heartbeat = (array_remove(ARRAY[:last_heartbeat::timestamptz, now()], NULL))[1]
 WHERE agent_id = :agent_id::uuid AND version = :expected_version::integer
RETURNING id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
          error_count, last_error, last_heartbeat, version, created_at, updated_at;

-- name: get_by_id
-- One state row.
SELECT id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
       error_count, last_error, last_heartbeat, version, created_at, updated_at
  FROM agent_states WHERE id = $1;

-- name: get_for_agent
-- The state row of an agent.
SELECT id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
       error_count, last_error, last_heartbeat, version, created_at, updated_at
  FROM agent_states WHERE agent_id = $1;

-- name: get_version
-- The version of an agent's state, to explain why an upsert with an expected version matched
-- nothing, once it is durable (as workflow_executions.get_status: a caller may take it for its own
-- write applied).
SELECT version, pg_logical_emit_message(true, 'optiinfra.durable', '') AS durable
  FROM agent_states WHERE agent_id = $1;

-- name: delete_by_id
-- Delete one state row.
DELETE FROM agent_states WHERE id = $1 RETURNING id;

-- name: heartbeat
-- Record that the agent is alive, on the database's clock.
UPDATE agent_states SET last_heartbeat = now() WHERE agent_id = $1
RETURNING id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
          error_count, last_error, last_heartbeat, version, created_at, updated_at;

-- name: record_error
-- Count one more error and keep it as the last; the row lock makes concurrent calls queue, none is lost.
UPDATE agent_states SET error_count = error_count + 1, last_error = $2 WHERE agent_id = $1
RETURNING id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
          error_count, last_error, last_heartbeat, version, created_at, updated_at;

-- name: set_current_workflow
-- Point the state at a workflow execution, or at none.
UPDATE agent_states SET current_workflow_id = $2 WHERE agent_id = $1
RETURNING id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
          error_count, last_error, last_heartbeat, version, created_at, updated_at;

-- name: release
-- Give the state back from the customer whose work it describes, with what it held of that work.
UPDATE agent_states
   SET customer_id = NULL, current_workflow = NULL, current_workflow_id = NULL, workflow_data = '{}',
       resource_locks = '{}', last_error = NULL
 WHERE agent_id = $1
RETURNING id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
          error_count, last_error, last_heartbeat, version, created_at, updated_at;

-- name: list
-- State rows, optionally of one status, oldest first.
SELECT id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
       error_count, last_error, last_heartbeat, version, created_at, updated_at
  FROM agent_states
 WHERE ($1::text IS NULL OR status = $1::agent_status_detail)
 ORDER BY created_at, id
 LIMIT $2;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM agent_states;
