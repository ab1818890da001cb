-- The role stays: an administrator may have made it, and logins may hold it.
SET LOCAL lock_timeout = '5s';

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO PUBLIC', current_database());
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = current_database() || '_connect') THEN
        EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM %I', current_database(), current_database() || '_connect');
    END IF;
END;
$$;
