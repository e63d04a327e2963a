"""Redis Sentinel pools (docs/redis.md, "Sentinel") against a real master +
2 replicas + 3 Sentinels (tests/redis_sentinel.py): discovery, following
SENTINEL FAILOVER and a killed master under concurrent writers, and reads
from replicas. Timings measured here are printed (pytest -s shows them)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from db_pool import DatabasePool, SyncDatabasePool
from db_pool._redis_sentinel import spec_of
from db_pool._common import pool_arguments
from db_pool.errors import ConfigurationError
from redis_sentinel import MASTER_NAME, RedisSentinelSet

SENTINEL_AUTH = "sentinel_user=dbpool&sentinel_password=dbpool-secret"
WRITERS = 10
#: Writes must resume on the new master within this long of the kill.
RESUME_BOUND = 10.0


def sentinel_url(group: RedisSentinelSet, query: str = "") -> str:
    return f"{group.url()}?{SENTINEL_AUTH}" + (f"&{query}" if query else "")


def endpoint_roles(stats: dict[str, Any]) -> dict[int, str]:
    """port -> role of the pool's endpoints that are not removed."""
    return {int(e["endpoint"].split(":")[1].split("/")[0]): e["role"]
            for e in stats["endpoints"] if not e.get("removed")}


# ---- settings ------------------------------------------------------------------------

def test_url_gives_sentinel_settings() -> None:
    engine, settings, _ = pool_arguments(
        None, None, None, None, None, None,
        "redis+sentinel://app:s%40cret@s1:26380,[::1],s3/cache?db=3&sentinel_password=sp",
        {})
    assert engine == "redis"
    spec = spec_of(engine, settings)
    assert spec is not None
    assert spec.sentinels == (("s1", 26380), ("::1", 26379), ("s3", 26379))
    assert spec.service == "cache"
    assert (spec.user, spec.password) == (None, "sp")
    assert spec.endpoints([("10.0.0.5", 6380)]) == [
        {"user": "app", "password": "s@cret", "database": "3", "host": "10.0.0.5",
         "port": "6380"}]
    with pytest.raises(ConfigurationError, match="service"):
        pool_arguments(None, None, None, None, None, None, "redis+sentinel://s1:26379/", {})
    with pytest.raises(ConfigurationError, match="no host"):
        spec_of("redis", [{"sentinels": "s1", "service_name": "m", "host": "x"}])
    assert spec_of("redis", [{"host": "x"}]) is None


# ---- discovery -----------------------------------------------------------------------


def timed_create(pool: SyncDatabasePool, g: RedisSentinelSet, what: str) -> float:
    """Seconds create_pool("s") took through the Sentinels (printed)."""
    t0 = time.monotonic()
    pool.create_pool("s", url=sentinel_url(g))
    took = time.monotonic() - t0
    print(f"\ndiscovery + create_pool with {what}: {took:.3f}s")
    return took


def test_discovery_names_master_and_replicas(redis_sentinel: RedisSentinelSet) -> None:
    g = redis_sentinel
    ports = [n.port for n in g.nodes]
    g.kill_sentinel(0)  # a dead Sentinel is skipped
    pool = SyncDatabasePool()
    try:
        took = timed_create(pool, g, "one Sentinel dead")
        assert took < 3.0
        roles = endpoint_roles(pool.stats("s"))
        assert roles == {ports[0]: "primary", ports[1]: "replica", ports[2]: "replica"}
        assert pool.command("s", "SET", "disc:k", "v") == "OK"
        assert pool.command("s", "GET", "disc:k") == b"v"
        assert g.nodes[0].command("GET", "disc:k") == "v"  # written on the master
    finally:
        pool.close()


def test_discovery_bounds_a_frozen_sentinel(redis_sentinel: RedisSentinelSet) -> None:
    """A Sentinel that accepts connections but never answers (SIGSTOP) costs
    discovery its ask timeout (1 s), no more."""
    g = redis_sentinel
    g.sentinels[1].freeze()
    pool = SyncDatabasePool()
    try:
        took = timed_create(pool, g, "one Sentinel frozen")
        assert 0.9 < took < 2.5
        assert len(endpoint_roles(pool.stats("s"))) == 3
        assert pool.command("s", "SET", "frozen:k", "v") == "OK"
    finally:
        pool.close()
        g.sentinels[1].thaw()


