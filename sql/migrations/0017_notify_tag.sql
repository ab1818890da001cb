-- Live-event notifications no longer name their customer. LISTEN needs no privilege: any role
-- that can connect hears every payload on the channel. The payload is now
-- "<transition id>:<tag>", where the tag is HMAC-SHA256(key, customer id) cut to 128 bits and the
-- key is random, made here, and readable by the application role alone (`optiinfra_notify_key()`).
-- A listener without the key learns neither which customer a notification is about nor can it
-- test a guess; the store's events hub computes the tag of each customer it serves and still
-- wakes only that customer's streams. A tag is stable per customer: a listener can tell that the
-- same (unnamed) customer is active again, as it can count transitions from their ids.
-- depends: 0016_notify_customer

SET LOCAL lock_timeout = '5s';

-- One row: the key, and the key padded to SHA-256's block and xored with HMAC's inner and outer
-- pads (RFC 2104), so the trigger computes the tag with two sha256() calls. No grants: the owner's
-- functions read it.
CREATE TABLE optiinfra_notify_key (
    id boolean PRIMARY KEY DEFAULT true
        CONSTRAINT optiinfra_notify_key_one_row_check CHECK (id),
    key bytea NOT NULL
        CONSTRAINT optiinfra_notify_key_key_check CHECK (length(key) = 32),
    inner_key bytea NOT NULL,
    outer_key bytea NOT NULL
);
COMMENT ON TABLE optiinfra_notify_key IS 'internal: the key of the live-event tags; read by the owner''s functions only';

DO $$
DECLARE
    -- gen_random_uuid() draws 122 bits from the server's strong random source; two of them
    secret bytea := uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid());
    padded bytea := secret || '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    inner_key bytea := padded;
    outer_key bytea := padded;
BEGIN
    FOR i IN 0..63 LOOP
        inner_key := set_byte(inner_key, i, get_byte(padded, i) # 54);  -- 0x36
        outer_key := set_byte(outer_key, i, get_byte(padded, i) # 92);  -- 0x5c
    END LOOP;
    INSERT INTO optiinfra_notify_key (key, inner_key, outer_key) VALUES (secret, inner_key, outer_key);
END;
$$;

-- The tag of a customer: hex of the first 16 bytes of HMAC-SHA256(key, the uuid's 16 bytes).
CREATE FUNCTION optiinfra_notify_tag(customer uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT encode(substr(sha256(k.outer_key || sha256(k.inner_key || uuid_send(customer))), 1, 16), 'hex')
      FROM optiinfra_notify_key k
$$;
REVOKE ALL ON FUNCTION optiinfra_notify_tag(uuid) FROM PUBLIC;

-- The key itself, for the store's events hub (which computes the same tags in the client).
CREATE FUNCTION optiinfra_notify_key() RETURNS bytea
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT k.key FROM optiinfra_notify_key k
$$;
REVOKE ALL ON FUNCTION optiinfra_notify_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_notify_key() TO optiinfra_app;

CREATE OR REPLACE FUNCTION optiinfra_record_transition() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    transition_id bigint;
    execution_id uuid;
    step_id uuid;
    customer uuid;
BEGIN
    IF TG_TABLE_NAME = 'workflow_steps' THEN
        execution_id := NEW.workflow_execution_id;
        step_id := NEW.id;
        SELECT e.customer_id INTO customer FROM workflow_executions e WHERE e.id = execution_id;
    ELSE
        execution_id := NEW.id;
        customer := NEW.customer_id;
    END IF;
    INSERT INTO workflow_transitions (workflow_execution_id, workflow_step_id, from_status, to_status, actor, reason)
    VALUES (execution_id, step_id,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.status::text END,
            NEW.status::text,
            nullif(current_setting('optiinfra.actor', true), ''),
            nullif(current_setting('optiinfra.reason', true), '')::jsonb)
    RETURNING id INTO transition_id;
    -- spent: the next change in this transaction must not inherit them
    PERFORM set_config('optiinfra.actor', '', true), set_config('optiinfra.reason', '', true);
    -- delivered at commit, in commit order; listeners read the row by id
    PERFORM pg_notify('optiinfra_workflow_transitions',
                      transition_id::text || ':' || coalesce(optiinfra_notify_tag(customer), ''));
    RETURN NULL;
END;
$$;
