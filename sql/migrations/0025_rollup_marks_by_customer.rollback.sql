-- Back to marks of an hour alone. On one server only: a cluster's marks are placed by customer.
SET LOCAL lock_timeout = '5s';

DROP FUNCTION IF EXISTS optiinfra_rollup_mark();
ALTER TABLE workflow_rollup_pending DROP COLUMN IF EXISTS customer_id;
