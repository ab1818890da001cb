-- name: insert
-- A new agent; columns in AgentCreate's field order.
INSERT INTO agents (type, name, version, status, endpoint, capabilities, last_heartbeat, metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id, type, name, version, status, endpoint, capabilities, last_heartbeat, metadata, created_at, updated_at;

-- name: get_by_id
-- One agent.
SELECT id, type, name, version, status, endpoint, capabilities, last_heartbeat, metadata, created_at, updated_at
  FROM agents WHERE id = $1;

-- name: delete_by_id
-- Delete an agent; its state, configs, metrics and workflows go with it, its events stay.
DELETE FROM agents WHERE id = $1 RETURNING id;

-- name: update
-- Partial update: each field comes as (was it given, value).
UPDATE agents
   SET name = CASE WHEN $2 THEN coalesce($3, name) ELSE name END,
       version = CASE WHEN $4 THEN coalesce($5, version) ELSE version END,
       status = CASE WHEN $6 THEN coalesce($7, status) ELSE status END,
       endpoint = CASE WHEN $8 THEN $9 ELSE endpoint END,
       capabilities = CASE WHEN $10 THEN coalesce($11, capabilities) ELSE capabilities END,
       metadata = CASE WHEN $12 THEN coalesce($13, metadata) ELSE metadata END
 WHERE id = $1
RETURNING id, type, name, version, status, endpoint, capabilities, last_heartbeat, metadata, created_at, updated_at;

-- name: list
-- Agents, optionally of one type and status, oldest first.
SELECT id, type, name, version, status, endpoint, capabilities, last_heartbeat, metadata, created_at, updated_at
  FROM agents
 WHERE ($1::text IS NULL OR type = $1::agent_type)
   AND ($2::text IS NULL OR status = $2::agent_status)
 ORDER BY created_at, id
 LIMIT $3;

-- name: heartbeat
-- Record that the agent is alive, on the database's clock.
UPDATE agents SET last_heartbeat = now() WHERE id = $1
RETURNING id, type, name, version, status, endpoint, capabilities, last_heartbeat, metadata, created_at, updated_at;

-- name: list_stale
-- Agents not heard from within the interval (or never), longest silent first.
SELECT id, type, name, version, status, endpoint, capabilities, last_heartbeat, metadata, created_at, updated_at
  FROM agents
 WHERE last_heartbeat IS NULL OR last_heartbeat < now() - $1::interval
 ORDER BY last_heartbeat NULLS FIRST, id;

-- name: list_with_active_workflow
-- Agents whose runtime state is active with a current workflow.
SELECT a.id, a.type, a.name, a.version, a.status, a.endpoint, a.capabilities, a.last_heartbeat, a.metadata,
       a.created_at, a.updated_at
  FROM agents a
  JOIN agent_states s ON s.agent_id = a.id
 WHERE s.status = 'active'
   AND (s.current_workflow IS NOT NULL OR s.current_workflow_id IS NOT NULL)
 ORDER BY a.created_at, a.id;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM agents;
