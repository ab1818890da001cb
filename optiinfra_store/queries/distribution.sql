-- `distribute` (optiinfra_store/distribution.py): the schema placed on a Citus cluster, from the
-- coordinator. The conversion is a function of the session (pg_temp: nothing of it stays in the
-- schema) that reads the catalog, so no statement is put together in the client.

-- name: define
-- The conversion, as pg_temp.optiinfra_distribute(skip, anchor, by_agent): every table of the public
-- schema but `skip` goes to Citus; a line of text for each thing done (none when all was done).
CREATE OR REPLACE FUNCTION pg_temp.optiinfra_distribute(skip text[], anchor text, by_agent text[])
RETURNS SETOF text
LANGUAGE plpgsql AS $fn$
DECLARE
    t record;
    k record;
    column_name text;
    wanted text[];
    twin text;
BEGIN
    -- the store's triggers run on the shards; one transaction, one connection per node
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);

    -- a cluster distributed before 0025 holds the rollup marks as a reference table: placed again,
    -- by customer, below
    IF EXISTS (SELECT FROM pg_dist_partition d
                WHERE d.logicalrelid = to_regclass('public.workflow_rollup_pending') AND d.repmodel = 't') THEN
        PERFORM undistribute_table('workflow_rollup_pending');
        RETURN NEXT 'workflow_rollup_pending: no longer a reference table';
    END IF;

    -- where each table goes: by agent (the tables named), by customer (a NOT NULL customer_id),
    -- else a reference table; the anchor first, so the others can be co-located with it
    CREATE TEMP TABLE optiinfra_placement ON COMMIT DROP AS
    SELECT c.relname::text AS tab,
           CASE WHEN c.relname = ANY (by_agent) THEN 'agent_id'
                WHEN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_id'
                                                          AND a.attnotnull AND NOT a.attisdropped)
                THEN 'customer_id' END AS by_column,
           c.relname <> anchor AS after_anchor
      FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND c.relname <> ALL (skip)
       -- placed as planned already: distributed ('h'), or a reference table ('n' replicated to every
       -- node, 't'); a table Citus made a coordinator-only table on its own ('n', 's') is not
       AND NOT EXISTS (SELECT FROM pg_dist_partition d
                        WHERE d.logicalrelid = c.oid AND (d.partmethod = 'h' OR d.repmodel = 't'));

    -- the rollups' statement triggers read transition tables, which a shard does not have: on the
    -- cluster each changed row marks its hour for its customer (optiinfra_rollup_mark). Swapped on
    -- the tables to distribute, and on those a release before 0025 distributed.
    FOR t IN SELECT c.relname::text AS tab
               FROM pg_class c
              WHERE c.relnamespace = 'public'::regnamespace AND c.relname IN ('workflow_executions', 'workflow_steps')
                AND EXISTS (SELECT FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = c.relname || '_rollup_insert')
                AND (c.relname IN (SELECT tab FROM optiinfra_placement)
                     OR EXISTS (SELECT FROM pg_dist_partition d WHERE d.logicalrelid = c.oid AND d.partmethod = 'h'))
              ORDER BY 1 LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t.tab || '_rollup_insert', t.tab);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t.tab || '_rollup_update', t.tab);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t.tab || '_rollup_delete', t.tab);
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION optiinfra_rollup_mark(%L)', t.tab || '_rollup_mark', t.tab,
                       CASE t.tab WHEN 'workflow_steps' THEN 'step' ELSE 'execution' END);
        RETURN NEXT format('%s: rollup marks by row', t.tab);
    END LOOP;

    IF NOT EXISTS (SELECT FROM optiinfra_placement) THEN
        RETURN;
    END IF;

    -- foreign keys between the store's tables: dropped for the conversion, added back after it
    CREATE TEMP TABLE optiinfra_foreign_keys ON COMMIT DROP AS
    SELECT con.conrelid::regclass::text AS tab, con.confrelid::regclass::text AS parent, con.conname::text AS name,
           pg_get_constraintdef(con.oid) AS definition
      FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
     WHERE con.contype = 'f' AND c.relnamespace = 'public'::regnamespace AND NOT c.relispartition
       AND c.relname <> ALL (skip)
       AND (c.relname IN (SELECT tab FROM optiinfra_placement)
            OR con.confrelid::regclass::text IN (SELECT tab FROM optiinfra_placement));
    FOR k IN SELECT tab, name FROM optiinfra_foreign_keys ORDER BY tab, name LOOP
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', k.tab, k.name);
    END LOOP;

    -- every primary and unique key of a table to distribute includes its distribution column
    FOR t IN SELECT tab, by_column FROM optiinfra_placement WHERE by_column IS NOT NULL ORDER BY after_anchor, tab LOOP
        FOR k IN
            SELECT con.conname::text AS name, con.contype = 'p' AS is_primary,
                   array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS n (attnum, i)
                           JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = n.attnum
                          ORDER BY n.i) AS columns
              FROM pg_constraint con
             WHERE con.conrelid = format('public.%I', t.tab)::regclass AND con.contype IN ('p', 'u')
             ORDER BY con.contype = 'p' DESC, con.conname
        LOOP
            CONTINUE WHEN t.by_column = ANY (k.columns);
            wanted := k.columns || t.by_column;
            -- a unique key over the same columns gives way to the primary key
            twin := (SELECT con.conname FROM pg_constraint con
                      WHERE k.is_primary AND con.conrelid = format('public.%I', t.tab)::regclass AND con.contype = 'u'
                        AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
                              WHERE a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey))
                            = (SELECT array_agg(w ORDER BY w) FROM unnest(wanted) w));
            IF twin IS NOT NULL THEN
                EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', t.tab, twin);
            END IF;
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I, ADD CONSTRAINT %I %s (%s)', t.tab, k.name, k.name,
                           CASE WHEN k.is_primary THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
                           (SELECT string_agg(quote_ident(w), ', ') FROM unnest(wanted) w));
            RETURN NEXT format('%s: %s now over (%s)', t.tab, k.name, array_to_string(wanted, ', '));
        END LOOP;
    END LOOP;

    -- off while the rows are copied into the shards (a step copied must not write its trail again),
    -- then back as each was (on, ALWAYS or REPLICA)
    CREATE TEMP TABLE optiinfra_triggers ON COMMIT DROP AS
    SELECT g.tgrelid::regclass::text AS tab, g.tgname::text AS name,
           CASE g.tgenabled WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE' END AS mode
      FROM pg_trigger g
     WHERE NOT g.tgisinternal AND g.tgenabled <> 'D' AND g.tgparentid = 0
       AND g.tgrelid::regclass::text IN (SELECT tab FROM optiinfra_placement);
    FOR k IN SELECT tab, name FROM optiinfra_triggers ORDER BY tab, name LOOP
        EXECUTE format('ALTER TABLE %I DISABLE TRIGGER %I', k.tab, k.name);
    END LOOP;

    FOR t IN SELECT tab, by_column, after_anchor FROM optiinfra_placement ORDER BY after_anchor, tab LOOP
        IF t.by_column IS NULL THEN
            PERFORM create_reference_table(t.tab);
            RETURN NEXT format('%s: reference table', t.tab);
        ELSE
            PERFORM create_distributed_table(t.tab, t.by_column, colocate_with =>
                CASE WHEN t.by_column = 'customer_id' AND t.after_anchor THEN anchor ELSE 'none' END);
            RETURN NEXT format('%s: by %s', t.tab, t.by_column);
        END IF;
    END LOOP;

    FOR k IN SELECT tab, name, mode FROM optiinfra_triggers ORDER BY tab, name LOOP
        EXECUTE format('ALTER TABLE %I %s TRIGGER %I', k.tab, k.mode, k.name);
    END LOOP;
    FOR k IN SELECT f.tab, f.name, f.definition, dt.partmethod AS tab_method, dp.partmethod AS parent_method
               FROM optiinfra_foreign_keys f
               JOIN pg_dist_partition dt ON dt.logicalrelid = format('public.%I', f.tab)::regclass
               JOIN pg_dist_partition dp ON dp.logicalrelid = format('public.%I', f.parent)::regclass
              ORDER BY f.tab, f.name LOOP
        IF k.tab_method = 'n' AND k.parent_method = 'h' THEN
            RETURN NEXT format('%s: %s not kept (a reference table cannot point into a distributed one)', k.tab, k.name);
            CONTINUE;
        END IF;
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', k.tab, k.name, k.definition);
    END LOOP;
