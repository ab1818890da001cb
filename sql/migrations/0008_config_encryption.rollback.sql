-- Refused while encrypted values exist: decrypt them first (they cannot be kept as text without the key).
ALTER TABLE agent_configs
    DROP CONSTRAINT agent_configs_secret_is_sensitive_check,
    DROP CONSTRAINT agent_configs_value_or_secret_check,
    DROP COLUMN config_secret,
    ALTER COLUMN config_value SET NOT NULL;
DROP EXTENSION IF EXISTS pgcrypto;
