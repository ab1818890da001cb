-- name: insert
-- A new capability version.
INSERT INTO agent_capabilities (agent_id, capability_name, capability_version, description, parameters, is_enabled)
VALUES (:agent_id, :capability_name, :capability_version, :description, :parameters, :is_enabled)
RETURNING id, agent_id, capability_name, capability_version, description, parameters, is_enabled,
          created_at, updated_at;

-- name: get_by_id
-- One capability.
SELECT id, agent_id, capability_name, capability_version, description, parameters, is_enabled,
       created_at, updated_at
  FROM agent_capabilities WHERE id = $1;

-- name: delete_by_id
-- Delete one capability.
DELETE FROM agent_capabilities WHERE id = $1 RETURNING id;

-- name: update
-- Partial update: each field comes as (was it given, value), by name; a given null description clears it.
UPDATE agent_capabilities
   SET description = CASE WHEN :given_description THEN :description ELSE description END,
       parameters = CASE WHEN :given_parameters THEN coalesce(:parameters, parameters) ELSE parameters END,
       is_enabled = CASE WHEN :given_is_enabled THEN coalesce(:is_enabled, is_enabled) ELSE is_enabled END
 WHERE id = :id
RETURNING id, agent_id, capability_name, capability_version, description, parameters, is_enabled,
          created_at, updated_at;

-- name: list
-- Capabilities, optionally of one agent, name and enabled flag, by name then version.
SELECT id, agent_id, capability_name, capability_version, description, parameters, is_enabled,
       created_at, updated_at
  FROM agent_capabilities
 WHERE ($1::uuid IS NULL OR agent_id = $1)
   AND ($2::text IS NULL OR capability_name = $2)
   AND ($3::boolean IS NULL OR is_enabled = $3)
 ORDER BY capability_name, capability_version, agent_id
 LIMIT $4;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM agent_capabilities;
