-- name: metric_partitions
-- Daily agent_metrics partitions from today to $1 days ahead, and one for each day the default partition caught (its points moved in); returns how many were created.
SELECT optiinfra_maintain_metric_partitions($1);

-- name: roll_up
-- Roll up at most $1 hours of workflow analytics (closed hours after the watermark, hours changed since they were rolled up); returns how many, 0 when caught up.
SELECT optiinfra_roll_up($1);

-- name: applied_migrations
-- The ids of the migrations yoyo has applied (readiness: is the schema current?).
SELECT migration_id FROM _yoyo_migration;
