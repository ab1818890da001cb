-- One database's application logins reach that database only. Roles belong to the whole server,
-- and so does `optiinfra_app`: a login made for one database (a member of optiinfra_app) could
-- connect to any other database migrated on the same server, where optiinfra_app holds the same
-- grants, because databases let PUBLIC connect. Now this database lets connect only its owner,
-- superusers, and the members of `<database>_connect`, a role of its own made here: give it to
-- this database's logins (`CREATE ROLE agent LOGIN IN ROLE optiinfra_app, optiinfra_connect` for
-- a database named optiinfra). Other roles that connect (monitoring, backups) need it too.
--
-- Before upgrading a database in use, create the role and give it to the application's logins
-- (then no login loses its access when this runs):
--     CREATE ROLE optiinfra_connect NOLOGIN; GRANT optiinfra_connect TO agent;
-- A migrating role that may not create roles gets a notice naming the statements to run; the
-- database is closed to PUBLIC either way.
-- depends: 0019_guarded_tables

SET LOCAL lock_timeout = '5s';

DO $$
DECLARE
    connect_role text := current_database() || '_connect';
BEGIN
    IF octet_length(connect_role) > 63 THEN  -- role names are cut at 63 bytes
        RAISE EXCEPTION 'database name too long for its connect role % (at most 55 bytes)', connect_role
            USING ERRCODE = 'name_too_long';
    END IF;
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = connect_role) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', connect_role);
        END IF;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'could not create role % (%): as an administrator, run CREATE ROLE % NOLOGIN; GRANT CONNECT ON DATABASE % TO %; then GRANT % TO each login of this database',
            connect_role, SQLERRM, quote_ident(connect_role), quote_ident(current_database()),
            quote_ident(connect_role), quote_ident(connect_role);
    END;
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', current_database());
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = connect_role) THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), connect_role);
    END IF;
    -- a role that does not own the database gets a warning from REVOKE, not an error: fail here
    IF EXISTS (SELECT FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type = 'CONNECT') THEN
        RAISE EXCEPTION 'database % still lets every role connect: run the migrations as its owner', current_database()
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$;
