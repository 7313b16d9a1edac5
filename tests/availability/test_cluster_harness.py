"""S1 (harness part): a local Redis Cluster of 3 masters and 3 replicas forms and fails over."""

from __future__ import annotations

import time

from redis.crc import key_slot

from portside.servers.cluster import LocalCluster, cluster_command


def test_s1_a_local_cluster_forms_and_a_killed_master_is_replaced_by_its_replica() -> None:
    """S1: `LocalCluster` starts 3 masters with one replica each on private ports, splits
    the slots, and when the master serving the `{bull}` hash tag is SIGKILLed its replica
    takes the slot over and the cluster is healthy again."""
    cluster = LocalCluster(masters=3, replicas=1, node_timeout=1.0).start()
    try:
        info = cluster_command(cluster.masters[0].port, "CLUSTER", "INFO")
        assert "cluster_state:ok" in info
        assert "cluster_known_nodes:6" in info
        assert "cluster_size:3" in info
        slot = key_slot(b"{bull}")
        owner = cluster.owner_of(slot)
        killed_at = time.monotonic()
        owner.kill()
        new_owner = cluster.wait_new_owner(slot, owner, timeout=30)
        took = time.monotonic() - killed_at
        assert new_owner is not owner
        assert new_owner in cluster.replicas
        assert took < 30
    finally:
        cluster.stop()
