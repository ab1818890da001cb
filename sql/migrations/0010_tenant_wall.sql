-- The tenant wall: a transaction confined to one customer runs as `optiinfra_tenant`, whatever role
-- the connection logged in as, so the owner's and a superuser's pools are confined too.
--
-- `optiinfra_tenant` holds only what work for one customer needs: that customer's rows (row-level
-- security, as set up by 0007) and read access to what customers share (agents, their
-- capabilities, their non-sensitive configs and metrics); it may also record metrics and agent
-- runtime state. Changes that reach past one customer (agents, configs, capabilities, purging
-- metrics) are not granted to it. `optiinfra_app`, the unconfined application role, is a member,
-- so its login roles can take it on; so is the role running this migration, when it may grant it.
--
-- `optiinfra_confine(customer)` takes on the role and binds the customer for the transaction,
-- and refuses when the role would not be subject to row-level security.
--
-- The audit trail becomes writable by its trigger alone: the trigger function runs as its owner.
-- depends: 0009_time_ordered_ids

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
-- customers are provisioned and removed by the platform; a confined store may edit its own
GRANT SELECT, UPDATE ON customers TO optiinfra_tenant;
GRANT SELECT ON workflow_transitions TO optiinfra_tenant;
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

-- An agent's state may point only at an execution its writer can see: for a confined
-- transaction, one of its customer's. Another customer's execution is refused exactly like one
-- that does not exist. The check runs as the writer, so row-level security filters what it sees.
CREATE FUNCTION optiinfra_check_current_workflow() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    IF NEW.current_workflow_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.current_workflow_id IS DISTINCT FROM OLD.current_workflow_id)
       AND NOT EXISTS (SELECT FROM workflow_executions e WHERE e.id = NEW.current_workflow_id) THEN
        RAISE EXCEPTION 'insert or update on table "agent_states" violates foreign key constraint "agent_states_current_workflow_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'agent_states_current_workflow_id_fkey',
                  TABLE = 'agent_states',
                  DETAIL = format('Key (current_workflow_id)=(%s) is not present in table "workflow_executions".',
                                  NEW.current_workflow_id);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER agent_states_check_current_workflow BEFORE INSERT OR UPDATE OF current_workflow_id ON agent_states
    FOR EACH ROW EXECUTE FUNCTION optiinfra_check_current_workflow();

-- The trail: written by the trigger (as the function's owner), read by everyone, changed by no one.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON workflow_transitions FROM optiinfra_app;
ALTER FUNCTION optiinfra_record_transition() SECURITY DEFINER SET search_path = pg_catalog, public;
REVOKE EXECUTE ON FUNCTION optiinfra_record_transition() FROM PUBLIC;

-- Confine the current transaction (or, with local => false, the session of a connection of its
-- own) to one customer. Raises SQLSTATE OI001 when the confinement cannot hold.
CREATE FUNCTION optiinfra_confine(customer uuid, local boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    IF customer IS NULL THEN
        RAISE EXCEPTION 'optiinfra_confine: no customer given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM set_config('role', 'optiinfra_tenant', local);
    PERFORM set_config('optiinfra.customer_id', customer::text, local);
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'optiinfra_tenant' AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'optiinfra_tenant bypasses row-level security: a confined transaction would see every customer'
            USING ERRCODE = 'OI001',
                  HINT = 'ALTER ROLE optiinfra_tenant NOSUPERUSER NOBYPASSRLS';
    END IF;
END;
$$;
