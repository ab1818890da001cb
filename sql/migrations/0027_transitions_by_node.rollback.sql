SET LOCAL lock_timeout = '5s';

DROP FUNCTION IF EXISTS optiinfra_node_transitions(xid8, uuid, uuid, bigint[], bigint);
