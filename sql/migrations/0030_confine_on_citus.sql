-- Confinement that reaches the workers of a Citus cluster. The coordinator runs a statement's work
-- on the workers over connections of its own, opened as the current role (optiinfra_tenant once
-- confined), and a value bound by set_config() reaches none of them: a shard's policies saw no
-- customer, and a confined statement found and wrote nothing there. Citus sends a `SET LOCAL`
-- (with citus.propagate_set_commands = 'local') to the workers already in the transaction and
-- replays it on every connection that joins the transaction later, so on a Citus coordinator
-- `optiinfra_confine` binds the customer that way too. Citus replays the whole text of the
-- statement that made the setting: here the one EXECUTEd in the function, and nothing else (a
-- client's `BEGIN; SELECT optiinfra_confine(...); SET LOCAL ...` would be replayed whole).
--
-- Should a worker connection still miss the setting, it fails closed: its policies see no
-- customer, so it shows no row and takes none. Reads open a transaction on the workers (and so get
-- the setting) only with citus.select_opens_transaction_block on, its default: set for the
-- transaction here, whatever the server says.
--
-- A session's binding (local => false) reaches no worker (Citus propagates no session setting):
-- on the coordinator (group 0) of a schema with tables on the workers (distributed or reference
-- tables) it is refused with SQLSTATE OI002, rather than bind a session whose statements would
-- find nothing there. On a worker it binds that node's session as on one server: live events read
-- the trail's rows of the node's own shards there, on a connection of their own (0027); a
-- statement that fans out from a worker to another node finds that node's customer unbound, and
-- so nothing.
--
-- Where Citus is not loaded (no citus.propagate_set_commands setting: one PostgreSQL server)
-- nothing changes, for one lookup of a setting.
-- depends: 0029_approval_check_by_customer

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
    IF current_setting('citus.propagate_set_commands', true) IS NOT NULL THEN  -- Citus is loaded
        IF local THEN
            SET LOCAL citus.select_opens_transaction_block = on;
            SET LOCAL citus.propagate_set_commands = 'local';
            -- its text alone is replayed on every worker connection of the transaction
            EXECUTE format('SET LOCAL optiinfra.customer_id = %L', customer::text);
        ELSIF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL
              AND EXISTS (SELECT FROM pg_catalog.pg_dist_local_group g WHERE g.groupid = 0)
              AND EXISTS (SELECT FROM pg_catalog.pg_dist_partition d WHERE d.partmethod = 'h' OR d.repmodel = 't') THEN
            RAISE EXCEPTION 'a session cannot be confined to a customer on a Citus cluster: the workers never see a session''s binding'
                USING ERRCODE = 'OI002',
                      HINT = 'confine each transaction (optiinfra_confine(customer)); a Store tells a distributed schema when it connects: reopen stores opened before distribute';
        END IF;
    END IF;
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
