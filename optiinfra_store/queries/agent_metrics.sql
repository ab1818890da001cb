-- name: insert
-- One metric point, collected now when not given.
INSERT INTO agent_metrics (agent_id, metric_name, metric_type, metric_value, metric_unit,
                           collection_timestamp, metadata)
VALUES (:agent_id, :metric_name, :metric_type, :metric_value, :metric_unit, coalesce(:collection_timestamp, now()), :metadata)
RETURNING id, agent_id, metric_name, metric_type, metric_value, metric_unit, collection_timestamp, metadata,
          created_at, updated_at;

-- name: get_by_id
-- One metric point.
SELECT id, agent_id, metric_name, metric_type, metric_value, metric_unit, collection_timestamp, metadata,
       created_at, updated_at
  FROM agent_metrics WHERE id = $1;

-- name: delete_by_id
-- Delete one metric point.
DELETE FROM agent_metrics WHERE id = $1 RETURNING id;

-- name: list
-- Metric points in time order, optionally of one agent, name and type, within [start, end]; one page, keyset after $6, $7 (the cursor).
SELECT id, agent_id, metric_name, metric_type, metric_value, metric_unit, collection_timestamp, metadata,
       created_at, updated_at
  FROM agent_metrics
 WHERE ($1::uuid IS NULL OR agent_id = $1)
   AND ($2::text IS NULL OR metric_name = $2)
   AND ($3::text IS NULL OR metric_type = $3::metric_type)
   AND ($4::timestamptz IS NULL OR collection_timestamp >= $4)
   AND ($5::timestamptz IS NULL OR collection_timestamp <= $5)
   AND ($6::timestamptz IS NULL OR (collection_timestamp, id) > ($6, $7::uuid))
 ORDER BY collection_timestamp, id
 LIMIT $8;

-- name: aggregate
-- Count, mean, min and max of one agent's metric within [start, end].
SELECT count(*) AS count, avg(metric_value) AS avg, min(metric_value) AS min, max(metric_value) AS max
  FROM agent_metrics
 WHERE agent_id = $1
   AND metric_name = $2
   AND ($3::timestamptz IS NULL OR collection_timestamp >= $3)
   AND ($4::timestamptz IS NULL OR collection_timestamp <= $4);

-- name: search
-- Metric points whose metadata contains the given document (the GIN index), in time order.
SELECT id, agent_id, metric_name, metric_type, metric_value, metric_unit, collection_timestamp, metadata,
       created_at, updated_at
  FROM agent_metrics
 WHERE metadata @> $1::jsonb
   AND ($2::uuid IS NULL OR agent_id = $2)
 ORDER BY collection_timestamp, id
 LIMIT $3;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM agent_metrics;

-- name: aggregate_buckets
-- Per date_bin bucket of width $5 (origin $6): count, mean, min, max and p95 of one agent's metric within [start, end]; only buckets with data, in time order.
SELECT date_bin($5::interval, collection_timestamp, $6::timestamptz) AS bucket_start,
       count(*) AS count, avg(metric_value) AS avg, min(metric_value) AS min, max(metric_value) AS max,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY metric_value) AS p95
  FROM agent_metrics
 WHERE agent_id = $1
   AND metric_name = $2
   AND ($3::timestamptz IS NULL OR collection_timestamp >= $3)
   AND ($4::timestamptz IS NULL OR collection_timestamp <= $4)
 GROUP BY 1
 ORDER BY 1;

-- name: latest
-- The newest point of each of one agent's metric names: the names found by a skip scan of the agent/name/timestamp index, then one backward probe per name (no partition or point read beyond that).
WITH RECURSIVE names AS (
    (SELECT metric_name FROM agent_metrics WHERE agent_id = $1 ORDER BY metric_name LIMIT 1)
    UNION ALL
    SELECT (SELECT m.metric_name FROM agent_metrics m
             WHERE m.agent_id = $1 AND m.metric_name > n.metric_name
             ORDER BY m.metric_name LIMIT 1)
      FROM names n
     WHERE n.metric_name IS NOT NULL
)
SELECT p.id, p.agent_id, p.metric_name, p.metric_type, p.metric_value, p.metric_unit, p.collection_timestamp,
       p.metadata, p.created_at, p.updated_at
  FROM names n
 CROSS JOIN LATERAL (
       SELECT id, agent_id, metric_name, metric_type, metric_value, metric_unit, collection_timestamp, metadata,
              created_at, updated_at
         FROM agent_metrics m
        WHERE m.agent_id = $1 AND m.metric_name = n.metric_name
        ORDER BY m.collection_timestamp DESC
        LIMIT 1) p
 WHERE n.metric_name IS NOT NULL
 ORDER BY p.metric_name DESC;

-- name: drop_partitions
-- Drop the daily partitions wholly before $1 (no row-by-row delete, next to no WAL); returns how many points they held.
SELECT optiinfra_drop_metric_partitions($1);

-- name: purge_batch
-- Delete up to $2 points collected before $1, oldest first, from the partitions left after drop_partitions (the one holding $1, the default); returns how many went. No row locks first: points are never updated, and locking them would write each page to the WAL twice.
WITH doomed AS MATERIALIZED (
    SELECT id, collection_timestamp
      FROM agent_metrics
     WHERE collection_timestamp < $1
     ORDER BY collection_timestamp
     LIMIT $2
), deleted AS (
    DELETE FROM agent_metrics m
     USING doomed d
     WHERE m.id = d.id AND m.collection_timestamp = d.collection_timestamp AND m.collection_timestamp < $1
    RETURNING m.id
)
SELECT count(*) FROM deleted;

-- name: purge_count
-- How many points were collected before $1 (what a purge would delete).
SELECT count(*) FROM agent_metrics WHERE collection_timestamp < $1;
