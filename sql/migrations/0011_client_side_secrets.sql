-- Sensitive agent configs encrypted in the client (AES-256-GCM, see optiinfra_store/crypto/secrets.py):
-- the server stores ciphertext it cannot read, and never receives a key or a plaintext.
-- `secret_key_id` names the key a value was encrypted with, so several keys can be live during a
-- rotation. Values pgcrypto encrypted before (config_secret set, secret_key_id null) stay
-- readable by a store holding their key until `optiinfra-store rotate-key` re-encrypts them in
-- the client (SQL cannot, without the key); pgcrypto is not needed after that.
-- Adding a column without a default and a NOT VALID check only touches the catalog; the check is
-- then validated under a lock that lets reads and writes go on.
-- depends: 0010_tenant_wall

SET LOCAL lock_timeout = '5s';

ALTER TABLE agent_configs
    ADD COLUMN secret_key_id text,
    ADD CONSTRAINT agent_configs_secret_key_id_check
        CHECK (secret_key_id IS NULL OR (config_secret IS NOT NULL AND secret_key_id ~ '^[0-9a-f]{16}$')) NOT VALID;
ALTER TABLE agent_configs VALIDATE CONSTRAINT agent_configs_secret_key_id_check;
