-- optiinfra_confine as 0019 made it: no binding sent to Citus workers, sessions bound anywhere.

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
