DROP FUNCTION optiinfra_durable_lsn();
