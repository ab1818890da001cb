-- name: insert
-- A new artifact, with its execution's customer (as a step's insert).
INSERT INTO workflow_artifacts (workflow_execution_id, workflow_step_id, customer_id, artifact_type, artifact_name,
                                artifact_path, artifact_size_bytes, content_type, metadata)
SELECT :workflow_execution_id, :workflow_step_id, e.customer_id, :artifact_type, :artifact_name, :artifact_path,
       :artifact_size_bytes, :content_type, :metadata
  FROM (SELECT :workflow_execution_id::uuid AS id) AS parent
  LEFT JOIN workflow_executions e ON e.id = parent.id
RETURNING id, workflow_execution_id, workflow_step_id, customer_id, artifact_type, artifact_name, artifact_path,
          artifact_size_bytes, content_type, metadata, created_at, updated_at;

-- name: insert_routed
-- A new artifact with its customer given (as a step's insert_routed).
INSERT INTO workflow_artifacts (workflow_execution_id, workflow_step_id, customer_id, artifact_type, artifact_name,
                                artifact_path, artifact_size_bytes, content_type, metadata)
VALUES (:workflow_execution_id, :workflow_step_id, :customer_id, :artifact_type, :artifact_name, :artifact_path,
        :artifact_size_bytes, :content_type, :metadata)
RETURNING id, workflow_execution_id, workflow_step_id, customer_id, artifact_type, artifact_name, artifact_path,
          artifact_size_bytes, content_type, metadata, created_at, updated_at;

-- name: get_by_id
-- One artifact.
-- $2: a confined store's customer on a schema distributed by customer (the read goes to one shard); else null.
SELECT id, workflow_execution_id, workflow_step_id, customer_id, artifact_type, artifact_name, artifact_path,
       artifact_size_bytes, content_type, metadata, created_at, updated_at
  FROM workflow_artifacts WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: delete_by_id
-- Delete an artifact record.
-- $2: the row's customer, given on a schema distributed by customer (the write goes to one shard).
DELETE FROM workflow_artifacts WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) RETURNING id;

-- name: list
-- Artifacts, filtered by execution, step and type, oldest first; one page, keyset after $4, $5 (the cursor).
SELECT id, workflow_execution_id, workflow_step_id, customer_id, artifact_type, artifact_name, artifact_path,
       artifact_size_bytes, content_type, metadata, created_at, updated_at
  FROM workflow_artifacts
 WHERE ($1::uuid IS NULL OR workflow_execution_id = $1)
   AND ($2::uuid IS NULL OR workflow_step_id = $2)
   AND ($3::text IS NULL OR artifact_type = $3::artifact_type)
   AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5::uuid))
 ORDER BY created_at, id
 LIMIT $6;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM workflow_artifacts;

-- name: parent_customer
-- The customer of a new row's parent, named by its insert on a schema distributed by customer.
SELECT customer_id FROM workflow_executions WHERE id = $1;

-- name: customer_of
-- The customer of one row: a write on a schema distributed by customer names it, to go to one shard.
SELECT customer_id FROM workflow_artifacts WHERE id = $1;
