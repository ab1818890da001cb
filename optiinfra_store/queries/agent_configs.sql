-- name: insert
-- A new config entry; columns in AgentConfigCreate's field order.
INSERT INTO agent_configs (agent_id, config_key, config_type, config_value, description, is_sensitive)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, agent_id, config_key, config_value, config_type, description, is_sensitive,
          config_secret IS NOT NULL AS is_encrypted, created_at, updated_at;

-- name: upsert
-- Set a key: insert it, or replace its value and type; a new description replaces the old, sensitivity is sticky.
-- An entry stored encrypted is left alone and nothing is returned: overwriting it needs the key.
INSERT INTO agent_configs (agent_id, config_key, config_type, config_value, description, is_sensitive)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (agent_id, config_key) DO UPDATE
   SET config_value = EXCLUDED.config_value,
       config_type = EXCLUDED.config_type,
       description = coalesce(EXCLUDED.description, agent_configs.description),
       is_sensitive = agent_configs.is_sensitive OR EXCLUDED.is_sensitive
 WHERE agent_configs.config_secret IS NULL
RETURNING id, agent_id, config_key, config_value, config_type, description, is_sensitive,
          config_secret IS NOT NULL AS is_encrypted, created_at, updated_at;

-- name: get_by_id
-- One config entry.
SELECT id, agent_id, config_key, config_value, config_type, description, is_sensitive,
       config_secret IS NOT NULL AS is_encrypted, created_at, updated_at
  FROM agent_configs WHERE id = $1;

-- name: get_by_key
-- An agent's entry for one key.
SELECT id, agent_id, config_key, config_value, config_type, description, is_sensitive,
       config_secret IS NOT NULL AS is_encrypted, created_at, updated_at
  FROM agent_configs WHERE agent_id = $1 AND config_key = $2;

-- name: delete_by_id
-- Delete one config entry.
DELETE FROM agent_configs WHERE id = $1 RETURNING id;

-- name: list
-- Config entries, optionally of one agent and one type, by agent then key.
SELECT id, agent_id, config_key, config_value, config_type, description, is_sensitive,
       config_secret IS NOT NULL AS is_encrypted, created_at, updated_at
  FROM agent_configs
 WHERE ($1::uuid IS NULL OR agent_id = $1)
   AND ($2::text IS NULL OR config_type = $2::config_type)
 ORDER BY agent_id, config_key
 LIMIT $3;

-- With a secret key: the same statements, writing sensitive values encrypted and reading them decrypted.
-- The key is always the last parameter.

-- name: insert_encrypted
-- A new config entry, its value encrypted if it is sensitive.
INSERT INTO agent_configs (agent_id, config_key, config_type, config_value, description, is_sensitive, config_secret)
VALUES ($1, $2, $3, CASE WHEN $6 THEN NULL ELSE $4 END, $5, $6,
        CASE WHEN $6 THEN pgp_sym_encrypt_bytea(convert_to($4, 'UTF8'), $7) END)
RETURNING id, agent_id, config_key,
       coalesce(config_value, convert_from(pgp_sym_decrypt_bytea(config_secret, $7), 'UTF8')) AS config_value,
       config_type, description, is_sensitive, config_secret IS NOT NULL AS is_encrypted, created_at, updated_at;

-- name: upsert_encrypted
-- Set a key; the value is encrypted if the entry is (or was) sensitive.
INSERT INTO agent_configs (agent_id, config_key, config_type, config_value, description, is_sensitive, config_secret)
VALUES ($1, $2, $3, CASE WHEN $6 THEN NULL ELSE $4 END, $5, $6,
        CASE WHEN $6 THEN pgp_sym_encrypt_bytea(convert_to($4, 'UTF8'), $7) END)
ON CONFLICT (agent_id, config_key) DO UPDATE
   SET config_value = CASE WHEN agent_configs.is_sensitive OR EXCLUDED.is_sensitive THEN NULL ELSE $4 END,
       config_secret = CASE WHEN agent_configs.is_sensitive OR EXCLUDED.is_sensitive
                            THEN pgp_sym_encrypt_bytea(convert_to($4, 'UTF8'), $7) END,
       config_type = EXCLUDED.config_type,
       description = coalesce(EXCLUDED.description, agent_configs.description),
       is_sensitive = agent_configs.is_sensitive OR EXCLUDED.is_sensitive
RETURNING id, agent_id, config_key,
       coalesce(config_value, convert_from(pgp_sym_decrypt_bytea(config_secret, $7), 'UTF8')) AS config_value,
       config_type, description, is_sensitive, config_secret IS NOT NULL AS is_encrypted, created_at, updated_at;

-- name: get_by_id_encrypted
-- One config entry, decrypted.
SELECT id, agent_id, config_key,
       coalesce(config_value, convert_from(pgp_sym_decrypt_bytea(config_secret, $2), 'UTF8')) AS config_value,
       config_type, description, is_sensitive, config_secret IS NOT NULL AS is_encrypted, created_at, updated_at
  FROM agent_configs WHERE id = $1;

-- name: get_by_key_encrypted
-- An agent's entry for one key, decrypted.
SELECT id, agent_id, config_key,
       coalesce(config_value, convert_from(pgp_sym_decrypt_bytea(config_secret, $3), 'UTF8')) AS config_value,
       config_type, description, is_sensitive, config_secret IS NOT NULL AS is_encrypted, created_at, updated_at
  FROM agent_configs WHERE agent_id = $1 AND config_key = $2;

-- name: list_encrypted
-- Config entries, decrypted, optionally of one agent and one type, by agent then key.
SELECT id, agent_id, config_key,
       coalesce(config_value, convert_from(pgp_sym_decrypt_bytea(config_secret, $4), 'UTF8')) AS config_value,
       config_type, description, is_sensitive, config_secret IS NOT NULL AS is_encrypted, created_at, updated_at
  FROM agent_configs
 WHERE ($1::uuid IS NULL OR agent_id = $1)
   AND ($2::text IS NULL OR config_type = $2::config_type)
 ORDER BY agent_id, config_key
 LIMIT $3;

-- name: rotate_key
-- Re-encrypt every encrypted value under a new key ($2), and encrypt the sensitive values kept as text.
UPDATE agent_configs
   SET config_secret = pgp_sym_encrypt_bytea(
           coalesce(pgp_sym_decrypt_bytea(config_secret, $1), convert_to(config_value, 'UTF8')), $2),
       config_value = NULL
 WHERE is_sensitive
RETURNING id;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM agent_configs;
