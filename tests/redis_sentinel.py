"""A throwaway Redis master + replicas watched by Sentinels, for failover tests.

``RedisSentinelSet.create(replicas=2, sentinels=3)`` starts a master (node
0) and its replicas (nodes 1..; ``replicaof`` in their config), then the
Sentinels, each a ``RedisServer`` (tests/redis_server.py) on its own free
loopback port in its own temporary directory. Node indexes stay the same
after a failover: ``master_index()`` says which node the Sentinels name as
master now.

The Sentinels monitor the master as ``mymaster`` with quorum 2,
``down-after-milliseconds`` 1000, ``failover-timeout`` 5000 and
``parallel-syncs`` = the number of replicas. Measured on 2 busy cores:
``failover()`` (SENTINEL FAILOVER until every Sentinel has switched) takes
2.2-2.3 s; after ``kill()`` of the master every Sentinel has switched to a
promoted replica within 4.2-5.2 s. With
``auth=True`` (the default) data nodes and Sentinels all have the user
dbpool / dbpool-secret (and requirepass), and the Sentinels use it with
each other (``sentinel-user``/``sentinel-pass``) and with the data nodes
(``auth-user``/``auth-pass``); ``url()`` then carries it.

Replication is ASYNCHRONOUS (as Redis is): an acknowledged write can be lost
in a failover unless the writer waited for the replicas (``WAIT n ms``).
Replicas sync diskless with no delay (``repl-diskless-sync-delay 0``), so
they are online about 0.1 s after they start.

Things tests must keep in mind (Sentinel's own behaviour):

- a Sentinel turns a *reachable* old master into a replica of the new one
  only about 9 s after the switch (11.2 s after SENTINEL FAILOVER,
  measured: it waits 4 "publish periods" to be sure the old master did not
  just come back); ``failover()`` does not wait for that unless
  ``wait_old_master=True``;
- while a failover runs, GET-MASTER-ADDR-BY-NAME already names the promoted
  replica; SENTINEL MASTER (and +switch-master) change only at its end, which
  is what ``wait_new_master()`` waits for;
- a killed node that is started again (``start(i)``) comes back as what its
  config file says; Sentinel rewrites that file (``CONFIG REWRITE``) when it
  reconfigures a node, and then demotes a returning old master the same way;
- a killed Sentinel stays in the others' tables (as down).

A set of 1 master + 2 replicas + 3 Sentinels is ready in 2.2-2.3 s
(Sentinels find each other through hello messages sent every 2 s). Every
process is killed and its directory removed at interpreter exit or SIGTERM
even if ``cleanup()`` is not called.

Usable on its own::

    python tests/redis_sentinel.py [REPLICAS]   # prints the URLs, runs until SIGINT/SIGTERM
"""

from __future__ import annotations

import sys
import time
from typing import Any

from redis_resp import Reply, RespError  # tests/ is on sys.path
from redis_server import RedisBins, RedisServer, find_redis_bins

__all__ = ["RedisSentinelSet", "MASTER_NAME"]

MASTER_NAME = "mymaster"
QUORUM = 2
#: Not lower: below 1000 ms Sentinel pings every down-after ms, so the first
#: PING to a just-promoted master races its sdown check; with 500 ms we saw
#: a killed master's failover flap between the replicas (config epoch 7).
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000

#: Every data node: sync replicas at once, diskless (no RDB file, no 5 s delay).
DATA_NODE_CONF = "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n"


def _pairs(reply: Reply) -> dict[str, str]:
    """A flat [k1, v1, k2, v2, ...] reply (SENTINEL MASTER, one entry of
    SENTINEL REPLICAS) as a dict."""
    assert isinstance(reply, list), reply
    return {str(k): str(v) for k, v in zip(reply[::2], reply[1::2])}


