-- name: insert
-- A new, pending approval, with its recommendation's customer (as a step's insert).
INSERT INTO approvals (recommendation_id, customer_id, requested_by, comment, expires_at)
SELECT :recommendation_id, r.customer_id, :requested_by, :comment, :expires_at
  FROM (SELECT :recommendation_id::uuid AS id) AS parent
  LEFT JOIN recommendations r ON r.id = parent.id
RETURNING id, recommendation_id, customer_id, status, requested_by, decided_by, comment, decided_at, expires_at,
          created_at, updated_at;

-- name: insert_routed
-- A new, pending approval with its customer given (as a step's insert_routed).
INSERT INTO approvals (recommendation_id, customer_id, requested_by, comment, expires_at)
VALUES (:recommendation_id, :customer_id, :requested_by, :comment, :expires_at)
RETURNING id, recommendation_id, customer_id, status, requested_by, decided_by, comment, decided_at, expires_at,
          created_at, updated_at;

-- name: get_by_id
-- One approval.
-- $2: a confined store's customer on a schema distributed by customer (the read goes to one shard); else null.
SELECT id, recommendation_id, customer_id, status, requested_by, decided_by, comment, decided_at, expires_at,
       created_at, updated_at
  FROM approvals WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: get_status
-- The current status, to explain why a transition matched nothing, once it is durable: the status
-- may be a commit whose wait for the synchronous standby was cut short (its client timed out or
-- was cut off), which a failover would take back, and a caller may take it for its own transition
-- applied. `durable`, an empty transactional WAL message written for the row found (a select
-- list is computed for the rows returned only), gives this statement's transaction WAL of its own,
-- so that its commit waits for the standby to flush the WAL up to it, and so all committed before.
-- $2: the row's customer when known on a schema distributed by customer (the read goes to one shard); else null.
SELECT status, pg_logical_emit_message(true, 'optiinfra.durable', '') AS durable
  FROM approvals WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: delete_by_id
-- Delete an approval with the optimizations carried out under it.
-- $2: the row's customer, given on a schema distributed by customer (the write goes to one shard).
DELETE FROM approvals WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) RETURNING id;

-- name: list
-- Approvals, oldest first, optionally of one recommendation and statuses; one page, keyset after $3, $4 (the cursor).
SELECT id, recommendation_id, customer_id, status, requested_by, decided_by, comment, decided_at, expires_at,
       created_at, updated_at
  FROM approvals
 WHERE ($1::uuid IS NULL OR recommendation_id = $1)
   AND ($2::text[] IS NULL OR status = ANY($2::text[]::approval_status[]))
   AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
 ORDER BY created_at, id
 LIMIT $5;

-- name: approve
-- pending -> approved, by whom and why (the request's comment is kept when $3 is null).
-- $4: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE approvals
   SET status = 'approved', decided_at = now(), decided_by = $2, comment = coalesce($3, comment)
 WHERE id = $1 AND ($4::uuid IS NULL OR customer_id = $4) AND status = 'pending'
RETURNING id, recommendation_id, customer_id, status, requested_by, decided_by, comment, decided_at, expires_at,
          created_at, updated_at;

-- name: reject
-- pending -> rejected, by whom and why (the request's comment is kept when $3 is null).
-- $4: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE approvals
   SET status = 'rejected', decided_at = now(), decided_by = $2, comment = coalesce($3, comment)
 WHERE id = $1 AND ($4::uuid IS NULL OR customer_id = $4) AND status = 'pending'
RETURNING id, recommendation_id, customer_id, status, requested_by, decided_by, comment, decided_at, expires_at,
          created_at, updated_at;

-- name: expire
-- pending -> expired: nobody decided in time.
-- $2: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE approvals
   SET status = 'expired', decided_at = now()
 WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) AND status = 'pending'
RETURNING id, recommendation_id, customer_id, status, requested_by, decided_by, comment, decided_at, expires_at,
          created_at, updated_at;

-- name: count
-- How many approvals there are.
SELECT count(*) FROM approvals;

-- name: customer_of
-- The customer of one row: a write on a schema distributed by customer names it, to go to one shard.
SELECT customer_id FROM approvals WHERE id = $1;

-- name: parent_customer
-- The customer of a new row's parent, named by its insert on a schema distributed by customer.
SELECT customer_id FROM recommendations WHERE id = $1;
