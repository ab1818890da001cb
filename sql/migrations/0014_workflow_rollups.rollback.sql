SET LOCAL lock_timeout = '5s';

CREATE OR REPLACE FUNCTION optiinfra_confine(customer uuid, local boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF customer IS NULL THEN
        RAISE EXCEPTION 'optiinfra_confine: no customer given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM set_config('role', 'optiinfra_tenant', local);
    PERFORM set_config('optiinfra.customer_id', customer::text, local);
    IF NOT (row_security_active('public.customers') AND row_security_active('public.events')
            AND row_security_active('public.recommendations') AND row_security_active('public.approvals')
            AND row_security_active('public.optimizations') AND row_security_active('public.workflow_executions')
            AND row_security_active('public.workflow_steps') AND row_security_active('public.workflow_artifacts')
            AND row_security_active('public.workflow_transitions') AND row_security_active('public.agent_configs')
            AND row_security_active('public.agent_states')) THEN
        RAISE EXCEPTION 'row-level security does not hold for optiinfra_tenant: a confined transaction would see every customer'
            USING ERRCODE = 'OI001',
                  HINT = 'optiinfra_tenant must not be a superuser, bypass row-level security, or own (or be a member of the owner of) the tables';
    END IF;
END;
$$;

DROP TRIGGER workflow_executions_rollup_insert ON workflow_executions;
DROP TRIGGER workflow_executions_rollup_update ON workflow_executions;
DROP TRIGGER workflow_executions_rollup_delete ON workflow_executions;
DROP TRIGGER workflow_steps_rollup_insert ON workflow_steps;
DROP TRIGGER workflow_steps_rollup_update ON workflow_steps;
DROP TRIGGER workflow_steps_rollup_delete ON workflow_steps;
DROP TRIGGER workflow_executions_rollup_truncate ON workflow_executions;
DROP TRIGGER workflow_steps_rollup_truncate ON workflow_steps;
DROP FUNCTION optiinfra_rollup_reset();
DROP FUNCTION optiinfra_roll_up(integer);
DROP FUNCTION optiinfra_roll_up_buckets(text, timestamptz[], timestamptz[]);
DROP FUNCTION optiinfra_rollup_plan(timestamptz, timestamptz, boolean, boolean);
DROP FUNCTION optiinfra_rollup_touch_steps();
DROP FUNCTION optiinfra_rollup_touch_executions();
DROP FUNCTION optiinfra_rollup_touch(timestamptz[]);
DROP TABLE workflow_error_rollups;
DROP TABLE workflow_step_rollups;
DROP TABLE workflow_rollups;
DROP FUNCTION optiinfra_executions_in(timestamptz[], timestamptz[], uuid, uuid, text);
DROP FUNCTION optiinfra_sketch_key(numeric);
DROP FUNCTION optiinfra_everyone();
DROP TABLE workflow_rollup_pending;
DROP TABLE workflow_rollup_state;
