DROP FUNCTION IF EXISTS optiinfra_durable_lsn();
