-- name: insert
-- A new config entry; columns in AgentConfigCreate's field order.
INSERT INTO agent_configs (agent_id, config_key, config_type, config_value, description, is_sensitive)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, agent_id, config_key, config_value, config_type, description, is_sensitive, created_at, updated_at;

-- name: upsert
-- Set a key: insert it, or replace its value and type; a new description replaces the old, sensitivity is sticky.
INSERT INTO agent_configs (agent_id, config_key, config_type, config_value, description, is_sensitive)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (agent_id, config_key) DO UPDATE
   SET config_value = EXCLUDED.config_value,
       config_type = EXCLUDED.config_type,
       description = coalesce(EXCLUDED.description, agent_configs.description),
       is_sensitive = agent_configs.is_sensitive OR EXCLUDED.is_sensitive
RETURNING id, agent_id, config_key, config_value, config_type, description, is_sensitive, created_at, updated_at;

-- name: get_by_id
-- One config entry.
SELECT id, agent_id, config_key, config_value, config_type, description, is_sensitive, created_at, updated_at
  FROM agent_configs WHERE id = $1;

-- name: get_by_key
-- An agent's entry for one key.
SELECT id, agent_id, config_key, config_value, config_type, description, is_sensitive, created_at, updated_at
  FROM agent_configs WHERE agent_id = $1 AND config_key = $2;

-- name: delete_by_id
-- Delete one config entry.
DELETE FROM agent_configs WHERE id = $1 RETURNING id;

-- name: list
-- Config entries, optionally of one agent and one type, by agent then key.
SELECT id, agent_id, config_key, config_value, config_type, description, is_sensitive, created_at, updated_at
  FROM agent_configs
 WHERE ($1::uuid IS NULL OR agent_id = $1)
   AND ($2::text IS NULL OR config_type = $2::config_type)
 ORDER BY agent_id, config_key
 LIMIT $3;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM agent_configs;
