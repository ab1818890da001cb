-- transactional: false
--
-- Every customer-owned table carries its customer: approvals and optimizations (from their
-- recommendation), workflow steps, artifacts and transitions (from their execution) gain
-- `customer_id`, and their foreign keys include it, so the database keeps it equal to the
-- parent's. Row-level security then compares `customer_id` directly instead of looking the parent
-- up (one index probe less per row a confined statement reads), and every table can be
-- distributed by customer (`optiinfra-store distribute`, on Citus), where a key or a foreign key
-- must include the distribution column.
--
-- The store's inserts need not name the column: a BEFORE INSERT trigger fills it from the parent
-- (a missing parent is a foreign-key violation of the key it replaces, under the same name; a
-- confined caller's is refused by row-level security, as before). Code of an earlier release
-- keeps working.
--
-- Online: the columns are nullable at first (no rewrite); rows are filled in batches of 1,000 by
-- id, each in its own short transaction, which holds the table against other writers (not
-- readers) for the length of the batch: its triggers for updated_at, the rollups and the
-- append-only trail are off inside it, since filling the column changes nothing they track.
-- Writers of the table being filled wait for each batch, tens of milliseconds, while that table
-- is filled. Keys are built CONCURRENTLY; constraints are added NOT VALID and validated beside
-- writers; NOT NULL comes from a validated CHECK; every lock is taken under lock_timeout. Every
-- step can run again after a failure (an index left invalid by a failed build: DROP INDEX
-- CONCURRENTLY it, then run this again).
-- depends: 0021_idempotency_per_customer

SET lock_timeout = '5s';

ALTER TABLE approvals ADD COLUMN IF NOT EXISTS customer_id uuid;
ALTER TABLE optimizations ADD COLUMN IF NOT EXISTS customer_id uuid;
ALTER TABLE workflow_steps ADD COLUMN IF NOT EXISTS customer_id uuid;
ALTER TABLE workflow_artifacts ADD COLUMN IF NOT EXISTS customer_id uuid;
ALTER TABLE workflow_transitions ADD COLUMN IF NOT EXISTS customer_id uuid;

-- The customer of a new row that names none, from its parent; TG_ARGV[0]: the foreign key to
-- name when there is no parent. It reads the parent as its caller may: under row-level security (a
-- confined caller) a parent of another customer's is as invisible as one that does not exist, and
-- both are left to the policy, which refuses the row alike (as before this migration: naming
-- another customer's parent must not answer differently from naming none).
CREATE OR REPLACE FUNCTION optiinfra_customer_of_recommendation() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NEW.customer_id IS NULL THEN
        SELECT r.customer_id INTO NEW.customer_id FROM recommendations r WHERE r.id = NEW.recommendation_id;
        IF NOT FOUND AND NOT row_security_active(TG_RELID) THEN
            RAISE EXCEPTION 'insert on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_ARGV[0]
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[0], TABLE = TG_TABLE_NAME,
                      DETAIL = format('Key (recommendation_id)=(%s) is not present in table "recommendations".',
                                      NEW.recommendation_id);
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
REVOKE ALL ON FUNCTION optiinfra_customer_of_recommendation() FROM PUBLIC;

CREATE OR REPLACE FUNCTION optiinfra_customer_of_execution() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NEW.customer_id IS NULL THEN
        SELECT e.customer_id INTO NEW.customer_id FROM workflow_executions e WHERE e.id = NEW.workflow_execution_id;
        IF NOT FOUND AND NOT row_security_active(TG_RELID) THEN
            RAISE EXCEPTION 'insert on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_ARGV[0]
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[0], TABLE = TG_TABLE_NAME,
                      DETAIL = format('Key (workflow_execution_id)=(%s) is not present in table "workflow_executions".',
                                      NEW.workflow_execution_id);
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
REVOKE ALL ON FUNCTION optiinfra_customer_of_execution() FROM PUBLIC;

CREATE OR REPLACE TRIGGER approvals_customer BEFORE INSERT ON approvals
    FOR EACH ROW EXECUTE FUNCTION optiinfra_customer_of_recommendation('approvals_recommendation_id_fkey');
CREATE OR REPLACE TRIGGER optimizations_customer BEFORE INSERT ON optimizations
    FOR EACH ROW EXECUTE FUNCTION optiinfra_customer_of_recommendation('optimizations_recommendation_id_fkey');
CREATE OR REPLACE TRIGGER workflow_steps_customer BEFORE INSERT ON workflow_steps
    FOR EACH ROW EXECUTE FUNCTION optiinfra_customer_of_execution('workflow_steps_workflow_execution_id_fkey');
CREATE OR REPLACE TRIGGER workflow_artifacts_customer BEFORE INSERT ON workflow_artifacts
    FOR EACH ROW EXECUTE FUNCTION optiinfra_customer_of_execution('workflow_artifacts_workflow_execution_id_fkey');
CREATE OR REPLACE TRIGGER workflow_transitions_customer BEFORE INSERT ON workflow_transitions
    FOR EACH ROW EXECUTE FUNCTION optiinfra_customer_of_execution('workflow_transitions_workflow_execution_id_fkey');

-- The trail's triggers say whose change they record ('execution' or 'step'): the function used to
-- tell by TG_TABLE_NAME, which on a shard of a distributed table is the shard's name
-- (workflow_steps_102008), and would record a step's id as an execution's. The triggers first
-- (the function in place until the next statement ignores their argument), then the function.
CREATE OR REPLACE TRIGGER workflow_executions_record_insert AFTER INSERT ON workflow_executions
    FOR EACH ROW EXECUTE FUNCTION optiinfra_record_transition('execution');
CREATE OR REPLACE TRIGGER workflow_executions_record_transition AFTER UPDATE OF status ON workflow_executions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION optiinfra_record_transition('execution');
CREATE OR REPLACE TRIGGER workflow_steps_record_insert AFTER INSERT ON workflow_steps
    FOR EACH ROW EXECUTE FUNCTION optiinfra_record_transition('step');
CREATE OR REPLACE TRIGGER workflow_steps_record_transition AFTER UPDATE OF status ON workflow_steps
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION optiinfra_record_transition('step');

-- The trail records the customer of the row that changed, without looking its execution up (but
-- for a step not filled in yet, while this migration runs).
CREATE OR REPLACE FUNCTION optiinfra_record_transition() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    transition_id bigint;
    execution_id uuid;
    step_id uuid;
    customer uuid := NEW.customer_id;
BEGIN
    IF TG_ARGV[0] = 'step' THEN
        execution_id := NEW.workflow_execution_id;
        step_id := NEW.id;
        IF customer IS NULL THEN
            SELECT e.customer_id INTO customer FROM workflow_executions e WHERE e.id = execution_id;
        END IF;
    ELSE
        execution_id := NEW.id;
    END IF;
    INSERT INTO workflow_transitions (workflow_execution_id, workflow_step_id, customer_id, from_status, to_status,
                                      actor, reason)
    VALUES (execution_id, step_id, customer,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.status::text END,
            NEW.status::text,
            nullif(current_setting('optiinfra.actor', true), ''),
            nullif(current_setting('optiinfra.reason', true), '')::jsonb)
    RETURNING id INTO transition_id;
    -- spent: the next change in this transaction must not inherit them
    PERFORM set_config('optiinfra.actor', '', true), set_config('optiinfra.reason', '', true);
    -- delivered at commit, in commit order; listeners read the row by id
    PERFORM pg_notify('optiinfra_workflow_transitions',
                      transition_id::text || ':' || coalesce(optiinfra_notify_tag(customer), ''));
    RETURN NULL;
END;
$$;

-- The parents' keys with their customer, for the foreign keys below. Built beside writers; a build
-- waits for transactions older than it, which blocks no one, so without lock_timeout.
SET lock_timeout = 0;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS recommendations_id_customer_id_key
    ON recommendations (id, customer_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS approvals_id_recommendation_id_customer_id_key
    ON approvals (id, recommendation_id, customer_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS workflow_executions_id_customer_id_key
    ON workflow_executions (id, customer_id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS workflow_steps_id_execution_id_customer_id_key
    ON workflow_steps (id, workflow_execution_id, customer_id);

SET lock_timeout = '5s';

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'recommendations_id_customer_id_key') THEN
        ALTER TABLE recommendations ADD CONSTRAINT recommendations_id_customer_id_key
            UNIQUE USING INDEX recommendations_id_customer_id_key;
    END IF;
END;
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'approvals_id_recommendation_id_customer_id_key') THEN
        ALTER TABLE approvals ADD CONSTRAINT approvals_id_recommendation_id_customer_id_key
            UNIQUE USING INDEX approvals_id_recommendation_id_customer_id_key;
    END IF;
END;
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workflow_executions_id_customer_id_key') THEN
        ALTER TABLE workflow_executions ADD CONSTRAINT workflow_executions_id_customer_id_key
            UNIQUE USING INDEX workflow_executions_id_customer_id_key;
    END IF;
END;
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'workflow_steps_id_execution_id_customer_id_key') THEN
        ALTER TABLE workflow_steps ADD CONSTRAINT workflow_steps_id_execution_id_customer_id_key
            UNIQUE USING INDEX workflow_steps_id_execution_id_customer_id_key;
    END IF;
END;
$$;

-- A statement that locks a parent and its child, run under a short lock_timeout and again until it
-- gets both: a writer's transaction may lock the two in either order (an execution, its trail, a
-- step, its trail), so waiting for one while holding the other could deadlock with it, and the
-- deadlock detector would abort one of them; a wait cut short after 100 ms never lasts that long.
-- Writers wait at most that long per try. For this session only (pg_temp).
CREATE OR REPLACE FUNCTION pg_temp.optiinfra_locked(statement text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    FOR attempt IN 1..600 LOOP
        BEGIN
            PERFORM set_config('lock_timeout', '100ms', true);
            EXECUTE statement;
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM pg_sleep(0.05);
        END;
    END LOOP;
    RAISE EXCEPTION 'could not lock the tables of "%" in 600 tries', statement USING ERRCODE = 'lock_not_available';
END;
$$;

-- The foreign keys with the customer, beside the ones they replace until the rows are filled;
-- NOT VALID: checked for every row written from now on (the filling included), validated below.
DO $$
DECLARE
    k record;
BEGIN
    FOR k IN SELECT * FROM (VALUES
        ('approvals', 'approvals_recommendation_id_fkey', 1,
         'FOREIGN KEY (recommendation_id, customer_id) REFERENCES recommendations (id, customer_id)'),
        ('optimizations', 'optimizations_recommendation_id_fkey', 1,
         'FOREIGN KEY (recommendation_id, customer_id) REFERENCES recommendations (id, customer_id)'),
        ('optimizations', 'optimizations_approval_id_fkey', 2,
         'FOREIGN KEY (approval_id, recommendation_id, customer_id) REFERENCES approvals (id, recommendation_id, customer_id)'),
        ('workflow_steps', 'workflow_steps_workflow_execution_id_fkey', 1,
         'FOREIGN KEY (workflow_execution_id, customer_id) REFERENCES workflow_executions (id, customer_id)'),
        ('workflow_artifacts', 'workflow_artifacts_workflow_execution_id_fkey', 1,
         'FOREIGN KEY (workflow_execution_id, customer_id) REFERENCES workflow_executions (id, customer_id)'),
        ('workflow_artifacts', 'workflow_artifacts_workflow_step_id_fkey', 2,
         'FOREIGN KEY (workflow_step_id, workflow_execution_id, customer_id) REFERENCES workflow_steps (id, workflow_execution_id, customer_id)'),
        ('workflow_transitions', 'workflow_transitions_workflow_execution_id_fkey', 1,
         'FOREIGN KEY (workflow_execution_id, customer_id) REFERENCES workflow_executions (id, customer_id)'),
        ('workflow_transitions', 'workflow_transitions_workflow_step_id_fkey', 1,
         'FOREIGN KEY (workflow_step_id, workflow_execution_id, customer_id) REFERENCES workflow_steps (id, workflow_execution_id, customer_id)')
        ) AS v (tab, fkey, columns, def) LOOP
        -- not yet added, and the key of that name is still the old one (this may be a second run)
        CONTINUE WHEN EXISTS (SELECT FROM pg_constraint WHERE conname = replace(k.fkey, '_fkey', '_customer_fkey'))
                   OR (SELECT cardinality(conkey) FROM pg_constraint WHERE conname = k.fkey) <> k.columns;
        PERFORM pg_temp.optiinfra_locked(format('ALTER TABLE %I ADD CONSTRAINT %I %s ON DELETE CASCADE NOT VALID',
                                                k.tab, replace(k.fkey, '_fkey', '_customer_fkey'), k.def));
        COMMIT;
    END LOOP;
END;
$$;

-- Fill the existing rows in batches of 1,000 by id (each batch read through the primary key, so the
-- work grows with the table, not with its square), each batch committed on its own with the
-- table's triggers for updated_at, the rollups and the append-only trail off inside it: filling
-- the column changes nothing they track. Disabling a trigger holds the table against writers (not
-- readers) until the batch commits. A batch waits at most 100 ms for a lock, then gives way and
-- is tried again: holding the table while waiting for a parent row that a writer holds (a purge
-- deleting an execution, whose cascade then waits for this table) would be a deadlock.
DO $$
DECLARE
    k record;
    id_type text;
    lo text;
    hi text;
    trigger_name text;
    done boolean;
BEGIN
    FOR k IN SELECT * FROM (VALUES
        ('approvals', 'recommendations', 'recommendation_id', ARRAY['approvals_set_updated_at']),
        ('optimizations', 'recommendations', 'recommendation_id', ARRAY['optimizations_set_updated_at']),
        ('workflow_steps', 'workflow_executions', 'workflow_execution_id',
         ARRAY['workflow_steps_set_updated_at', 'workflow_steps_rollup_update']),
        ('workflow_artifacts', 'workflow_executions', 'workflow_execution_id',
         ARRAY['workflow_artifacts_set_updated_at']),
        ('workflow_transitions', 'workflow_executions', 'workflow_execution_id',
         ARRAY['workflow_transitions_append_only'])) AS v (tab, parent, parent_id, triggers) LOOP
        id_type := (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                     WHERE attrelid = format('public.%I', k.tab)::regclass AND attname = 'id');
        lo := NULL;
        LOOP
            EXECUTE format('SELECT b.id::text FROM (SELECT id FROM %I WHERE $1::text IS NULL OR id > $1::%s '
                           'ORDER BY id LIMIT 1000) AS b ORDER BY b.id DESC LIMIT 1', k.tab, id_type)
                INTO hi USING lo;
            EXIT WHEN hi IS NULL;
            BEGIN
                PERFORM set_config('lock_timeout', '100ms', true);
                FOREACH trigger_name IN ARRAY k.triggers LOOP
                    EXECUTE format('ALTER TABLE %I DISABLE TRIGGER %I', k.tab, trigger_name);
                END LOOP;
                EXECUTE format('UPDATE %1$I c SET customer_id = p.customer_id FROM %2$I p '
                               'WHERE p.id = c.%3$I AND c.customer_id IS NULL '
                               'AND ($1::text IS NULL OR c.id > $1::%4$s) AND c.id <= $2::%4$s',
                               k.tab, k.parent, k.parent_id, id_type)
                    USING lo, hi;
                FOREACH trigger_name IN ARRAY k.triggers LOOP
                    EXECUTE format('ALTER TABLE %I ENABLE TRIGGER %I', k.tab, trigger_name);
                END LOOP;
                done := true;
            EXCEPTION WHEN lock_not_available THEN
                done := false;  -- the batch is undone, its triggers on again; tried again below
            END;
            COMMIT;
            IF done THEN
                lo := hi;
            ELSE
                PERFORM pg_sleep(0.05);
            END IF;
        END LOOP;
    END LOOP;
END;
$$;

-- NOT NULL, from a CHECK validated beside writers (SET NOT NULL then needs no scan); then the
-- new foreign keys validated beside writers and swapped in for the old ones under their names.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['approvals', 'optimizations', 'workflow_steps', 'workflow_artifacts',
                             'workflow_transitions'] LOOP
        CONTINUE WHEN (SELECT attnotnull FROM pg_attribute
                        WHERE attrelid = format('public.%I', t)::regclass AND attname = 'customer_id');
        IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = t || '_customer_id_not_null') THEN
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (customer_id IS NOT NULL) NOT VALID',
                           t, t || '_customer_id_not_null');
            COMMIT;
        END IF;
        EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', t, t || '_customer_id_not_null');
        COMMIT;
        EXECUTE format('ALTER TABLE %I ALTER COLUMN customer_id SET NOT NULL', t);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', t, t || '_customer_id_not_null');
        COMMIT;
    END LOOP;
