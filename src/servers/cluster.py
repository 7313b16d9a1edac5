"""A private Redis Cluster: masters and replicas of the redis/valkey binary on free ports."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from portside.servers.binaries import RedisBinary
from portside.servers.errors import ServerStartError
from portside.servers.process import free_port
from portside.servers.redis import LocalRedis
from portside.servers.tls import ServerTls

__all__ = ["LocalCluster", "cluster_command"]

SLOTS = 16384
_PORT_MAX = 55535


def cluster_command(port: int, *args: str, timeout: float = 5.0) -> str:
    """Send one command to 127.0.0.1:``port`` and return its simple or bulk string reply.

    Raises:
        ServerStartError: on an error reply.
    """
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(payload.encode())
        reader = conn.makefile("rb")
        line = reader.readline().decode().rstrip("\r\n")
        if line.startswith("-"):
            raise ServerStartError(
                f"{' '.join(args)} on port {port} failed: {line[1:]}",
                fix="read the node's log",
            )
        if line.startswith("$"):
            size = int(line[1:])
            return "" if size < 0 else reader.read(size + 2)[:-2].decode()
        return line[1:]


def _cluster_port() -> int:
    """A free port below 55536: a node's bus port defaults to its port + 10000, and some
    servers check that even when ``cluster-port`` sets it."""
    while True:
        port = free_port()
        if port <= _PORT_MAX:
            return port


class LocalCluster:
    """``masters`` masters with ``replicas`` replicas each, slots split evenly, for tests.

    Every node is a ``LocalRedis`` with ``cluster-enabled yes``; a master whose process dies
    is replaced by its replica after ``node_timeout`` seconds (automatic failover).

    Args:
        masters: Number of masters (at least 3, as Redis Cluster needs for failover votes).
        replicas: Replicas per master.
        node_timeout: Seconds before an unreachable node counts as failed.
        binary: The server binary (``find_redis_server`` by default).
        base_dir: Where the nodes' directories go.
        tls: Also serve TLS (on ``tls_port[node]``, client certificates required) with these
            files, and speak TLS on the cluster bus and between master and replica
            (``tls-cluster yes``, ``tls-replication yes``): nodes then announce their TLS
            ports to TLS clients. The plain port stays open for the harness's own checks.
    """

    def __init__(
        self,
        *,
        masters: int = 3,
        replicas: int = 1,
        node_timeout: float = 1.0,
        binary: RedisBinary | None = None,
        base_dir: Path | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        self.node_timeout = node_timeout
        self.tls = tls
        self.tls_port: dict[LocalRedis, int] = {}
        self._bus: dict[LocalRedis, int] = {}
        self.masters = [self._node(binary, base_dir) for _ in range(masters)]
        self.replicas = [self._node(binary, base_dir) for _ in range(masters * replicas)]

    def _node(self, binary: RedisBinary | None, base_dir: Path | None) -> LocalRedis:
        bus = _cluster_port()
        tls_port = _cluster_port() if self.tls is not None else 0
        tls_args: tuple[str, ...] = ()
        if self.tls is not None:
            tls_args = (
                "--tls-port", str(tls_port),
                "--tls-cert-file", str(self.tls.cert),
                "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca),
                # Nodes present this one to each other (the server's is for serving only).
                "--tls-client-cert-file", str(self.tls.client_cert),
                "--tls-client-key-file", str(self.tls.client_key),
                "--tls-auth-clients", "yes",
                "--tls-cluster", "yes",
                "--tls-replication", "yes",
            )  # fmt: skip
        node = LocalRedis(
            port=_cluster_port(),
            binary=binary,
            base_dir=base_dir,
            appendonly=True,
            extra_args=(
                "--cluster-enabled", "yes",
                "--cluster-port", str(bus),
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(round(self.node_timeout * 1000)),
                "--cluster-require-full-coverage", "no",
                # A replica may take over however long ago it last heard from its master:
                # in a test the master is killed on purpose, seconds after the sync.
                "--cluster-replica-validity-factor", "0",
                *tls_args,
            ),
        )  # fmt: skip
        self._bus[node] = bus
        if self.tls is not None:
            self.tls_port[node] = tls_port
        return node

    @property
    def nodes(self) -> list[LocalRedis]:
        return [*self.masters, *self.replicas]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` of the first master (a seed node)."""
        return self.masters[0].url

    def start(self, timeout: float = 60.0) -> Self:
        """Start every node, assign the slots, attach the replicas; return once the
        cluster reports ``cluster_state:ok`` on every node."""
        try:
            for node in self.nodes:
                node.start()
            self._assign_slots()
            seed = self.masters[0]
            for node in self.nodes[1:]:
                cluster_command(
                    node.port, "CLUSTER", "MEET", "127.0.0.1", str(seed.port), str(self._bus[seed])
                )
            self._wait(self._known_everywhere, timeout, "every node to know the others")
            per_master = len(self.replicas) // len(self.masters)
            for index, replica in enumerate(self.replicas):
                master = self.masters[index // per_master]
                master_id = cluster_command(master.port, "CLUSTER", "MYID")
                cluster_command(replica.port, "CLUSTER", "REPLICATE", master_id)
            self._wait(self._healthy, timeout, "cluster_state:ok on every node")
        except BaseException:
            self.stop()
            raise
        return self

    def _assign_slots(self) -> None:
        share = SLOTS // len(self.masters)
        for index, master in enumerate(self.masters):
            first = index * share
            last = SLOTS - 1 if index == len(self.masters) - 1 else first + share - 1
            cluster_command(master.port, "CLUSTER", "ADDSLOTSRANGE", str(first), str(last))

    def _known_everywhere(self) -> bool:
        count = len(self.nodes)
        return all(
            cluster_command(node.port, "CLUSTER", "NODES").count("connected") >= count
            for node in self.nodes
        )

    def _healthy(self) -> bool:
        """Every running node says ``cluster_state:ok`` and sees every master with a replica."""
        for node in self.nodes:
            if not node.running:
                continue
            info = cluster_command(node.port, "CLUSTER", "INFO")
            if "cluster_state:ok" not in info:
                return False
            table = cluster_command(node.port, "CLUSTER", "NODES")
            if table.count("slave") < len(self.replicas):
                return False
        return all(
            "master_link_status:up" in cluster_command(replica.port, "INFO", "replication")
            for replica in self.replicas
            if replica.running
        )

    def owner_of(self, slot: int) -> LocalRedis:
        """The node serving ``slot`` as master right now (asked of a running node)."""
        alive = next(node for node in self.nodes if node.running)
        for line in cluster_command(alive.port, "CLUSTER", "NODES").splitlines():
            fields = line.split()
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            for part in fields[8:]:
                low, _, high = part.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    port = int(fields[1].split(":")[1].split("@")[0])
                    return next(node for node in self.nodes if node.port == port)
        raise ServerStartError(f"no master serves slot {slot}", fix="check the cluster")

    def wait_new_owner(self, slot: int, old: LocalRedis, timeout: float = 30.0) -> LocalRedis:
        """Wait until a running node other than ``old`` serves ``slot`` (after ``old`` was
        killed, its replica's automatic failover) and the cluster is healthy; return it."""

        def taken_over() -> bool:
            owner = self.owner_of(slot)
            return owner is not old and owner.running

        self._wait(taken_over, timeout, f"another node to serve slot {slot}")
        self.wait_healthy(timeout)
        return self.owner_of(slot)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until every running node reports ``cluster_state:ok`` (after a failover)."""
        self._wait(self._ok_on_running, timeout, "cluster_state:ok after a failover")

    def _ok_on_running(self) -> bool:
        return all(
            "cluster_state:ok" in cluster_command(node.port, "CLUSTER", "INFO")
            for node in self.nodes
            if node.running
        )

    @staticmethod
    def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                if condition():
                    return
            except (OSError, ServerStartError):
                pass
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"timed out after {timeout} s waiting for {what}",
                    fix="read the nodes' logs (server.log in each node's directory)",
                )
            time.sleep(delay)  # a synchronous harness start-up poll, like wait_until
            delay = min(delay * 2, 0.2)

    def stop(self) -> None:
        """Stop every node and delete their directories."""
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
