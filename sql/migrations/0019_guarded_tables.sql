-- Confinement checks the tables the catalog says are guarded, not a list written out once.
-- `optiinfra_confine` used to check row-level security on the tables named in 0010 and 0014: a
-- table added later with a policy but with row-level security turned off, or a policy-guarded
-- table dropped from the list, would have gone unnoticed. It now checks every table of the schema
-- that has a row-level security policy (pg_policy is small: this costs what the list did), and
-- refuses when there is none at all. (A table whose policies are dropped and whose row-level
-- security is turned off drops out: only its owner can do that, and the schema tests fail.)
--
-- Every other table of the schema says what it is, in its comment: `shared:` (what every customer
-- may read, and why) or `internal:` (the store's own bookkeeping, granted to no confined role).
-- The schema tests hold every table to this: guarded, shared or internal, and nothing internal
-- reachable by optiinfra_tenant.
-- depends: 0018_owner_functions

SET LOCAL lock_timeout = '5s';

CREATE OR REPLACE FUNCTION optiinfra_confine(customer uuid, local boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    policies integer;
    holds boolean;
    unguarded text;
BEGIN
    IF customer IS NULL THEN
        RAISE EXCEPTION 'optiinfra_confine: no customer given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM set_config('role', 'optiinfra_tenant', local);
    PERFORM set_config('optiinfra.customer_id', customer::text, local);
    -- as optiinfra_tenant now, row_security_active() answers for it. Every table of the schema
    -- with a policy counts. A table elsewhere (another schema, a session's temporary table) is
    -- not the store's: its policy must not stop confinement. Its name is schema-qualified under
    -- this function's search_path, which is cheaper to test than a join to pg_class before every
    -- confined statement.
    SELECT count(*), bool_and(row_security_active(p.polrelid)) INTO policies, holds
      FROM pg_policy p WHERE p.polrelid::regclass::text !~ '^("([^"]|"")*"|[^".]*)[.]';
    IF policies = 0 OR NOT holds THEN
        SELECT string_agg(DISTINCT p.polrelid::regclass::text, ', ') INTO unguarded
          FROM pg_policy p
         WHERE p.polrelid::regclass::text !~ '^("([^"]|"")*"|[^".]*)[.]' AND NOT row_security_active(p.polrelid);
        RAISE EXCEPTION 'row-level security does not hold for optiinfra_tenant: a confined transaction would see every customer'
            USING ERRCODE = 'OI001',
                  DETAIL = coalesce('not in force on: ' || unguarded, 'no table has a row-level security policy'),
                  HINT = 'optiinfra_tenant must not be a superuser, bypass row-level security, or own (or be a member of the owner of) the tables; every table with a policy must have row-level security enabled';
    END IF;
END;
$$;

COMMENT ON TABLE agents IS
    'shared: agents work for every customer; a confined transaction reads them and changes none';
COMMENT ON TABLE agent_capabilities IS
    'shared: what each agent can do, the same for every customer; read only when confined';
COMMENT ON TABLE agent_metrics IS
    'shared: an agent''s measurements of the infrastructure it runs on; a confined transaction reads them and records its own';
COMMENT ON TABLE workflow_rollup_state IS
    'internal: how far the analytics rollups reach; written by optiinfra_roll_up only';
COMMENT ON TABLE workflow_rollup_pending IS
    'internal: hours whose rollups must be rebuilt; written by the owner''s triggers only';
