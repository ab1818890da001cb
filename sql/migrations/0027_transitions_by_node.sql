-- Live events on a Citus cluster. There the transition trigger runs on the worker holding the
-- changed row: the trail's row is written, and its NOTIFY sent, on that worker, its `txid` is that
-- worker's transaction id (each node has its own), and its id comes from that node's range of the
-- identity (Citus gives node group g the ids from g * 2^48 on). A subscriber keeps one horizon per
-- node and reads each node's new rows on that node, where its transaction ids mean something:
-- `optiinfra_node_transitions()` returns the rows of the local shards of workflow_transitions
-- written on this node (id >> 48 = its group: rows copied in by `distribute`, written on the
-- server before it became a coordinator, and rows a shard move brought from another node carry
-- another node's transaction ids) from transaction `since` on, with the live events' filters.
-- On one server it is not called (it reads Citus's catalog); the store's statements there are
-- unchanged. Creating a function takes no lock on any table.
-- depends: 0026_exact_small_samples

SET LOCAL lock_timeout = '5s';

-- STABLE: every statement of it sees the snapshot of the statement that calls it (events_on_node
-- reads the snapshot's xmin beside it). `skip`: ids left out (delivered already); `lim`: at most
-- that many rows in all (null: no limit).
CREATE OR REPLACE FUNCTION optiinfra_node_transitions(since xid8, customer uuid, execution uuid, skip bigint[], lim bigint)
RETURNS TABLE (id bigint, workflow_execution_id uuid, workflow_step_id uuid, customer_id uuid, from_status text,
               to_status text, at timestamptz, actor text, reason jsonb, txid xid8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    local_group integer := (SELECT g.groupid FROM pg_dist_local_group g);
    shards text;
BEGIN
    -- one statement over the local shards (names from Citus's catalog, quoted as regclass)
    SELECT string_agg(format('SELECT w.id, w.workflow_execution_id, w.workflow_step_id, w.customer_id, w.from_status,'
                             ' w.to_status, w.at, w.actor, w.reason, w.txid FROM %s w WHERE w.txid >= $1 AND (w.id >> 48) = $6'
                             ' AND ($2::uuid IS NULL OR w.customer_id = $2) AND ($3::uuid IS NULL OR w.workflow_execution_id = $3)'
                             ' AND w.id <> ALL ($4)', shard_name(s.logicalrelid, s.shardid)::regclass),
                      ' UNION ALL ' ORDER BY s.shardid)
      INTO shards
      FROM pg_dist_shard s JOIN pg_dist_placement p ON p.shardid = s.shardid
     WHERE s.logicalrelid = 'public.workflow_transitions'::regclass AND p.groupid = local_group;
    IF shards IS NULL THEN  -- no shard here
        RETURN;
    END IF;
    RETURN QUERY EXECUTE shards || ' LIMIT $5' USING since, customer, execution, coalesce(skip, '{}'), lim, local_group;
END;
$$;
REVOKE ALL ON FUNCTION optiinfra_node_transitions(xid8, uuid, uuid, bigint[], bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION optiinfra_node_transitions(xid8, uuid, uuid, bigint[], bigint) TO optiinfra_app, optiinfra_tenant;
