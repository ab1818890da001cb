import re

import asyncpg

from optiinfra_store.queries import load
from tests.integration.test_metric_series import *  # noqa: F403

# Reads the plan's text as one server prints it: Citus names a shard's index after the partition's,
# cut short and suffixed ("agent_metrics_p20260301_agent_id_metric_name_co_04788881_102099"), and
# prints the worker's plan under a task, its top node an "->" line. The cluster's own below.
del test_latest__can_use_the_agent_name_timestamp_index  # noqa: F821


async def test_latest__goes_to_the_agents_shard_and_probes_its_index(store, clean_dsn, agent):
    conn = await asyncpg.connect(clean_dsn)
    try:
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + load("agent_metrics").latest, agent.id))
    finally:
        await conn.close()
    assert "Task Count: 1" in plan  # routed by agent_id, the table's distribution column
    assert re.search(r"Index Only Scan using agent_metrics_p\d{8}_agent_id_metric_name_\w+ on", plan)
    assert "Seq Scan" not in plan
    # one sort, the task's last (of one row per name): the partitions' index order is merged below it
    assert len(re.findall(r"->\s+(?:Incremental )?Sort\s+\(", plan)) == 1, plan