def test_no_sentinel_answering_fails_in_bounded_time(redis_sentinel: RedisSentinelSet) -> None:
    g = redis_sentinel
    for k in range(len(g.sentinels)):
        g.kill_sentinel(k)
    pool = SyncDatabasePool()
    try:
        t0 = time.monotonic()
        with pytest.raises(Exception, match="no Sentinel"):
            pool.create_pool("s", url=sentinel_url(g))
        assert time.monotonic() - t0 < 5.0
    finally:
        pool.close()


def test_wrong_sentinel_password_is_refused(redis_sentinel: RedisSentinelSet) -> None:
    pool = SyncDatabasePool()
    try:
        url = redis_sentinel.url() + "?sentinel_user=dbpool&sentinel_password=wrong"
        with pytest.raises(Exception, match="no Sentinel") as info:
            pool.create_pool("s", url=url)
        assert "wrong" not in str(info.value)
    finally:
        pool.close()


# ---- reads from replicas ------------------------------------------------------------

def _gets(group: RedisSentinelSet, i: int) -> int:
    stats = group.nodes[i].info("commandstats").get("cmdstat_get", "calls=0")
    return int(stats.split("calls=")[1].split(",")[0])


def test_reads_go_to_replicas(redis_sentinel: RedisSentinelSet) -> None:
    g = redis_sentinel
    pool = SyncDatabasePool()
    try:
        pool.create_pool("s", url=sentinel_url(g), read_from="replicas")
        assert pool.pipeline("s", [("SET", "r:k", "v"), ("WAIT", 2, 2000)]) == ["OK", 2]
        before = [_gets(g, i) for i in range(3)]
        for _ in range(40):
            assert pool.command("s", "GET", "r:k") == b"v"
        after = [_gets(g, i) for i in range(3)]
        assert after[0] == before[0]  # none on the master
        assert after[1] > before[1] and after[2] > before[2]  # both replicas share them
        assert (after[1] - before[1]) + (after[2] - before[2]) == 40
        # readonly=False sends a read to the master all the same
        assert pool.command("s", "GET", "r:k", readonly=False) == b"v"
        assert _gets(g, 0) == before[0] + 1
    finally:
        pool.close()


# ---- failover under writers ----------------------------------------------------------

@dataclass
class Write:
    key: str
    started: float        # time.time()
    ended: float = 0.0
    ok: bool = False      # SET answered OK
    acked: bool = False   # ... and WAIT counted `wait_for` replicas (if asked)
    error: str = ""


@dataclass
class Writers:
    """WRITERS asyncio tasks writing unique keys until told to stop."""

    pool: DatabasePool
    wait_for: int  # replicas WAIT must count (0: no WAIT)
    writes: list[Write] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _one(self, w: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            rec = Write(f"fo:{w}:{i}", time.time())
            self.writes.append(rec)
            cmds: list[tuple[Any, ...]] = [("SET", rec.key, str(i))]
            if self.wait_for:
                cmds.append(("WAIT", self.wait_for, 1000))
            try:
                replies = await self.pool.pipeline("s", cmds, timeout=15)
                rec.ok = replies[0] == "OK"
                rec.acked = rec.ok and (not self.wait_for or int(replies[1]) >= self.wait_for)
            except Exception as exc:  # counted as not acknowledged
                rec.error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.05)
            rec.ended = time.time()

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._one(w)) for w in range(WRITERS)]


