-- Live events deliver only what a failover cannot take back. PostgreSQL makes a commit visible on
-- the primary before its synchronous standby has confirmed it whenever the wait is cut short (the
-- backend terminated, the primary shutting down or losing its postmaster, a cancelled wait): a
-- subscriber that acted on such a row could see it vanish when the standby is promoted. Before
-- handing out rows read up to the primary's WAL position, the store waits until this function
-- says that position is durable.
--
-- `optiinfra_durable_lsn()`: the WAL position up to which commits are durable.
-- - No synchronous standby configured (`synchronous_standby_names` empty, as on a single server
--   or a pg_auto_failover primary in wait_primary): a local commit is durable, and the function
--   says so with the highest position there is (FFFFFFFF/FFFFFFFF): whatever was read is durable.
-- - Otherwise: the lowest flush position among the standbys that are synchronous (sync_state sync
--   or quorum) now, or NULL while none is connected: nothing more is durable (fail closed).
-- - On a standby: the same (what it replayed, it has).
-- The flush positions in pg_stat_replication are shown only to roles with the privileges of
-- pg_read_all_stats (pg_monitor has them): the function runs as its owner (the role that applied
-- the migrations, usually a superuser) and returns only that one position. An owner without those
-- privileges is refused with insufficient_privilege naming the grant, never a NULL that would
-- hold every subscriber back silently.
-- It can run again over itself (`mark`/`unmark` and a re-run leave the same function and grants).
-- depends: 0022_customer_id_everywhere

SET LOCAL lock_timeout = '5s';

CREATE OR REPLACE FUNCTION optiinfra_durable_lsn() RETURNS pg_lsn
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    durable pg_lsn;
BEGIN
    IF pg_is_in_recovery() OR current_setting('synchronous_standby_names') = '' THEN
        RETURN 'FFFFFFFF/FFFFFFFF'::pg_lsn;
    END IF;
    IF NOT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') THEN
        RAISE EXCEPTION 'optiinfra_durable_lsn(): its owner % may not read the synchronous standby''s position in pg_stat_replication; GRANT pg_monitor TO % (as a superuser)',
            current_user, quote_ident(current_user)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- a standby that has not reported its position yet holds everything back (null: not durable)
    SELECT CASE WHEN bool_or(r.flush_lsn IS NULL) THEN NULL ELSE min(r.flush_lsn) END INTO durable
      FROM pg_stat_replication r WHERE r.sync_state IN ('sync', 'quorum');
    RETURN durable;
END;
$$;
REVOKE ALL ON FUNCTION optiinfra_durable_lsn() FROM PUBLIC;
-- a subscriber's connection of its own is confined for its session (optiinfra_tenant): both roles
GRANT EXECUTE ON FUNCTION optiinfra_durable_lsn() TO optiinfra_app, optiinfra_tenant;
