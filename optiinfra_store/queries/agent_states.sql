-- name: insert
-- An agent's first state row; columns in AgentStateCreate's field order, heartbeat defaults to now.
-- Nothing is written and nothing returned when the agent has a state: the caller tells whether it
-- is one it may see (without aborting the caller's transaction on a unique violation).
INSERT INTO agent_states (agent_id, status, current_workflow, current_workflow_id, workflow_data,
                          resource_locks, error_count, last_error, last_heartbeat)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, now()))
ON CONFLICT (agent_id) DO NOTHING
RETURNING id, agent_id, customer_id, status, current_workflow, current_workflow_id, workflow_data, resource_locks,
          error_count, last_error, last_heartbeat, version, created_at, updated_at;

-- name: upsert
-- Insert an agent's state, or update the fields the caller gave ($10: their names) on the one it has;
-- with an expected version ($11), only update, and only a row still at that version.
INSERT INTO agent_states (agent_id, status, current_workflow, current_workflow_id, workflow_data,
                          resource_locks, error_count, last_error, last_heartbeat)
SELECT $1::uuid, $2::agent_status_detail, $3::varchar, $4::uuid, $5::jsonb, $6::text[], $7::integer, $8::jsonb,
       coalesce($9::timestamptz, now())
 WHERE $11::integer IS NULL OR EXISTS (SELECT FROM agent_states WHERE agent_id = $1::uuid)
ON CONFLICT (agent_id) DO UPDATE
   SET status = CASE WHEN 'status' = ANY($10::text[]) THEN EXCLUDED.status ELSE agent_states.status END,
       current_workflow = CASE WHEN 'current_workflow' = ANY($10::text[])
                               THEN EXCLUDED.current_workflow ELSE agent_states.current_workflow END,
       current_workflow_id = CASE WHEN 'current_workflow_id' = ANY($10::text[])
                                  THEN EXCLUDED.current_workflow_id ELSE agent_states.current_workflow_id END,
       workflow_data = CASE WHEN 'workflow_data' = ANY($10::text[])
                            THEN EXCLUDED.workflow_data ELSE agent_states.workflow_data END,
       resource_locks = CASE WHEN 'resource_locks' = ANY($10::text[])
                             THEN EXCLUDED.resource_locks ELSE agent_states.resource_locks END,
       error_count = CASE WHEN 'error_count' = ANY($10::text[])
                          THEN EXCLUDED.error_count ELSE agent_states.error_count END,
       last_error = CASE WHEN 'last_error' = ANY($10::text[]) THEN EXCLUDED.last_error ELSE agent_states.last_error END,
       last_heartbeat = EXCLUDED.last_heartbeat
 WHERE $11::integer IS NULL OR agent_states.version = $11
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
-- The version of an agent's state, to explain why an upsert with an expected version matched nothing.
SELECT version FROM agent_states WHERE agent_id = $1;

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
