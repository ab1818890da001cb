SET LOCAL lock_timeout = '5s';

REVOKE ALL ON FUNCTION optiinfra_roll_up(integer) FROM optiinfra_app;
GRANT EXECUTE ON FUNCTION optiinfra_roll_up(integer) TO PUBLIC;
REVOKE ALL ON FUNCTION optiinfra_rollup_plan(timestamptz, timestamptz, boolean, boolean) FROM optiinfra_app, optiinfra_tenant;
GRANT EXECUTE ON FUNCTION optiinfra_rollup_plan(timestamptz, timestamptz, boolean, boolean) TO PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_rollup_touch(timestamptz[]) TO PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_rollup_touch_executions() TO PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_rollup_touch_steps() TO PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_rollup_reset() TO PUBLIC;
