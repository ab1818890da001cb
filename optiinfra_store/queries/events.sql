-- name: insert
-- A new event (occurred_at defaults to now()).
INSERT INTO events (customer_id, agent_id, event_type, severity, title, description, data, occurred_at)
VALUES (:customer_id, :agent_id, :event_type, :severity, :title, :description, :data, coalesce(:occurred_at::timestamptz, now()))
RETURNING id, customer_id, agent_id, event_type, severity, title, description, data, occurred_at,
          created_at, updated_at;

-- name: get_by_id
-- One event.
-- $2: a confined store's customer on a schema distributed by customer (the read goes to one shard); else null.
SELECT id, customer_id, agent_id, event_type, severity, title, description, data, occurred_at,
       created_at, updated_at
  FROM events WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: delete_by_id
-- Delete an event.
-- $2: the row's customer, given on a schema distributed by customer (the write goes to one shard).
DELETE FROM events WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) RETURNING id;

-- name: list
-- Events, newest first, optionally of one customer, agent, types and severities; one page, keyset after $5, $6 (the cursor).
SELECT id, customer_id, agent_id, event_type, severity, title, description, data, occurred_at,
       created_at, updated_at
  FROM events
 WHERE ($1::uuid IS NULL OR customer_id = $1)
   AND ($2::uuid IS NULL OR agent_id = $2)
   AND ($3::text[] IS NULL OR event_type = ANY($3::text[]::event_type[]))
   AND ($4::text[] IS NULL OR severity = ANY($4::text[]::event_severity[]))
   AND ($5::timestamptz IS NULL OR (occurred_at, id) < ($5, $6::uuid))
 ORDER BY occurred_at DESC, id DESC
 LIMIT $7;

-- name: count
-- How many events there are.
SELECT count(*) FROM events;

-- name: customer_of
-- The customer of one row: a write on a schema distributed by customer names it, to go to one shard.
SELECT customer_id FROM events WHERE id = $1;
