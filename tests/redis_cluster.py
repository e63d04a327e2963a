"""A throwaway Redis Cluster for routing and resharding tests.

``RedisCluster.create(masters=3, replicas_per_master=0)`` starts
masters x (1 + replicas_per_master) ``RedisServer``s (tests/redis_server.py)
with ``cluster-enabled yes``, each on a free loopback port with its cluster
bus on another free port (``cluster-port``: the default port+10000 may be
taken or beyond 65535), in its own temporary directory (``nodes.conf``
there), and joins them with ``redis-cli --cluster create ... --cluster-yes``
(slots spread evenly over the masters; with every node on 127.0.0.1
redis-cli makes nodes 0..masters-1 the masters and the rest their replicas,
which ``create`` checks; the password reaches redis-cli in REDISCLI_AUTH).

With ``auth=True`` (the default) every node has the user dbpool /
dbpool-secret (and requirepass); replicas use it towards their master, and
``url()`` carries it. ``cluster-node-timeout`` is 2000 ms, so with
replicas a killed master is replaced in a few seconds.

Routing helpers ask the servers, not a copy of CRC16: ``keyslot(key)``
(CLUSTER KEYSLOT), ``slot_owner(slot)`` (CLUSTER SLOTS) and
``node_for_key(key)``. ``migrate_slot(slot, src, dst)`` moves one slot with
the documented sequence, in three steps a test can interleave with its own
reads: ``begin_migration`` (SETSLOT IMPORTING on dst, MIGRATING on src:
from here src answers ``-ASK`` for keys already moved), ``move_keys``
(GETKEYSINSLOT + MIGRATE in batches) and ``finish_migration`` (SETSLOT NODE
on dst, src and every other master; then every node answers ``-MOVED``
towards dst).

A 3-master cluster (or 3 masters + 3 replicas) is ready in 2.1 s, at times
3-4 s (redis-cli polls the join once a second); ``migrate_slot`` of a slot
with 100 keys takes about 10-20 ms. Every node is killed and its directory removed at
interpreter exit or SIGTERM even if ``cleanup()`` is not called.

Usable on its own::

    python tests/redis_cluster.py [MASTERS [REPLICAS_PER_MASTER]]   # prints the URL
"""

from __future__ import annotations

import sys
import time
from typing import Any

from redis_resp import Reply, RespError  # tests/ is on sys.path
from redis_server import RedisBins, RedisServer, find_redis_bins

__all__ = ["RedisCluster", "SLOTS"]

SLOTS = 16384
NODE_TIMEOUT_MS = 2000

CLUSTER_CONF = (
    "cluster-enabled yes\n"
    "cluster-config-file nodes.conf\n"
    f"cluster-node-timeout {NODE_TIMEOUT_MS}\n"
    "repl-diskless-sync yes\n"
    "repl-diskless-sync-delay 0\n"
)