class RedisSentinelSet:
    """Master + replicas + Sentinels; see the module docstring."""

    def __init__(self, nodes: list[RedisServer], sentinels: list[RedisServer]) -> None:
        self.nodes = nodes
        self.sentinels = sentinels
        self._cleaned = False

    # ---- construction --------------------------------------------------------------

    @classmethod
    def create(cls, replicas: int = 2, sentinels: int = 3, *, auth: bool = True,
               down_after_ms: int = DOWN_AFTER_MS, bins: RedisBins | None = None,
               timeout: float = 30) -> RedisSentinelSet:
        """Starts the master, the replicas and the Sentinels; waits until
        wait_ready() holds."""
        if replicas < 1 or sentinels < QUORUM:
            raise ValueError(f"need at least 1 replica and {QUORUM} Sentinels")
        bins = bins or find_redis_bins()
        master = RedisServer.start_private(bins, auth=auth, extra_conf=DATA_NODE_CONF,
                                           prefix="dbpool-redis-node0-")
        group = cls([master], [])
        try:
            for i in range(1, replicas + 1):
                group.nodes.append(RedisServer.start_private(
                    bins, auth=auth, prefix=f"dbpool-redis-node{i}-",
                    extra_conf=DATA_NODE_CONF + f"replicaof {master.host} {master.port}\n"))
            # replicas first: a Sentinel learns them from the master's first INFO
            group.wait_replicating(0, timeout)
            for i in range(sentinels):
                group.sentinels.append(RedisServer.start_private(
                    bins, auth=auth, sentinel=True, prefix=f"dbpool-redis-sentinel{i}-",
                    extra_conf=group._sentinel_conf(master, down_after_ms)))
            group.wait_ready(timeout)
        except BaseException:
            group.cleanup()
            raise
        return group

    def _sentinel_conf(self, master: RedisServer, down_after_ms: int) -> str:
        conf = [
            f"sentinel monitor {MASTER_NAME} {master.host} {master.port} {QUORUM}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}",
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER_NAME} {len(self.nodes) - 1}",
        ]
        if master.password:
            conf += [f"sentinel auth-user {MASTER_NAME} {master.user}",
                     f"sentinel auth-pass {MASTER_NAME} {master.password}",
                     f"sentinel sentinel-user {master.user}",
                     f"sentinel sentinel-pass {master.password}"]
        return "\n".join(conf) + "\n"

    # ---- addresses -----------------------------------------------------------------

    def url(self) -> str:
        """redis+sentinel://[dbpool:dbpool-secret@]127.0.0.1:S1,127.0.0.1:S2,.../mymaster"""
        node = self.nodes[0]
        cred = f"{node.user}:{node.password}@" if node.password else ""
        hosts = ",".join(s.address for s in self.sentinels)
        return f"redis+sentinel://{cred}{hosts}/{MASTER_NAME}"

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [(s.host, s.port) for s in self.sentinels]

    def _live_sentinels(self) -> list[RedisServer]:
        return [s for s in self.sentinels if s.running]

    def sentinel_command(self, *args: Any, timeout: float = 5.0) -> Reply:
        """A command on the first running Sentinel that answers."""
        last: Exception | None = None
        for s in self._live_sentinels():
            try:
                return s.command(*args, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                last = exc
        raise RuntimeError(f"no Sentinel answered {args[0]}: {last}")

    def master_port(self) -> int:
        """The master's port as the (first answering) Sentinel sees it."""
        reply = self.sentinel_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        assert isinstance(reply, list) and len(reply) == 2, reply
        return int(str(reply[1]))

    def node_index(self, port: int) -> int:
        """The index of the data node listening on `port`."""
        for i, node in enumerate(self.nodes):
            if node.port == port:
                return i
        raise KeyError(f"no data node on port {port}")

    def master_index(self) -> int:
        """The index of the node the Sentinels name as master."""
        return self.node_index(self.master_port())

    def role(self, i: int, timeout: float = 2.0) -> list[Any]:
        """ROLE of data node i: ["master", offset, replicas] or
        ["slave", host, port, state, offset]."""
        reply = self.nodes[i].command("ROLE", timeout=timeout)
        assert isinstance(reply, list), reply
        return reply

    # ---- waiting ---------------------------------------------------------------------

    def _follows(self, i: int, master: int) -> bool:
        """Whether node i is a replica of node `master` with its link up."""
        try:
            info = self.nodes[i].info("replication")
        except (OSError, RespError, TimeoutError):
            return False
        return (info.get("role") == "slave" and info.get("master_port") == str(self.nodes[master].port)
                and info.get("master_link_status") == "up")

    def wait_replicating(self, master: int, timeout: float = 30,
                         replicas: list[int] | None = None) -> None:
        """Polls until every running node but `master` (or just `replicas`)
        is a replica of node `master` with its link up, and the master lists
        it as online."""
        want = replicas if replicas is not None else \
            [i for i, n in enumerate(self.nodes) if i != master and n.running]
        deadline = time.monotonic() + timeout
        while True:
            ok = [i for i in want if self._follows(i, master)]
            online = ""
            if len(ok) == len(want):
                try:
                    info = self.nodes[master].info("replication")
                    online = ",".join(v for k, v in info.items() if k.startswith("slave") and "state=online" in v)
                    if all(f"port={self.nodes[i].port}," in online for i in want):
                        return
                except (OSError, RespError, TimeoutError):
                    pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"replicas {sorted(set(want) - set(ok))} of node {master} not following after "
                    f"{timeout}s (master lists online: {online!r})\n"
                    + "\n".join(self.nodes[i].log_tail(8) for i in [master, *want]))
            time.sleep(0.05)

    def _sentinel_problems(self) -> list[str]:
        """What keeps the Sentinels from agreeing on a healthy set ([]: nothing)."""
        problems: list[str] = []
        live_nodes = {n.port for n in self.nodes if n.running}
        n_live = len(self._live_sentinels())
        for k, s in enumerate(self.sentinels):
            if not s.running:
                continue
            try:
                master = _pairs(s.command("SENTINEL", "MASTER", MASTER_NAME))
                replicas = [_pairs(r) for r in s.command("SENTINEL", "REPLICAS", MASTER_NAME) or []]  # type: ignore[union-attr]
            except (OSError, RespError, TimeoutError) as exc:
                problems.append(f"sentinel {k}: {exc}")
                continue
            port = int(master["port"])
            if master["flags"] != "master" or port not in live_nodes:
                problems.append(f"sentinel {k}: master {port} flags {master['flags']}")
                continue
            if int(master["num-other-sentinels"]) < n_live - 1:
                problems.append(f"sentinel {k}: sees {master['num-other-sentinels']} other sentinels")
            good = {int(r["port"]) for r in replicas
                    if r["flags"] == "slave" and r.get("master-link-status") == "ok"
                    and r.get("master-port") == str(port)}
            missing = live_nodes - {port} - good
            if missing:
                problems.append(f"sentinel {k}: replicas {sorted(missing)} not seen healthy")
        masters = set()
        for s in self._live_sentinels():
            try:
                reply = s.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                masters.add(str(reply[1]) if isinstance(reply, list) else "?")
            except (OSError, RespError, TimeoutError):
                pass
        if len(masters) > 1:
            problems.append(f"sentinels disagree on the master: {sorted(masters)}")
        return problems

    def wait_ready(self, timeout: float = 30) -> None:
        """Polls until every running Sentinel names the same running master,
        sees the other running Sentinels and sees every other running data
        node as a healthy replica of that master."""
        deadline = time.monotonic() + timeout
        while True:
            problems = self._sentinel_problems()
            if not problems:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Sentinels not ready after {timeout}s: {problems}\n"
                                   + "\n".join(s.log_tail(8) for s in self.sentinels))
            time.sleep(0.1)

    def wait_new_master(self, old_port: int, timeout: float = 30) -> int:
        """Polls until every running Sentinel has switched to a master other
        than `old_port` (SENTINEL MASTER shows it, flags just "master": the
        failover is over and +switch-master was published; GET-MASTER-ADDR-
        BY-NAME names the promoted replica earlier, while the failover still
        runs) and that node answers ROLE as a master; its index."""
        deadline = time.monotonic() + timeout
        while True:
            seen: set[str] = set()
            for s in self._live_sentinels():
                try:
                    master = _pairs(s.command("SENTINEL", "MASTER", MASTER_NAME, timeout=1))
                    addr = s.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME, timeout=1)
                    port = str(addr[1]) if isinstance(addr, list) else "?"
                    seen.add(f"{master['port']}/{port}/{master['flags']}")
                except (OSError, RespError, TimeoutError):
                    seen.add("?")
            if len(seen) == 1:
                port, addr_port, flags = (next(iter(seen)).split("/") + ["", ""])[:3]
                if port == addr_port and port.isdigit() and int(port) != old_port and flags == "master":
                    new = self.node_index(int(port))
                    try:
                        if self.role(new)[0] == "master":
                            return new
                    except (OSError, RespError, TimeoutError):
                        pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no new master instead of {old_port} after {timeout}s "
                                   f"(Sentinels report port/addr-port/flags {sorted(seen)})\n"
                                   + "\n".join(s.log_tail(12) for s in self._live_sentinels()))
            time.sleep(0.05)

    # ---- control -------------------------------------------------------------------

    def failover(self, timeout: float = 30, *, wait_old_master: bool = False) -> int:
        """SENTINEL FAILOVER (no agreement needed: a forced failover), then
        waits until all Sentinels name a new master and the other replicas
        follow it (and the old master too if wait_old_master: ~9 s more).
        Returns the new master's index."""
        old = self.master_index()
        t0 = time.monotonic()
        reply = self.sentinel_command("SENTINEL", "FAILOVER", MASTER_NAME)
        if reply != "OK":
            raise RuntimeError(f"SENTINEL FAILOVER answered {reply!r}")
        new = self.wait_new_master(self.nodes[old].port, timeout)
        left = max(1.0, timeout - (time.monotonic() - t0))
        followers = [i for i, n in enumerate(self.nodes)
                     if i not in (old, new) and n.running] + ([old] if wait_old_master else [])
        self.wait_replicating(new, left, followers)
        return new

    def kill(self, i: int) -> None:
        """Crashes data node i (SIGKILL)."""
        self.nodes[i].kill()

    def start(self, i: int) -> None:
        """Starts data node i again on its port, as its (maybe Sentinel-rewritten) config says."""
        self.nodes[i].start()

    def kill_sentinel(self, k: int) -> None:
        """Crashes Sentinel k (SIGKILL)."""
        self.sentinels[k].kill()

    def freeze(self, i: int) -> None:
        """SIGSTOP data node i until thaw(i)."""
        self.nodes[i].freeze()

    def thaw(self, i: int) -> None:
        self.nodes[i].thaw()

    def cleanup(self) -> None:
        """Kills every Sentinel and node and removes their directories. Idempotent."""
        if self._cleaned:
            return
        self._cleaned = True
        for server in [*self.sentinels, *reversed(self.nodes)]:
            server.cleanup()

    def __enter__(self) -> RedisSentinelSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return (f"<RedisSentinelSet nodes={[n.port for n in self.nodes]} "
                f"sentinels={[s.port for s in self.sentinels]}>")


def _main() -> None:
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # runs the cleanup below (and atexit)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # background jobs start with SIGINT ignored
    replicas = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    t0 = time.monotonic()
    with RedisSentinelSet.create(replicas) as group:
        print(f"{group!r} ready in {time.monotonic() - t0:.2f}s", flush=True)
        for i, node in enumerate(group.nodes):
            print(f"node{i} {'master' if i == 0 else 'replica'}: {node.url}", flush=True)
        print(f"sentinels: {group.url()}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    _main()
