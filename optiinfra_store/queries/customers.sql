-- name: insert
-- A new customer.
INSERT INTO customers (name, email, status, metadata)
VALUES (:name, :email, :status, :metadata)
RETURNING id, name, email, status, metadata, created_at, updated_at;

-- name: get_by_id
-- One customer.
SELECT id, name, email, status, metadata, created_at, updated_at
  FROM customers WHERE id = $1;

-- name: delete_by_id
-- Delete a customer and, by cascade, everything recorded for it.
DELETE FROM customers WHERE id = $1 RETURNING id;

-- name: update
-- Partial update: each field comes as (was it given, value), by name.
UPDATE customers
   SET name = CASE WHEN :given_name THEN coalesce(:name, name) ELSE name END,
       email = CASE WHEN :given_email THEN coalesce(:email, email) ELSE email END,
       status = CASE WHEN :given_status THEN coalesce(:status, status) ELSE status END,
       metadata = CASE WHEN :given_metadata THEN coalesce(:metadata, metadata) ELSE metadata END
 WHERE id = :id
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
