-- Values encrypted in the client stay unreadable to pgcrypto: this refuses while any exist.
DO $$
BEGIN
    IF EXISTS (SELECT FROM agent_configs WHERE secret_key_id IS NOT NULL) THEN
        RAISE EXCEPTION 'agent_configs holds values encrypted in the client: they cannot be rolled back to pgcrypto'
            USING ERRCODE = 'object_in_use';
    END IF;
END;
$$;
ALTER TABLE agent_configs DROP COLUMN secret_key_id;
