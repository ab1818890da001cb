-- name: metric_partitions
-- Daily agent_metrics partitions from today to $1 days ahead, and one for each day the default partition caught (its points moved in); returns how many were created.
SELECT optiinfra_maintain_metric_partitions($1);
