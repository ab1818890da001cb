-- The functions of 0014 that run as the schema's owner (SECURITY DEFINER) kept PostgreSQL's default
-- EXECUTE for PUBLIC: any role that could connect, and any confined transaction, could roll up or
-- mark hours pending at will (marked hours send every customer's analytics to the raw tables).
-- Each now runs for the roles that need it only:
-- - optiinfra_roll_up: `Store.maintain()`, platform work: the application role;
-- - optiinfra_rollup_plan: every analytics call, confined ones included: the application and
--   tenant roles (it reads which hours are rolled up, nothing of any customer);
-- - optiinfra_rollup_touch and the trigger functions: called by the owner's triggers alone.
-- depends: 0017_notify_tag

SET LOCAL lock_timeout = '5s';

REVOKE ALL ON FUNCTION optiinfra_roll_up(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_roll_up(integer) TO optiinfra_app;

REVOKE ALL ON FUNCTION optiinfra_rollup_plan(timestamptz, timestamptz, boolean, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_rollup_plan(timestamptz, timestamptz, boolean, boolean)
    TO optiinfra_app, optiinfra_tenant;

REVOKE ALL ON FUNCTION optiinfra_rollup_touch(timestamptz[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION optiinfra_rollup_touch_executions() FROM PUBLIC;
REVOKE ALL ON FUNCTION optiinfra_rollup_touch_steps() FROM PUBLIC;
REVOKE ALL ON FUNCTION optiinfra_rollup_reset() FROM PUBLIC;
