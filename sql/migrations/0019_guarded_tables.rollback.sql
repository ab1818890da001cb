SET LOCAL lock_timeout = '5s';

COMMENT ON TABLE agents IS NULL;
COMMENT ON TABLE agent_capabilities IS NULL;
COMMENT ON TABLE agent_metrics IS NULL;
COMMENT ON TABLE workflow_rollup_state IS NULL;
COMMENT ON TABLE workflow_rollup_pending IS NULL;

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
            AND row_security_active('public.agent_states') AND row_security_active('public.workflow_rollups')
            AND row_security_active('public.workflow_step_rollups')
            AND row_security_active('public.workflow_error_rollups')) THEN
        RAISE EXCEPTION 'row-level security does not hold for optiinfra_tenant: a confined transaction would see every customer'
            USING ERRCODE = 'OI001',
                  HINT = 'optiinfra_tenant must not be a superuser, bypass row-level security, or own (or be a member of the owner of) the tables';
    END IF;
END;
$$;
