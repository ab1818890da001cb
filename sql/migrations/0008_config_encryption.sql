-- Sensitive agent configs encrypted at rest with pgcrypto.
-- When the store has a secret key, a sensitive entry's value is kept only in `config_secret`
-- (pgp_sym_encrypt of the text) and `config_value` is null. pgcrypto ships with PostgreSQL's
-- contrib modules; on a server without it the column stays empty and values are stored as text.
-- depends: 0007_tenant_isolation

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
        CREATE EXTENSION IF NOT EXISTS pgcrypto;
    END IF;
END;
$$;

ALTER TABLE agent_configs
    ALTER COLUMN config_value DROP NOT NULL,
    ADD COLUMN config_secret bytea,
    -- a value is kept either as text or encrypted, never both, never neither
    ADD CONSTRAINT agent_configs_value_or_secret_check CHECK ((config_value IS NULL) <> (config_secret IS NULL)),
    ADD CONSTRAINT agent_configs_secret_is_sensitive_check CHECK (config_secret IS NULL OR is_sensitive);