END;
$$;

DO $$
DECLARE
    k record;
BEGIN
    -- the keys added above and not swapped in yet (named <old name without _fkey>_customer_fkey)
    FOR k IN SELECT c.conrelid::regclass::text AS tab, replace(c.conname, '_customer_fkey', '_fkey') AS fkey
               FROM pg_constraint c
              WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
                AND c.conname LIKE '%\_customer\_fkey'
              ORDER BY 1, 2 LOOP
        EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', k.tab, replace(k.fkey, '_fkey', '_customer_fkey'));
        COMMIT;
        PERFORM pg_temp.optiinfra_locked(format('ALTER TABLE %I DROP CONSTRAINT IF EXISTS %I', k.tab, k.fkey));
        COMMIT;
        EXECUTE format('ALTER TABLE %I RENAME CONSTRAINT %I TO %I',
                       k.tab, replace(k.fkey, '_fkey', '_customer_fkey'), k.fkey);
        COMMIT;
    END LOOP;
END;
$$;

-- The keys the old foreign keys pointed at: nothing points at them now, and the primary keys imply
-- their uniqueness.
-- squawk-ignore ban-drop-constraint
ALTER TABLE approvals DROP CONSTRAINT IF EXISTS approvals_id_recommendation_id_key;
-- squawk-ignore ban-drop-constraint
ALTER TABLE workflow_steps DROP CONSTRAINT IF EXISTS workflow_steps_id_execution_id_key;

-- Row-level security compares the row's own customer.
ALTER POLICY approvals_customer_isolation ON approvals USING (customer_id = optiinfra_customer_id());
ALTER POLICY optimizations_customer_isolation ON optimizations USING (customer_id = optiinfra_customer_id());
ALTER POLICY workflow_steps_customer_isolation ON workflow_steps USING (customer_id = optiinfra_customer_id());
ALTER POLICY workflow_artifacts_customer_isolation ON workflow_artifacts
    USING (customer_id = optiinfra_customer_id());
ALTER POLICY workflow_transitions_customer_isolation ON workflow_transitions
    USING (customer_id = optiinfra_customer_id());
