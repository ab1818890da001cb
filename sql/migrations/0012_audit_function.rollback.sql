DROP FUNCTION optiinfra_audit(text, jsonb);
