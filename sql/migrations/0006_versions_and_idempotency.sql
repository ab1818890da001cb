-- Optimistic concurrency and retried creates.
-- `version` counts the writes of an execution or an agent's state (a trigger increments it on
-- every UPDATE, raw SQL included), so a writer can say which version it read and be refused if
-- another wrote first. `idempotency_key` lets an agent retry a create whose reply it lost: the
-- key is unique per agent, and the retry gets the row the first attempt made.
-- depends: 0005_history_indexes

ALTER TABLE workflow_executions
    ADD COLUMN idempotency_key varchar(255),
    ADD COLUMN version integer NOT NULL DEFAULT 1,
    ADD CONSTRAINT workflow_executions_agent_id_idempotency_key_key UNIQUE (agent_id, idempotency_key),
    ADD CONSTRAINT workflow_executions_idempotency_key_check CHECK (btrim(idempotency_key) <> ''),
    ADD CONSTRAINT workflow_executions_version_check CHECK (version >= 1);

ALTER TABLE agent_states
    ADD COLUMN version integer NOT NULL DEFAULT 1,
    ADD CONSTRAINT agent_states_version_check CHECK (version >= 1);

CREATE FUNCTION optiinfra_next_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$;

CREATE TRIGGER workflow_executions_next_version BEFORE UPDATE ON workflow_executions
    FOR EACH ROW EXECUTE FUNCTION optiinfra_next_version();
CREATE TRIGGER agent_states_next_version BEFORE UPDATE ON agent_states
    FOR EACH ROW EXECUTE FUNCTION optiinfra_next_version();
