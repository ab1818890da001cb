-- name: insert
-- A new agent.
INSERT INTO agents (type, name, version, status, endpoint, capabilities, last_heartbeat, metadata)
VALUES (:type, :name, :version, :status, :endpoint, :capabilities, :last_heartbeat, :metadata)
RETURNING id, type, name, version, status, endpoint, capabilities, last_heartbeat, metadata, created_at, updated_at;

-- name: get_by_id
-- One agent.
SELECT id, type, name, version, status, endpoint, capabilities, last_heartbeat, metadata, created_at, updated_at
  FROM agents WHERE id = $1;

-- name: delete_by_id
-- Delete an agent; its state, configs, metrics and workflows go with it, its events stay.
DELETE FROM agents WHERE id = $1 RETURNING id;

-- name: update
-- Partial update: each field comes as (was it given, value), by name.
UPDATE agents
   SET name = CASE WHEN :given_name THEN coalesce(:name, name) ELSE name END,
       version = CASE WHEN :given_version THEN coalesce(:version, version) ELSE version END,
       status = CASE WHEN :given_status THEN coalesce(:status, status) ELSE status END,
       endpoint = CASE WHEN :given_endpoint THEN :endpoint ELSE endpoint END,
       capabilities = CASE WHEN :given_capabilities THEN coalesce(:capabilities, capabilities) ELSE capabilities END,
       metadata = CASE WHEN :given_metadata THEN coalesce(:metadata, metadata) ELSE metadata END
 WHERE id = :id
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

-- name: names_by_id
-- The name of each agent of a set of ids (agents are shared: a confined store reads them too).
SELECT id, name FROM agents WHERE id = ANY($1::uuid[]);
