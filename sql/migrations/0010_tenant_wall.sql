-- The tenant wall: a transaction confined to one customer runs as `optiinfra_tenant`, whatever role
-- the connection logged in as, so the owner's and a superuser's pools are confined too.
--
-- `optiinfra_tenant` holds only what work for one customer needs: that customer's rows (row-level
-- security, as set up by 0007), read access to what customers share (agents, their capabilities,
-- their non-sensitive configs, metrics), recording metrics, and the agent states that describe
-- its own work. Changes that reach past one customer (agents, configs, capabilities, customers,
-- purging metrics) are not granted to it. `optiinfra_app`, the unconfined application role, is a
-- member, so its login roles can take it on; so is the role running this migration, when it may
-- grant it.
--
-- `optiinfra_confine(customer)` takes on the role and binds the customer for the transaction,
-- and refuses when row-level security would not hold for the role.
--
-- The audit trail becomes writable by its trigger alone: the trigger function runs as its owner.
-- Every function here pins its search_path, pg_temp last, so no caller's object can stand in for
-- one of the schema's.
-- depends: 0009_time_ordered_ids

SET LOCAL lock_timeout = '5s';

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'optiinfra_tenant') THEN
        CREATE ROLE optiinfra_tenant NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END;
$$;

-- Members may take the role on. A migrating role without the right to grant it gets a notice;
-- its confined calls then raise ConfigurationError naming the GRANT to run.
DO $$
BEGIN
    GRANT optiinfra_tenant TO optiinfra_app;
    IF NOT pg_has_role(current_user, 'optiinfra_tenant', 'MEMBER') THEN
        EXECUTE format('GRANT optiinfra_tenant TO %I', current_user);
    END IF;
EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
    RAISE NOTICE 'could not grant optiinfra_tenant (%): run GRANT optiinfra_tenant TO optiinfra_app, % as an administrator',
        SQLERRM, current_user;
END;
$$;

GRANT USAGE ON SCHEMA public TO optiinfra_tenant;
-- the customer's own rows, under the policies of 0007
GRANT SELECT, INSERT, UPDATE, DELETE ON
    events, recommendations, approvals, optimizations,
    workflow_executions, workflow_steps, workflow_artifacts
    TO optiinfra_tenant;
-- customers are provisioned, changed and removed by the platform
GRANT SELECT ON customers, workflow_transitions TO optiinfra_tenant;
-- shared by every customer: read only
GRANT SELECT ON agents, agent_configs, agent_capabilities TO optiinfra_tenant;
-- what an agent records while it works for a customer
GRANT SELECT, INSERT ON agent_metrics TO optiinfra_tenant;
GRANT SELECT, INSERT, UPDATE ON agent_states TO optiinfra_tenant;

-- Sensitive configs are not readable by a confined transaction.
ALTER TABLE agent_configs ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_configs_platform ON agent_configs TO optiinfra_app
    USING (true);
CREATE POLICY agent_configs_tenant_not_sensitive ON agent_configs FOR SELECT TO optiinfra_tenant
    USING (NOT is_sensitive);

-- An agent's state describes the work of one customer at a time: `customer_id` names it. A write
-- made under confinement takes the state for its customer; a state pointed (unconfined) at an
-- execution belongs to that execution's customer; `agent_states.release` (unconfined) gives it
-- back. A confined transaction sees and writes only states that are its customer's or nobody's.
ALTER TABLE agent_states
    ADD COLUMN customer_id uuid,
    ADD CONSTRAINT agent_states_customer_id_fkey FOREIGN KEY (customer_id)
        REFERENCES customers (id) ON DELETE SET NULL NOT VALID;
ALTER TABLE agent_states VALIDATE CONSTRAINT agent_states_customer_id_fkey;
CREATE INDEX agent_states_customer_id_idx ON agent_states (customer_id);

ALTER TABLE agent_states ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_states_platform ON agent_states TO optiinfra_app
    USING (true);
CREATE POLICY agent_states_tenant ON agent_states TO optiinfra_tenant
    USING (customer_id IS NULL OR customer_id = optiinfra_customer_id())
    WITH CHECK (customer_id = optiinfra_customer_id());

-- A state may point only at an execution its writer can see: for a confined transaction, one of
-- its customer's. Another customer's execution is refused exactly like one that does not exist.
-- Runs as the writer, so row-level security filters what the check sees.
CREATE FUNCTION optiinfra_agent_state_owner() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    execution_customer uuid;
BEGIN
    IF NEW.current_workflow_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.current_workflow_id IS DISTINCT FROM OLD.current_workflow_id) THEN
        SELECT e.customer_id INTO execution_customer FROM workflow_executions e WHERE e.id = NEW.current_workflow_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insert or update on table "agent_states" violates foreign key constraint "agent_states_current_workflow_id_fkey"'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'agent_states_current_workflow_id_fkey',
                      TABLE = 'agent_states',
                      DETAIL = format('Key (current_workflow_id)=(%s) is not present in table "workflow_executions".',
                                      NEW.current_workflow_id);
        END IF;
        NEW.customer_id := execution_customer;
    END IF;
    IF optiinfra_customer_id() IS NOT NULL THEN
        NEW.customer_id := optiinfra_customer_id();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER agent_states_owner BEFORE INSERT OR UPDATE ON agent_states
    FOR EACH ROW EXECUTE FUNCTION optiinfra_agent_state_owner();

-- The trail: written by the trigger (as the function's owner), read by everyone, changed by no one.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON workflow_transitions FROM optiinfra_app;
ALTER FUNCTION optiinfra_record_transition() SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp;
REVOKE EXECUTE ON FUNCTION optiinfra_record_transition() FROM PUBLIC;

-- Confine the current transaction (or, with local => false, the session of a connection of its
-- own) to one customer. Raises SQLSTATE OI001 when row-level security would not hold for the
-- role on a table it guards (a role that bypasses it, owns a table, or is a superuser).
CREATE FUNCTION optiinfra_confine(customer uuid, local boolean DEFAULT true) RETURNS void
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
