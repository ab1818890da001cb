-- name: insert
-- A new step, with its execution's customer (read here, not by the trigger: a Citus cluster places
-- the row by it before any trigger runs; null when the execution is not there, and the trigger
-- then says why).
INSERT INTO workflow_steps (workflow_execution_id, customer_id, step_name, step_order, status, started_at,
                            completed_at, input_data, output_data, error_details, retry_count, max_retries, metadata)
SELECT :workflow_execution_id, e.customer_id, :step_name, :step_order, :status, :started_at, :completed_at,
       :input_data, :output_data, :error_details, :retry_count, :max_retries, :metadata
  FROM (SELECT :workflow_execution_id::uuid AS id) AS parent
  LEFT JOIN workflow_executions e ON e.id = parent.id
RETURNING id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
          input_data, output_data, error_details, retry_count, max_retries, metadata, created_at, updated_at;

-- name: insert_routed
-- A new step with its customer given (a schema distributed by customer: the insert goes to its
-- shard); the key to its execution refuses a customer other than the execution's.
INSERT INTO workflow_steps (workflow_execution_id, customer_id, step_name, step_order, status, started_at,
                            completed_at, input_data, output_data, error_details, retry_count, max_retries, metadata)
VALUES (:workflow_execution_id, :customer_id, :step_name, :step_order, :status, :started_at, :completed_at,
        :input_data, :output_data, :error_details, :retry_count, :max_retries, :metadata)
RETURNING id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
          input_data, output_data, error_details, retry_count, max_retries, metadata, created_at, updated_at;

-- name: insert_many
-- Several steps in one statement (all or none); each parameter is one column as an array. Each
-- with its execution's customer, as `insert`.
INSERT INTO workflow_steps (workflow_execution_id, customer_id, step_name, step_order, status, started_at,
                            completed_at, input_data, output_data, error_details, retry_count, max_retries, metadata)
SELECT s.workflow_execution_id, e.customer_id, s.step_name, s.step_order, s.status, s.started_at, s.completed_at,
       s.input_data, s.output_data, s.error_details, s.retry_count, s.max_retries, s.metadata
  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]::step_status[], $5::timestamptz[],
              $6::timestamptz[], $7::jsonb[], $8::jsonb[], $9::jsonb[], $10::int[], $11::int[], $12::jsonb[])
       WITH ORDINALITY
       AS s (workflow_execution_id, step_name, step_order, status, started_at, completed_at,
             input_data, output_data, error_details, retry_count, max_retries, metadata, n)
  LEFT JOIN workflow_executions e ON e.id = s.workflow_execution_id
 ORDER BY s.n  -- inserted, and given their time-ordered ids, in the order given, whatever the join's plan
RETURNING id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
          input_data, output_data, error_details, retry_count, max_retries, metadata, created_at, updated_at;

-- name: get_by_id
-- One step.
-- $2: a confined store's customer on a schema distributed by customer (the read goes to one shard); else null.
SELECT id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
       input_data, output_data, error_details, retry_count, max_retries, metadata, created_at, updated_at
  FROM workflow_steps WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: get_status
-- The current status, to explain why a transition matched nothing, once it is durable: the status
-- may be a commit whose wait for the synchronous standby was cut short (its client timed out or
-- was cut off), which a failover would take back, and a caller may take it for its own transition
-- applied. `durable`, an empty transactional WAL message written for the row found (a select
-- list is computed for the rows returned only), gives this statement's transaction WAL of its own,
-- so that its commit waits for the standby to flush the WAL up to it, and so all committed before.
-- $2: the row's customer when known on a schema distributed by customer (the read goes to one shard); else null.
SELECT status, pg_logical_emit_message(true, 'optiinfra.durable', '') AS durable
  FROM workflow_steps WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: get_retry_state
