-- name: insert
-- A new customer; columns in CustomerCreate's field order.
INSERT INTO customers (name, email, status, metadata)
VALUES ($1, $2, $3, $4)
RETURNING id, name, email, status, metadata, created_at, updated_at;

-- name: get_by_id
-- One customer.
SELECT id, name, email, status, metadata, created_at, updated_at
  FROM customers WHERE id = $1;

-- name: delete_by_id
-- Delete a customer and, by cascade, everything recorded for it.
DELETE FROM customers WHERE id = $1 RETURNING id;

-- name: update
-- Partial update: each field comes as (was it given, value).
UPDATE customers
   SET name = CASE WHEN $2 THEN coalesce($3, name) ELSE name END,
       email = CASE WHEN $4 THEN coalesce($5, email) ELSE email END,
       status = CASE WHEN $6 THEN coalesce($7, status) ELSE status END,
       metadata = CASE WHEN $8 THEN coalesce($9, metadata) ELSE metadata END
 WHERE id = $1
RETURNING id, name, email, status, metadata, created_at, updated_at;

-- name: list
-- Customers, optionally of one status, oldest first.
SELECT id, name, email, status, metadata, created_at, updated_at
  FROM customers
 WHERE ($1::text IS NULL OR status = $1::customer_status)
 ORDER BY created_at, id
 LIMIT $2;

-- name: get_by_email
-- The customer with this email.
SELECT id, name, email, status, metadata, created_at, updated_at
  FROM customers WHERE email = $1;

-- name: count
-- How many rows the table holds.
SELECT count(*) FROM customers;
