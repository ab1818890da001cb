-- Back to reading the approval by id alone (0001).
SET LOCAL lock_timeout = '5s';

CREATE OR REPLACE FUNCTION optiinfra_optimizations_require_approval() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM approvals WHERE id = NEW.approval_id AND status = 'approved') THEN
        RAISE EXCEPTION 'optimization % needs an approved approval, % is not approved',
            NEW.id, NEW.approval_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'optimizations_approval_approved_check',
                  TABLE = 'optimizations';
    END IF;
    RETURN NEW;
END;
$$;