def _present(group: RedisSentinelSet, i: int, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for at in range(0, len(keys), 500):
        chunk = keys[at:at + 500]
        values = group.nodes[i].command("MGET", *chunk, timeout=10)
        assert isinstance(values, list)
        found.update(k for k, v in zip(chunk, values) if v is not None)
    return found


def _switch_seen(pool: DatabasePool) -> float:
    """When the pool followed Sentinel to a new master (its "sentinel" event)."""
    events = [e for e in pool.stats("s")["events"] if e["kind"] == "sentinel"]
    assert events, pool.stats("s")["events"]
    return float(events[0]["time"])


def _waiter_skipping(group: RedisSentinelSet, frozen: int) -> Any:
    """wait_new_master asking only the Sentinels that answer (the fixture's
    waits for every running one, and a frozen one runs)."""
    def wait(old_port: int, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = set()
            for k, s in enumerate(group.sentinels):
                if k != frozen and s.running:
                    master = s.command("SENTINEL", "MASTER", MASTER_NAME, timeout=1)
                    assert isinstance(master, list)
                    info = dict(zip(master[::2], master[1::2]))
                    ports.add((str(info["port"]), str(info["flags"])))
            if len(ports) == 1:
                port, flags = next(iter(ports))
                if int(port) != old_port and flags == "master":
                    return group.node_index(int(port))
            time.sleep(0.05)
        raise TimeoutError(f"no new master instead of {old_port}")
    return wait


async def _run_failover(group: RedisSentinelSet, wait_for: int, kill: bool,
                        frozen_sentinel: int | None = None) -> dict[str, Any]:
    """Writers run while the master fails over (SENTINEL FAILOVER, or a
    kill); returns what was measured."""
    old = group.master_index()
    pool = DatabasePool()
    await pool.create_pool("s", url=sentinel_url(group), failover_timeout=15)
    if frozen_sentinel is not None:  # after discovery: the watcher must cope
        group.sentinels[frozen_sentinel].freeze()
    writers = Writers(pool, wait_for)
    tasks = writers.start()
    try:
        await asyncio.sleep(1.0)
        t_fault = time.time()
        if kill:
            group.kill(old)
            waiter = group.wait_new_master if frozen_sentinel is None else \
                _waiter_skipping(group, frozen_sentinel)
            new = await asyncio.to_thread(waiter, group.nodes[old].port)
        else:
            new = await asyncio.to_thread(group.failover)
        t_switched = time.time()
        # writes go on until some were acknowledged on the new master
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            seen = [e for e in pool.stats("s")["events"] if e["kind"] == "sentinel"]
            if seen and any(w.ok and w.started > float(seen[0]["time"])
                            for w in writers.writes):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
    finally:
        writers.stop.set()
        await asyncio.gather(*tasks)
    try:
        t_seen = _switch_seen(pool)
        all_keys = [w.key for w in writers.writes if not w.error]
        on_old: set[str] = set()
        if not kill:  # the old master keeps its data until Sentinel demotes it (~9 s)
            on_old = await asyncio.to_thread(_present, group, old, all_keys)
            assert group.role(old)[0] == "master", "demoted before it could be read"
        acked = [w for w in writers.writes if w.acked]
        on_new = await asyncio.to_thread(_present, group, new, [w.key for w in acked])
        lost = [w for w in acked if w.key not in on_new]
        after_seen_on_old = [w.key for w in writers.writes
                             if w.started > t_seen and w.key in on_old]
        done = [w for w in writers.writes if w.ok and w.started >= t_fault]
        on_new_done = await asyncio.to_thread(_present, group, new, [w.key for w in done])
        # the first write that succeeded on the new master alone
        first_new = min((w.ended for w in done if w.key in on_new_done and w.key not in on_old),
                        default=float("inf"))
        result = {
            "old": old, "new": new, "writes": len(writers.writes), "acked": len(acked),
            "lost": lost, "after_seen_on_old": after_seen_on_old,
            "fault_to_switch": t_switched - t_fault, "fault_to_seen": t_seen - t_fault,
            "fault_to_first_write": first_new - t_fault,
            "errors": sorted({w.error.split(":")[0] for w in writers.writes if w.error}),
        }
        print(f"\n{'kill' if kill else 'SENTINEL FAILOVER'} WAIT {wait_for}: "
              f"{result['writes']} writes, {result['acked']} acknowledged, "
              f"{len(lost)} acknowledged lost; Sentinels switched after "
              f"{result['fault_to_switch']:.2f}s, pool followed after "
              f"{result['fault_to_seen']:.2f}s, first write on the new master after "
              f"{result['fault_to_first_write']:.2f}s; errors {result['errors']}")
        return result
    finally:
        await pool.close()


@pytest.mark.parametrize("kill", [False, True], ids=["sentinel_failover", "kill_master"])
async def test_failover_loses_no_acknowledged_write(redis_sentinel: RedisSentinelSet,
                                                    kill: bool) -> None:
    r = await _run_failover(redis_sentinel, 2, kill)
    assert r["new"] != r["old"]
    assert r["acked"] > 20
    assert [w.key for w in r["lost"]] == []
    assert r["after_seen_on_old"] == []
    assert r["fault_to_first_write"] < RESUME_BOUND


@pytest.mark.parametrize("kill", [False, True], ids=["sentinel_failover", "kill_master"])
@pytest.mark.parametrize("wait_for", [0, 1], ids=["no_wait", "wait_1"])
async def test_failover_with_fewer_acknowledgements(redis_sentinel: RedisSentinelSet,
                                                    wait_for: int, kill: bool) -> None:
    """Replication is asynchronous: without WAIT (or with WAIT 1, when the
    other replica is promoted) a write the old master acknowledged can be
    lost: how many is printed. The pool follows all the same, and no write
    reaches the old master after it did."""
    r = await _run_failover(redis_sentinel, wait_for, kill)
    assert r["new"] != r["old"]
    assert r["after_seen_on_old"] == []
    assert r["fault_to_first_write"] < RESUME_BOUND


async def test_failover_with_a_frozen_sentinel(redis_sentinel: RedisSentinelSet) -> None:
    """One Sentinel stops answering (SIGSTOP) before the master is killed:
    the others still elect a leader, and the pool follows as fast."""
    try:
        r = await _run_failover(redis_sentinel, 2, True, frozen_sentinel=0)
    finally:
        redis_sentinel.sentinels[0].thaw()
    assert r["new"] != r["old"]
    assert [w.key for w in r["lost"]] == []
    assert r["fault_to_seen"] < r["fault_to_switch"] + 1.5
    assert r["fault_to_first_write"] < RESUME_BOUND


def test_close_stops_the_watcher_promptly(redis_sentinel: RedisSentinelSet) -> None:
    pool = SyncDatabasePool()
    pool.create_pool("s", url=sentinel_url(redis_sentinel))
    watcher = pool._sentinels["s"]
    redis_sentinel.sentinels[1].freeze()  # a Sentinel that does not answer
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        pool.close()
        assert time.monotonic() - t0 < 2.0
        deadline = time.monotonic() + 1.5  # one listener may wait out its 1 s ask
        while watcher.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not watcher.alive()
        assert not [t for t in threading.enumerate() if t.name.startswith("db_pool-sentinel")]
    finally:
        redis_sentinel.sentinels[1].thaw()


def test_configuration_and_reload(redis_sentinel: RedisSentinelSet) -> None:
    """A Sentinel pool from a configuration (sentinel settings as keys), and
    a reload that changes it: the nodes are asked for again and followed by
    a new watcher."""
    g = redis_sentinel
    sentinels = ",".join(s.address for s in g.sentinels)
    table = {"engine": "redis", "sentinels": sentinels, "service_name": MASTER_NAME,
             "user": "dbpool", "password": "dbpool-secret", "sentinel_user": "dbpool",
             "sentinel_password": "dbpool-secret", "max_size": 4}
    pool = SyncDatabasePool.from_config({"pools": {"s": table}})
    try:
        first = pool._sentinels["s"]
        assert pool.command("s", "SET", "cfg:k", "1") == "OK"
        report = pool.reload({"pools": {"s": {**table, "max_size": 6}}})
        assert [c.pool for c in report.changed] == ["s"]
        assert pool._sentinels["s"] is not first
        assert not first.alive()
        assert len(endpoint_roles(pool.stats("s"))) == 3
        assert pool.command("s", "INCR", "cfg:k") == 2
        assert "dbpool-secret" not in repr(pool.stats("s"))
    finally:
        pool.close()


def test_old_master_rejoins_as_a_replica(redis_sentinel: RedisSentinelSet) -> None:
    """After SENTINEL FAILOVER the old master leaves the pool; once Sentinel
    has converted it (~9 s later) it comes back as a replica and takes
    reads, never writes."""
    g = redis_sentinel
    ports = [n.port for n in g.nodes]
    pool = SyncDatabasePool()
    try:
        pool.create_pool("s", url=sentinel_url(g), read_from="replicas")
        new = g.failover()
        roles = endpoint_roles(pool.stats("s"))
        assert ports[0] not in roles  # fenced off: still a master, not yet converted
        assert roles[ports[new]] == "primary"
        t0 = time.monotonic()
        deadline = t0 + 25
        while time.monotonic() < deadline:
            if endpoint_roles(pool.stats("s")).get(ports[0]) == "replica":
                break
            time.sleep(0.1)
        print(f"\nold master back in the pool as a replica {time.monotonic() - t0:.1f}s "
              "after the failover ended")
        assert endpoint_roles(pool.stats("s")) == {
            ports[0]: "replica", ports[new]: "primary", ports[3 - new]: "replica"}
        assert pool.command("s", "SET", "rejoin:k", "v") == "OK"
        assert g.nodes[new].command("GET", "rejoin:k") == "v"
    finally:
        pool.close()