END;
$fn$;

-- name: distribute
-- Run the conversion defined above: skip (the migration library's tables), the anchor, the tables by agent.
SELECT line FROM pg_temp.optiinfra_distribute(%s, %s, %s) AS line;

-- name: unguarded_placements
-- Every placement (a shard's copy on its node) of a table with a row-level security policy where
-- that security does not hold for optiinfra_tenant, as the placement's node answers: a confined
-- statement that reached it would see every customer's rows there. Asked on each node over a
-- connection of its own, as optiinfra_tenant for the one statement.
SELECT format('%s (shard %s on %s:%s): %s', g.tab, r.shardid, r.nodename, r.nodeport,
              CASE WHEN r.success THEN 'row-level security not in force' ELSE r.result END) AS line
  FROM (SELECT DISTINCT p.polrelid::regclass AS tab
          FROM pg_policy p JOIN pg_dist_partition d ON d.logicalrelid = p.polrelid) AS g,
       run_command_on_placements(g.tab, $$WITH tenant AS MATERIALIZED (SELECT set_config('role', 'optiinfra_tenant', true))
                                          SELECT row_security_active('%s') FROM tenant$$) AS r
 WHERE NOT r.success OR r.result IS DISTINCT FROM 't'
 ORDER BY g.tab::text, r.shardid, r.nodename, r.nodeport;
