-- The live workflow events (optiinfra_store/workflow_events.py): transitions as they are committed,
-- read by a subscriber on a connection of its own. Their rows are written by the transition trigger.

-- name: events_since
-- Transitions written by transactions from $1 on (a txid), with the snapshot's xmin: every transaction
-- below it has finished, so its rows are final. Filters: customer $2, execution $3. `lsn`: the WAL
-- inserted when the statement ran (every commit it sees ends at or before it, even one made with
-- synchronous_commit = off, whose WAL may not be written yet; `CASE`: a standby has no WAL of its own); `durable`: whether that is durable already (0023: on the synchronous standby
-- too, or no synchronous standby is configured), else the subscriber waits with `durable_at`.
WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
                     CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END AS lsn),
     wal AS (SELECT snap.lsn::text AS lsn, coalesce(optiinfra_durable_lsn() >= snap.lsn, false) AS durable FROM snap)
SELECT snap.xmin, wal.lsn, wal.durable, t.id, t.workflow_execution_id, t.workflow_step_id, t.customer_id, t.from_status, t.to_status, t.at,
       t.actor, t.reason, t.txid
  FROM snap
 CROSS JOIN wal
  LEFT JOIN LATERAL (
      SELECT w.id, w.workflow_execution_id, w.workflow_step_id, w.customer_id, w.from_status, w.to_status, w.at,
             w.actor, w.reason, w.txid::text::bigint AS txid
        FROM workflow_transitions w
       WHERE w.txid >= $1::bigint::text::xid8
         AND ($2::uuid IS NULL OR w.customer_id = $2)
         AND ($3::uuid IS NULL OR w.workflow_execution_id = $3)
  ) t ON true
 ORDER BY t.id;

-- name: durable_at
-- Whether WAL position $1 (an `lsn` of events_since) is durable now (see events_since).
SELECT coalesce(optiinfra_durable_lsn() >= $1::text::pg_lsn, false);

-- name: txid_of
-- The transaction that wrote a transition, to resume a subscription after it.
SELECT least(txid::text::bigint,
             (SELECT min(txid) FROM workflow_transitions WHERE id > $1)::text::bigint,
             -- a transaction still running may yet write a row with a higher id
             pg_snapshot_xmin(pg_current_snapshot())::text::bigint)
  FROM workflow_transitions WHERE id = $1;

-- name: snapshot_xmin
-- The oldest transaction still running (as a txid): where a new subscription starts reading.
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint;

-- name: replay_size
-- How many transitions a subscription starting at horizon $1 would hand out again (filters:
-- customer $2, execution $3), counted up to $4 + 1: a resume from too far back is refused, not
-- loaded. Those its position names as delivered ($5) or at or below the id it resumes after ($6)
-- are not counted, so a horizon held back by a transaction open elsewhere does not inflate it.
SELECT count(*)
  FROM (SELECT 1
          FROM workflow_transitions w
         WHERE w.txid >= $1::bigint::text::xid8
           AND ($2::uuid IS NULL OR w.customer_id = $2)
           AND ($3::uuid IS NULL OR w.workflow_execution_id = $3)
           AND w.id <> ALL ($5::bigint[])
           AND ($6::bigint IS NULL OR w.id > $6)
         LIMIT $4 + 1) AS replay;

-- name: notify_key
-- The key of the notifications' customer tags (0017), for the events hub: readable by the
-- application role only.
SELECT optiinfra_notify_key();

-- On a Citus cluster (a schema distributed by customer) each node holding shards of the trail
-- writes its rows, sends their notifications and counts its own transaction ids: a subscriber
-- listens and reads on each node, with a horizon of each (0027).

-- name: event_nodes
-- The nodes holding shards of workflow_transitions (asked on the coordinator): group, host and
-- port as the coordinator reaches them.
SELECT n.groupid, n.nodename, n.nodeport
  FROM pg_dist_node n
 WHERE n.noderole = 'primary' AND n.isactive
   AND EXISTS (SELECT FROM pg_dist_placement p JOIN pg_dist_shard s ON s.shardid = p.shardid
                WHERE p.groupid = n.groupid AND s.logicalrelid = 'public.workflow_transitions'::regclass)
 ORDER BY n.groupid;

-- name: events_on_node
-- events_since on one node of a cluster (asked on that node): the transitions written there by
-- transactions from $1 on (that node's txids), with that node's snapshot xmin and WAL position.
-- The function is STABLE, so it reads with this statement's snapshot.
WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
                     CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END AS lsn),
     wal AS (SELECT snap.lsn::text AS lsn, coalesce(optiinfra_durable_lsn() >= snap.lsn, false) AS durable FROM snap)
SELECT snap.xmin, wal.lsn, wal.durable, t.id, t.workflow_execution_id, t.workflow_step_id, t.customer_id, t.from_status, t.to_status, t.at,
       t.actor, t.reason, t.txid
  FROM snap
 CROSS JOIN wal
  LEFT JOIN LATERAL (
      SELECT w.id, w.workflow_execution_id, w.workflow_step_id, w.customer_id, w.from_status, w.to_status, w.at,
             w.actor, w.reason, w.txid::text::bigint AS txid
        FROM optiinfra_node_transitions($1::bigint::text::xid8, $2::uuid, $3::uuid, NULL, NULL) w
  ) t ON true
 ORDER BY t.id;

-- name: replay_size_on_node
-- replay_size on one node of a cluster (asked on that node): the transitions written there from
-- its txid $1 on (filters: customer $2, execution $3), but those of $5, counted up to $4 + 1.
-- $5 is the ids as an array's text ('{1,2}'): an array parameter has asyncpg look its type up in
-- the catalog, which on a Citus worker (hiding its shards from pg_class) takes tens of seconds.
SELECT count(*) FROM optiinfra_node_transitions($1::bigint::text::xid8, $2::uuid, $3::uuid, $5::text::bigint[], $4 + 1);
