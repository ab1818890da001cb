-- The check that an optimization carries out an approved approval reads the approval by its
-- customer and id. On a Citus cluster the trigger runs on the shard holding the new row, where a
-- read of a distributed table by id alone is a distributed query, which a query on a shard may not
-- run ("cannot execute a distributed query from a query on a shard"); by customer and id it reads
-- the approvals' shard placed beside it. The message names the constraint too: a worker's error
-- reaches the client without its constraint field, and the store reads the name from the message.
--
-- On one server the answer is the same: the new row's customer is its recommendation's (the
-- optimizations_customer trigger fills it first, by name order), which is the approval's whenever
-- the key (approval_id, recommendation_id) holds. An approval of another customer's
-- recommendation, refused by that key before, is now refused by this check first. Replacing a
-- function takes no lock on a table.
-- depends: 0028_metric_partitions_on_a_cluster

SET LOCAL lock_timeout = '5s';

CREATE OR REPLACE FUNCTION optiinfra_optimizations_require_approval() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM approvals
                    WHERE customer_id = NEW.customer_id AND id = NEW.approval_id AND status = 'approved') THEN
        RAISE EXCEPTION 'optimization % needs an approved approval, % is not approved (check constraint "optimizations_approval_approved_check")',
            NEW.id, NEW.approval_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'optimizations_approval_approved_check',
                  TABLE = 'optimizations';
    END IF;
    RETURN NEW;
END;
$$;
