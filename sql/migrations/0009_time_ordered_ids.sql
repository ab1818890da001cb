-- Time-ordered ids for the tables that grow without bound. A random (v4) UUID puts each new row's
-- index entries on a random page of every index that holds its id, so once those indexes outgrow
-- memory, reading or deleting a batch of rows of the same age (a purge of the oldest, the steps
-- of last month's executions) costs one random read per row and per index. A version 7 UUID
-- (RFC 9562) starts with the Unix time in milliseconds: rows written together sit together in
-- every index on their ids, and the oldest rows are at one end. Ids stay unique and unguessable
-- (74 random bits); they reveal the millisecond a row was created, which created_at shows anyway.
-- Existing rows keep their ids.
-- depends: 0008_config_encryption

CREATE FUNCTION optiinfra_uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    -- a random v4 UUID whose first 48 bits become the time in ms, and whose version nibble becomes 7
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

ALTER TABLE events ALTER COLUMN id SET DEFAULT optiinfra_uuid7();
ALTER TABLE agent_metrics ALTER COLUMN id SET DEFAULT optiinfra_uuid7();
ALTER TABLE workflow_executions ALTER COLUMN id SET DEFAULT optiinfra_uuid7();
ALTER TABLE workflow_steps ALTER COLUMN id SET DEFAULT optiinfra_uuid7();
ALTER TABLE workflow_artifacts ALTER COLUMN id SET DEFAULT optiinfra_uuid7();
