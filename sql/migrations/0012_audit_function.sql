-- Who made a transition and why, for the transition trigger: one function instead of the same
-- common table expression in every transition statement. The settings are local to the calling
-- transaction; the trigger spends them, so the next change does not inherit them. True, so a
-- statement can call it in its WHERE clause: `WHERE id = $1 AND optiinfra_audit($2, $3) AND ...`.
-- No SET clause: a function's SET clause would undo the settings when it returns.
-- depends: 0011_client_side_secrets

CREATE FUNCTION optiinfra_audit(actor text, reason jsonb) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT true
      FROM (SELECT pg_catalog.set_config('optiinfra.actor', coalesce(actor, ''), true),
                   pg_catalog.set_config('optiinfra.reason', coalesce(reason::text, ''), true)) AS done
$$;
