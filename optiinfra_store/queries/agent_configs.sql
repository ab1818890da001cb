-- Sensitive values are encrypted and decrypted in the client (optiinfra_store/crypto/secrets.py): these
-- statements move ciphertext (config_secret) and the id of its key (secret_key_id), never a key.
-- A sensitive value is kept either encrypted (config_value null) or, if it was written before a
-- key was set, as text; pgcrypto-era values have config_secret and no secret_key_id.

-- name: insert
-- A new config entry: a plain value, or a sensitive one encrypted (config_secret, under secret_key_id).
INSERT INTO agent_configs (agent_id, config_key, config_type, config_value, description, is_sensitive,
                           config_secret, secret_key_id)
VALUES (:agent_id, :config_key, :config_type, :config_value, :description, :is_sensitive, :config_secret, :secret_key_id)
RETURNING id, agent_id, config_key, config_value, config_type, description, is_sensitive,
          config_secret, secret_key_id, created_at, updated_at;

-- name: read_state
-- What decides how a key is written: is it sensitive, and under which key is it encrypted.
SELECT is_sensitive, config_secret, secret_key_id, config_type
  FROM agent_configs WHERE agent_id = $1 AND config_key = $2;

-- name: upsert
-- Set a key to what the client computed (plain or encrypted; sensitivity is sticky, so the client
-- keeps it), only if the stored entry is still as the client read it: as sensitive, and with the
-- same ciphertext. Otherwise nothing is written and nothing is returned.
INSERT INTO agent_configs (agent_id, config_key, config_type, config_value, description, is_sensitive,
                           config_secret, secret_key_id)
VALUES (:agent_id, :config_key, :config_type, :config_value, :description, :is_sensitive, :config_secret,
        :secret_key_id)
ON CONFLICT (agent_id, config_key) DO UPDATE
   SET config_value = EXCLUDED.config_value,
       config_secret = EXCLUDED.config_secret,
       secret_key_id = EXCLUDED.secret_key_id,
       config_type = EXCLUDED.config_type,
       description = coalesce(EXCLUDED.description, agent_configs.description),
       is_sensitive = EXCLUDED.is_sensitive
 WHERE agent_configs.is_sensitive = :stored_sensitive
   AND agent_configs.config_secret IS NOT DISTINCT FROM :stored_secret::bytea
RETURNING id, agent_id, config_key, config_value, config_type, description, is_sensitive,
          config_secret, secret_key_id, created_at, updated_at;

-- name: get_by_id
-- One config entry.
SELECT id, agent_id, config_key, config_value, config_type, description, is_sensitive,
       config_secret, secret_key_id, created_at, updated_at
  FROM agent_configs WHERE id = $1;

-- name: get_by_key
-- An agent's entry for one key.
SELECT id, agent_id, config_key, config_value, config_type, description, is_sensitive,
       config_secret, secret_key_id, created_at, updated_at
  FROM agent_configs WHERE agent_id = $1 AND config_key = $2;

-- name: delete_by_id
-- Delete one config entry.
DELETE FROM agent_configs WHERE id = $1 RETURNING id;

-- name: list
-- Config entries, optionally of one agent and one type, by agent then key.
SELECT id, agent_id, config_key, config_value, config_type, description, is_sensitive,
       config_secret, secret_key_id, created_at, updated_at
  FROM agent_configs
 WHERE ($1::uuid IS NULL OR agent_id = $1)
   AND ($2::text IS NULL OR config_type = $2::config_type)
 ORDER BY agent_id, config_key
 LIMIT $3;

-- name: rotation_batch
-- The next sensitive entries not yet encrypted under key $1 (locked; entries a writer holds are
-- left for the next pass, and that writer encrypts under the newest key anyway).
SELECT id, agent_id, config_key, config_type, config_value, config_secret, secret_key_id
  FROM agent_configs
 WHERE is_sensitive AND secret_key_id IS DISTINCT FROM $1
 ORDER BY id
 LIMIT $2
   FOR UPDATE SKIP LOCKED;

-- name: rotation_write
-- Store the batch's new ciphertexts ($2, in the order of the ids $1), all under key $3.
UPDATE agent_configs AS c
   SET config_value = NULL, config_secret = v.secret, secret_key_id = $3
  FROM unnest($1::uuid[], $2::bytea[]) AS v (id, secret)
 WHERE c.id = v.id;

-- name: rotation_pending
-- How many sensitive entries are not yet encrypted under key $1.
SELECT count(*) FROM agent_configs WHERE is_sensitive AND secret_key_id IS DISTINCT FROM $1;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM agent_configs;