class RedisCluster:
    """Cluster nodes; see the module docstring."""

    def __init__(self, nodes: list[RedisServer], masters: int) -> None:
        self.nodes = nodes
        self.masters = masters
        self._ids: dict[int, str] = {}
        self._cleaned = False

    # ---- construction --------------------------------------------------------------

    @classmethod
    def create(cls, masters: int = 3, replicas_per_master: int = 0, *, auth: bool = True,
               bins: RedisBins | None = None, timeout: float = 60) -> RedisCluster:
        """Starts the nodes, joins them (redis-cli --cluster create) and waits
        until wait_ready() holds."""
        if masters < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 masters")
        bins = bins or find_redis_bins()
        cluster = cls([], masters)
        try:
            for i in range(masters * (1 + replicas_per_master)):
                cluster.nodes.append(RedisServer.start_private(
                    bins, auth=auth, extra_conf=CLUSTER_CONF, extra_ports=("cluster-port",),
                    prefix=f"dbpool-redis-cluster{i}-"))
            t0 = time.monotonic()
            cluster.nodes[0].cli("--cluster", "create", *(n.address for n in cluster.nodes),
                                 "--cluster-replicas", str(replicas_per_master), "--cluster-yes",
                                 timeout=timeout)
            cluster.wait_ready(max(1.0, timeout - (time.monotonic() - t0)))
            roles = [cluster.role(i)[0] for i in range(len(cluster.nodes))]
            if roles != ["master"] * masters + ["slave"] * (len(roles) - masters):
                raise RuntimeError(f"redis-cli chose other masters than nodes 0..{masters - 1}: {roles}")
        except BaseException:
            cluster.cleanup()
            raise
        return cluster

    # ---- addresses -----------------------------------------------------------------

    def url(self) -> str:
        """redis+cluster://[dbpool:dbpool-secret@]127.0.0.1:P1,127.0.0.1:P2,..."""
        node = self.nodes[0]
        cred = f"{node.user}:{node.password}@" if node.password else ""
        return "redis+cluster://" + cred + ",".join(n.address for n in self.nodes)

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    def node_index(self, port: int) -> int:
        for i, node in enumerate(self.nodes):
            if node.port == port:
                return i
        raise KeyError(f"no cluster node on port {port}")

    def node_id(self, i: int) -> str:
        """CLUSTER MYID of node i (cached: it never changes)."""
        if i not in self._ids:
            self._ids[i] = str(self.nodes[i].command("CLUSTER", "MYID"))
        return self._ids[i]

    def role(self, i: int, timeout: float = 2.0) -> list[Any]:
        """ROLE of node i: ["master", offset, replicas] or ["slave", host, port, state, offset]."""
        reply = self.nodes[i].command("ROLE", timeout=timeout)
        assert isinstance(reply, list), reply
        return reply

    def command(self, i: int, *args: Any, timeout: float = 5.0, decode: bool = True) -> Reply:
        """One command on node i (no redirection followed: a raw client)."""
        return self.nodes[i].command(*args, timeout=timeout, decode=decode)

    # ---- slots ---------------------------------------------------------------------

    def keyslot(self, key: str | bytes) -> int:
        """CLUSTER KEYSLOT key, asked of a running node."""
        node = next(n for n in self.nodes if n.running)
        return int(node.command("CLUSTER", "KEYSLOT", key))  # type: ignore[arg-type]

    def slot_map(self, via: int | None = None) -> dict[int, int]:
        """slot -> index of the master that owns it, as node `via` (default:
        the first running node) sees it (CLUSTER SLOTS)."""
        if via is None:
            via = next(i for i, n in enumerate(self.nodes) if n.running)
        owners: dict[int, int] = {}
        reply = self.nodes[via].command("CLUSTER", "SLOTS")
        assert isinstance(reply, list), reply
        for entry in reply:
            assert isinstance(entry, list)
            start, end, master = int(entry[0]), int(entry[1]), entry[2]  # type: ignore[arg-type]
            assert isinstance(master, list)
            owner = self.node_index(int(master[1]))  # type: ignore[arg-type]
            for slot in range(start, end + 1):
                owners[slot] = owner
        return owners

    def slot_owner(self, slot: int, via: int | None = None) -> int:
        """Index of the master owning `slot`, as node `via` sees it."""
        return self.slot_map(via)[slot]

    def node_for_key(self, key: str | bytes) -> int:
        """Index of the master that serves `key` (KEYSLOT + the slot map)."""
        return self.slot_owner(self.keyslot(key))

    # ---- waiting ---------------------------------------------------------------------

    def _problems(self) -> list[str]:
        problems: list[str] = []
        live = [i for i, n in enumerate(self.nodes) if n.running]
        for i in live:
            try:
                text = self.nodes[i].command("CLUSTER", "INFO", timeout=2)
                assert isinstance(text, str)
                info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
                    problems.append(f"node {i}: state {info.get('cluster_state')}, "
                                    f"{info.get('cluster_slots_ok')} slots ok")
                if info.get("cluster_known_nodes") != str(len(self.nodes)):
                    problems.append(f"node {i}: knows {info.get('cluster_known_nodes')} nodes")
                repl = self.nodes[i].info("replication")
                if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                    problems.append(f"node {i}: replica link {repl.get('master_link_status')}")
            except (OSError, RespError, TimeoutError) as exc:
                problems.append(f"node {i}: {exc}")
        return problems

    def wait_ready(self, timeout: float = 30) -> None:
        """Polls until every running node reports cluster_state:ok with all
        16384 slots ok, knows every node, and (replicas) has its master link up."""
        deadline = time.monotonic() + timeout
        while True:
            problems = self._problems()
            if not problems:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster not ready after {timeout}s: {problems}\n"
                                   + "\n".join(n.log_tail(8) for n in self.nodes))
            time.sleep(0.05)

    def wait_slot_owner(self, slot: int, owner: int, timeout: float = 10) -> None:
        """Polls until every running master names node `owner` for `slot`."""
        deadline = time.monotonic() + timeout
        while True:
            views: dict[int, int | str] = {}
            for i, node in enumerate(self.nodes):
                if node.running and self.role(i)[0] == "master":
                    try:
                        views[i] = self.slot_owner(slot, via=i)
                    except (OSError, RespError, TimeoutError, KeyError) as exc:
                        views[i] = str(exc)
            if all(v == owner for v in views.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"slot {slot} not owned by node {owner} everywhere after "
                                   f"{timeout}s: {views}")
            time.sleep(0.05)

    # ---- resharding ------------------------------------------------------------------

    def begin_migration(self, slot: int, src: int, dst: int) -> None:
        """CLUSTER SETSLOT slot IMPORTING src on dst, then MIGRATING dst on src."""
        self.command(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(src))
        self.command(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(dst))

    def move_keys(self, slot: int, src: int, dst: int, batch: int = 100,
                  limit: int | None = None, timeout_ms: int = 5000) -> int:
        """MIGRATEs the keys of `slot` still on src to dst, `batch` at a time
        (at most `limit` keys when given); the number moved. The credentials
        go in MIGRATE's AUTH2 over our connection, not on a command line."""
        target = self.nodes[dst]
        auth: list[str] = ["AUTH2", target.user, target.password] if target.password else []
        moved = 0
        while limit is None or moved < limit:
            count = batch if limit is None else min(batch, limit - moved)
            keys = self.command(src, "CLUSTER", "GETKEYSINSLOT", slot, count, decode=False)
            assert isinstance(keys, list)
            if not keys:
                break
            reply = self.command(src, "MIGRATE", target.host, target.port, "", 0, timeout_ms,
                                 *auth, "KEYS", *keys, timeout=timeout_ms / 1000 + 5)
            if reply not in ("OK", "NOKEY"):
                raise RuntimeError(f"MIGRATE of slot {slot} answered {reply!r}")
            moved += len(keys)
        return moved

    def finish_migration(self, slot: int, dst: int, timeout: float = 10) -> None:
        """CLUSTER SETSLOT slot NODE dst on dst first, then on every other
        running master (the source among them); waits until all agree."""
        dst_id = self.node_id(dst)
        self.command(dst, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        for i, node in enumerate(self.nodes):
            if i != dst and node.running and self.role(i)[0] == "master":
                self.command(i, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        self.wait_slot_owner(slot, dst, timeout)

    def migrate_slot(self, slot: int, src: int, dst: int, timeout: float = 10) -> int:
        """Moves `slot` with its keys from master src to master dst (all three
        steps above); the number of keys moved."""
        if self.slot_owner(slot) != src:
            raise ValueError(f"slot {slot} is owned by node {self.slot_owner(slot)}, not {src}")
        self.begin_migration(slot, src, dst)
        moved = self.move_keys(slot, src, dst)
        self.finish_migration(slot, dst, timeout)
        return moved

    # ---- control -------------------------------------------------------------------

    def kill(self, i: int) -> None:
        """Crashes node i (SIGKILL)."""
        self.nodes[i].kill()

    def start(self, i: int) -> None:
        """Starts node i again (it rejoins from its nodes.conf)."""
        self.nodes[i].start()

    def freeze(self, i: int) -> None:
        self.nodes[i].freeze()

    def thaw(self, i: int) -> None:
        self.nodes[i].thaw()

    def cleanup(self) -> None:
        """Kills every node and removes their directories. Idempotent."""
        if self._cleaned:
            return
        self._cleaned = True
        for node in reversed(self.nodes):
            node.cleanup()

    def __enter__(self) -> RedisCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"<RedisCluster ports={self.ports} masters={self.masters}>"


def _main() -> None:
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # runs the cleanup below (and atexit)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # background jobs start with SIGINT ignored
    masters = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    replicas = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    t0 = time.monotonic()
    with RedisCluster.create(masters, replicas) as cluster:
        print(f"{cluster!r} ready in {time.monotonic() - t0:.2f}s", flush=True)
        print(cluster.url(), flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    _main()
