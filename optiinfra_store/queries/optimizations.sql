-- name: insert
-- A new, pending optimization.
-- The trigger optimizations_require_approval refuses it unless the approval is approved.
-- With its recommendation's customer (as a step's insert).
INSERT INTO optimizations (recommendation_id, approval_id, customer_id)
SELECT :recommendation_id, :approval_id, r.customer_id
  FROM (SELECT :recommendation_id::uuid AS id) AS parent
  LEFT JOIN recommendations r ON r.id = parent.id
RETURNING id, recommendation_id, approval_id, customer_id, status, started_at, completed_at, result, error_details,
          created_at, updated_at;

-- name: insert_routed
-- A new, pending optimization with its customer given (as a step's insert_routed).
INSERT INTO optimizations (recommendation_id, approval_id, customer_id)
VALUES (:recommendation_id, :approval_id, :customer_id)
RETURNING id, recommendation_id, approval_id, customer_id, status, started_at, completed_at, result, error_details,
          created_at, updated_at;

-- name: get_by_id
-- One optimization.
-- $2: a confined store's customer on a schema distributed by customer (the read goes to one shard); else null.
SELECT id, recommendation_id, approval_id, customer_id, status, started_at, completed_at, result, error_details,
       created_at, updated_at
  FROM optimizations WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: get_status
-- The current status, to explain why a transition matched nothing, once it is durable: the status
-- may be a commit whose wait for the synchronous standby was cut short (its client timed out or
-- was cut off), which a failover would take back, and a caller may take it for its own transition
-- applied. `durable`, an empty transactional WAL message written for the row found (a select
-- list is computed for the rows returned only), gives this statement's transaction WAL of its own,
-- so that its commit waits for the standby to flush the WAL up to it, and so all committed before.
-- $2: the row's customer when known on a schema distributed by customer (the read goes to one shard); else null.
SELECT status, pg_logical_emit_message(true, 'optiinfra.durable', '') AS durable
  FROM optimizations WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: delete_by_id
-- Delete an optimization.
-- $2: the row's customer, given on a schema distributed by customer (the write goes to one shard).
DELETE FROM optimizations WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) RETURNING id;

-- name: list
-- Optimizations, oldest first, optionally of one recommendation, approval and statuses; one page, keyset after $4, $5 (the cursor).
SELECT id, recommendation_id, approval_id, customer_id, status, started_at, completed_at, result, error_details,
       created_at, updated_at
  FROM optimizations
 WHERE ($1::uuid IS NULL OR recommendation_id = $1)
   AND ($2::uuid IS NULL OR approval_id = $2)
   AND ($3::text[] IS NULL OR status = ANY($3::text[]::optimization_status[]))
   AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5::uuid))
 ORDER BY created_at, id
 LIMIT $6;

-- name: start
-- pending -> in_progress.
-- $2: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE optimizations SET status = 'in_progress', started_at = now()
 WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) AND status = 'pending'
RETURNING id, recommendation_id, approval_id, customer_id, status, started_at, completed_at, result, error_details,
          created_at, updated_at;

-- name: complete
-- in_progress -> completed, with the result (kept as is when $2 is null).
-- $3: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE optimizations
   SET status = 'completed', completed_at = greatest(now(), started_at), result = coalesce($2, result)
 WHERE id = $1 AND ($3::uuid IS NULL OR customer_id = $3) AND status = 'in_progress'
RETURNING id, recommendation_id, approval_id, customer_id, status, started_at, completed_at, result, error_details,
          created_at, updated_at;

-- name: fail
-- in_progress -> failed, with what went wrong.
-- $3: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE optimizations
   SET status = 'failed', completed_at = greatest(now(), started_at), error_details = coalesce($2, error_details)
 WHERE id = $1 AND ($3::uuid IS NULL OR customer_id = $3) AND status = 'in_progress'
RETURNING id, recommendation_id, approval_id, customer_id, status, started_at, completed_at, result, error_details,
          created_at, updated_at;

-- name: roll_back
-- completed or failed -> rolled_back.
-- $2: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE optimizations SET status = 'rolled_back'
 WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) AND status IN ('completed', 'failed')
RETURNING id, recommendation_id, approval_id, customer_id, status, started_at, completed_at, result, error_details,
          created_at, updated_at;

-- name: count
-- How many optimizations there are.
SELECT count(*) FROM optimizations;

-- name: customer_of
-- The customer of one row: a write on a schema distributed by customer names it, to go to one shard.
SELECT customer_id FROM optimizations WHERE id = $1;

-- name: parent_customer
-- The customer of a new row's parent, named by its insert on a schema distributed by customer.
SELECT customer_id FROM recommendations WHERE id = $1;