-- Status and retries used, to tell an exhausted retry from another refusal (null status: no such
-- step), once they are durable (as get_status: a caller may take them for its own retry applied).
-- $2: the row's customer when known on a schema distributed by customer (the read goes to one shard); else null.
SELECT s.status, s.retry_count, s.max_retries,
       CASE WHEN s.id IS NOT NULL THEN pg_logical_emit_message(true, 'optiinfra.durable', '') END AS durable
  FROM (SELECT $1::uuid AS id) AS wanted
  LEFT JOIN workflow_steps s ON s.id = wanted.id AND ($2::uuid IS NULL OR s.customer_id = $2);

-- name: delete_by_id
-- Delete a step with its artifacts.
-- $2: the row's customer, given on a schema distributed by customer (the write goes to one shard).
DELETE FROM workflow_steps WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) RETURNING id;

-- name: list
-- The steps of an execution, in order (optionally of some statuses); one page, keyset after $3, $4 (the cursor).
SELECT id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
       input_data, output_data, error_details, retry_count, max_retries, metadata, created_at, updated_at
  FROM workflow_steps
 WHERE workflow_execution_id = $1
   AND ($2::text[] IS NULL OR status = ANY($2::text[]::step_status[]))
   AND ($3::int IS NULL OR (step_order, id) > ($3, $4::uuid))
 ORDER BY step_order, id
 LIMIT $5;

-- name: start
-- pending or retrying -> running; started_at is kept from the first start (the earlier of the two:
-- least, not coalesce, which Citus refuses around now() in an UPDATE).
-- $4: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE workflow_steps SET status = 'running', started_at = least(started_at, now()), completed_at = NULL,
       audit_actor = $2, audit_reason = $3
 WHERE id = $1 AND ($4::uuid IS NULL OR customer_id = $4) AND status IN ('pending', 'retrying')
RETURNING id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
          input_data, output_data, error_details, retry_count, max_retries, metadata, created_at, updated_at;

-- name: finish
-- running -> completed or failed ($2), with the output and the error details (each kept as is when null).
-- $7: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE workflow_steps
   SET status = $2::step_status, completed_at = greatest(now(), started_at),
       output_data = coalesce($3, output_data), error_details = coalesce($4, error_details),
       audit_actor = $5, audit_reason = $6
 WHERE id = $1 AND ($7::uuid IS NULL OR customer_id = $7) AND status = 'running' AND $2::step_status IN ('completed', 'failed')
RETURNING id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
          input_data, output_data, error_details, retry_count, max_retries, metadata, created_at, updated_at;

-- name: skip
-- pending -> skipped.
-- $4: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE workflow_steps SET status = 'skipped', completed_at = greatest(now(), started_at),
       audit_actor = $2, audit_reason = $3
 WHERE id = $1 AND ($4::uuid IS NULL OR customer_id = $4) AND status = 'pending'
RETURNING id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
          input_data, output_data, error_details, retry_count, max_retries, metadata, created_at, updated_at;

-- name: retry
-- failed or running -> retrying, spending one retry; the row lock makes concurrent retries queue,
-- and each re-checks the budget, so none is lost and none overspends.
-- $4: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE workflow_steps SET status = 'retrying', retry_count = retry_count + 1, completed_at = NULL,
       audit_actor = $2, audit_reason = $3
 WHERE id = $1 AND ($4::uuid IS NULL OR customer_id = $4) AND status IN ('failed', 'running') AND retry_count < max_retries
RETURNING id, workflow_execution_id, customer_id, step_name, step_order, status, started_at, completed_at,
          input_data, output_data, error_details, retry_count, max_retries, metadata, created_at, updated_at;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM workflow_steps;

-- name: customer_of
-- The customer of one row: a write on a schema distributed by customer names it, to go to one shard.
SELECT customer_id FROM workflow_steps WHERE id = $1;

-- name: parent_customer
-- The customer of a new row's parent, named by its insert on a schema distributed by customer.
SELECT customer_id FROM workflow_executions WHERE id = $1;
