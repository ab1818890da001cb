-- name: insert
-- A new recommendation.
INSERT INTO recommendations (customer_id, agent_id, recommendation_type, title, description,
                             estimated_savings_usd, confidence_score, details)
VALUES (:customer_id, :agent_id, :recommendation_type, :title, :description, :estimated_savings_usd, :confidence_score, :details)
RETURNING id, customer_id, agent_id, recommendation_type, title, description, estimated_savings_usd,
          confidence_score, details, created_at, updated_at;

-- name: get_by_id
-- One recommendation.
-- $2: a confined store's customer on a schema distributed by customer (the read goes to one shard); else null.
SELECT id, customer_id, agent_id, recommendation_type, title, description, estimated_savings_usd,
       confidence_score, details, created_at, updated_at
  FROM recommendations WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2);

-- name: delete_by_id
-- Delete a recommendation with its approvals and optimizations.
-- $2: the row's customer, given on a schema distributed by customer (the write goes to one shard).
DELETE FROM recommendations WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) RETURNING id;

-- name: update
-- Partial update: each field comes as (was it given, value), by name; None clears the nullable columns.
-- :customer_id: the row's customer, given on a schema distributed by customer (the write goes to one shard).
UPDATE recommendations
   SET title = CASE WHEN :given_title THEN coalesce(:title, title) ELSE title END,
       description = CASE WHEN :given_description THEN :description ELSE description END,
       estimated_savings_usd = CASE WHEN :given_estimated_savings_usd THEN :estimated_savings_usd ELSE estimated_savings_usd END,
       confidence_score = CASE WHEN :given_confidence_score THEN :confidence_score ELSE confidence_score END,
       details = CASE WHEN :given_details THEN coalesce(:details, details) ELSE details END
 WHERE id = :id AND (:customer_id::uuid IS NULL OR customer_id = :customer_id)
RETURNING id, customer_id, agent_id, recommendation_type, title, description, estimated_savings_usd,
          confidence_score, details, created_at, updated_at;

-- name: list
-- Recommendations, oldest first, optionally of one customer, agent and types; one page, keyset after $4, $5 (the cursor).
SELECT id, customer_id, agent_id, recommendation_type, title, description, estimated_savings_usd,
       confidence_score, details, created_at, updated_at
  FROM recommendations
 WHERE ($1::uuid IS NULL OR customer_id = $1)
   AND ($2::uuid IS NULL OR agent_id = $2)
   AND ($3::text[] IS NULL OR recommendation_type = ANY($3::text[]::recommendation_type[]))
   AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5::uuid))
 ORDER BY created_at, id
 LIMIT $6;

-- name: count
-- How many recommendations there are.
SELECT count(*) FROM recommendations;

-- name: customer_of
-- The customer of one row: a write on a schema distributed by customer names it, to go to one shard.
SELECT customer_id FROM recommendations WHERE id = $1;
