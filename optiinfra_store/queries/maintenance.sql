-- name: metric_partitions
-- Daily agent_metrics partitions from today to $1 days ahead, and one for each day the default partition caught (its points moved in); returns how many were created.
SELECT optiinfra_maintain_metric_partitions($1);

-- name: metric_days_wanted
-- On a Citus cluster: the days maintain() makes an agent_metrics partition for (from today to $1 days ahead, those without one, and the days the default partition caught), oldest first.
SELECT day FROM optiinfra_metric_days_wanted($1) AS day;

-- name: create_metric_partition
-- The agent_metrics partition of day $1, its points moved in from the default partition, unless one holds that day; returns how many were created (0 or 1).
SELECT optiinfra_create_metric_partitions($1, $1);

-- name: roll_up
-- Roll up at most $1 hours of workflow analytics (closed hours after the watermark, hours changed since they were rolled up); returns how many, 0 when caught up.
SELECT optiinfra_roll_up($1);

-- name: applied_migrations
-- The ids of the migrations yoyo has applied (readiness: is the schema current?).
SELECT migration_id FROM _yoyo_migration;

-- name: citus_installed
-- Whether the database has the citus extension (a distributed schema is possible).
SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus');

-- name: distributed_by_customer
-- Whether the schema is distributed by customer: workflow_executions hash-distributed by customer_id
-- (`optiinfra-store distribute`). Asked only where citus is installed (its catalog).
SELECT EXISTS (SELECT FROM pg_dist_partition
                WHERE logicalrelid = to_regclass('public.workflow_executions') AND partmethod = 'h');
