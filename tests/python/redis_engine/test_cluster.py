"""Redis Cluster pools (redis+cluster://, docs/redis.md "Cluster") against a
real 3-master cluster (tests/redis_cluster.py): every command lands on the
master of its key's slot (checked with a raw client on that node),
multi-key commands are split per slot and merged, a transaction across
slots is refused before anything is sent, MOVED and ASK are followed
during a resharding, a tabular scan during a resharding neither misses nor
repeats a key, and write_frame puts each row on its key's node.

Tests that only route share one cluster (module scope); tests that move
slots take a fresh one (the ``redis_cluster`` fixture)."""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterator

import polars as pl
import pytest

import db_pool
from db_pool import _redis
from db_pool.errors import ProgrammingError
from redis_cluster import RedisCluster
from redis_resp import RespError

KEYS = [f"k:{i}" for i in range(40)]


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[RedisCluster]:
    cluster = RedisCluster.create(3)
    yield cluster
    cluster.cleanup()


def make_pool(cluster: RedisCluster, **kwargs: Any) -> db_pool.SyncDatabasePool:
    pool = db_pool.SyncDatabasePool()
    pool.create_pool("c", url=cluster.url(), **kwargs)
    return pool


@pytest.fixture
def shared(shared_cluster: RedisCluster) -> Iterator[tuple[RedisCluster, db_pool.SyncDatabasePool, str]]:
    """(the shared cluster, a pool on it, a fresh key prefix)."""
    pool = make_pool(shared_cluster)
    yield shared_cluster, pool, f"t{uuid.uuid4().hex[:8]}:"
    pool.close()


def owner_map(cluster: RedisCluster, keys: list[str]) -> dict[str, int]:
    slots = cluster.slot_map()
    return {k: slots[cluster.keyslot(k)] for k in keys}


# ---- settings ---------------------------------------------------------------------------


def test_cluster_url_settings() -> None:
    settings = _redis.url_settings("redis+cluster", "u:p%40ss", "h1:7000,[::1]:7001,h3", "", {})
    assert settings == {"user": "u", "password": "p@ss", "host": "h1:7000,[::1]:7001,h3",
                        "cluster": "1"}
    with pytest.raises(db_pool.errors.ConfigurationError, match="only database 0"):
        _redis.url_settings("redis+cluster", None, "h1:7000", "/2", {})
    with pytest.raises(db_pool.errors.ConfigurationError, match="cluster"):
        p = db_pool.SyncDatabasePool()
        try:
            p.create_pool("x", url="redis://h1:7000,h2:7001")
        finally:
            p.close()


def test_cluster_setting_with_seed_hosts(shared_cluster: RedisCluster) -> None:
    """cluster=1 with several seeds (the first one down) instead of the URL."""
    node = shared_cluster.nodes[0]
    hosts = ",".join(["127.0.0.1:1"] + [n.address for n in shared_cluster.nodes[1:]])
    pool = db_pool.SyncDatabasePool()
    try:
        pool.create_pool("c", db_type="redis", host=hosts, cluster=True, user=node.user,
                         password=node.password)
        assert pool.command("c", "SET", "seeded", "1") == "OK"
        assert shared_cluster.command(shared_cluster.node_for_key("seeded"), "GET", "seeded") == "1"
    finally:
        pool.close()


# ---- routing ----------------------------------------------------------------------------


def reset_error_stats(cluster: RedisCluster) -> None:
    for i in range(3):
        cluster.command(i, "CONFIG", "RESETSTAT")


def redirects(cluster: RedisCluster) -> dict[int, str]:
    """The MOVED / ASK errors each master answered since reset_error_stats
    (INFO errorstats): a pool that computes slots right causes none."""
    found = {}
    for i in range(3):
        text = cluster.command(i, "INFO", "errorstats")
        assert isinstance(text, str)
        lines = [line for line in text.splitlines() if line.startswith(("errorstat_MOVED",
                                                                        "errorstat_ASK"))]
        if lines:
            found[i] = " ".join(lines)
    return found


def test_commands_and_pipelines_land_on_the_key_nodes(shared: Any) -> None:
    cluster, pool, pre = shared
    reset_error_stats(cluster)
    keys = [pre + k for k in KEYS]
    owners = owner_map(cluster, keys)
    assert set(owners.values()) == {0, 1, 2}
    for k in keys[:10]:
        assert pool.command("c", "SET", k, k.upper()) == "OK"
    replies = pool.pipeline("c", [("SET", k, k.upper()) for k in keys[10:]]
                            + [("GET", k) for k in keys] + [("INCR", pre + "n")] * 3)
    assert replies[:30] == ["OK"] * 30
    assert replies[30:70] == [k.upper().encode() for k in keys]
    assert replies[70:] == [1, 2, 3]
    pool.pipeline("c", [("SET", f"{pre}{{tag{i}}}:x", i) for i in range(30)])
    assert redirects(cluster) == {}  # every command went straight to its key's master
    for k in keys:  # each value is on the master of its slot (the others redirect)
        assert cluster.command(owners[k], "GET", k) == k.upper()
        with pytest.raises(RespError, match="MOVED"):
            cluster.command((owners[k] + 1) % 3, "GET", k)
    assert pool.command("c", "HSET", pre + "h", "f", "v") == 1
    assert cluster.command(cluster.node_for_key(pre + "h"), "HGET", pre + "h", "f") == "v"
    script = "return redis.call('SET', KEYS[1], ARGV[1])"  # the key follows the key count
    for k in keys[:6]:
        assert pool.command("c", "EVAL", script, 1, k, "ev") == "OK"
        pool.execute("c", f"APPEND {k} x")  # execute(): the key is the second word
        assert cluster.command(owners[k], "GET", k) == "evx"
    assert pool.command("c", "EVAL", "return 7", 0) == 7
    assert pool.command("c", "PING") == "PONG"  # no key: any master
    assert isinstance(pool.command("c", "DBSIZE"), int)


def test_multi_key_commands_split_per_slot(shared: Any) -> None:
    cluster, pool, pre = shared
    reset_error_stats(cluster)
    keys = [pre + k for k in KEYS[:12]]
    assert len({cluster.keyslot(k) for k in keys}) == 12
    assert pool.command("c", "MSET", *[x for k in keys for x in (k, k[-2:])]) == "OK"
    owners = owner_map(cluster, keys)
    for k in keys:
        assert cluster.command(owners[k], "GET", k) == k[-2:]
    asked = [keys[5], pre + "missing", keys[0], keys[11], keys[5]]
    assert pool.command("c", "MGET", *asked) == [keys[5][-2:].encode(), None,
                                                 keys[0][-2:].encode(),
                                                 keys[11][-2:].encode(), keys[5][-2:].encode()]
    assert pool.command("c", "EXISTS", *keys, keys[0], pre + "missing") == 13
    assert pool.command("c", "DEL", *keys[:6], pre + "missing") == 6
    assert pool.command("c", "UNLINK", *keys) == 6
    for k in keys:
        assert cluster.command(owners[k], "EXISTS", k) == 0
    # in a pipeline, next to other commands
    replies = pool.pipeline("c", [("MSET", keys[0], "a", keys[1], "b"), ("GET", keys[1]),
                                  ("MGET", keys[1], keys[0]), ("DEL", keys[0], keys[1])])
    assert replies == ["OK", b"b", [b"b", b"a"], 2]
    assert redirects(cluster) == {}
    # a key that is not a string is nil for MGET, as on one server
    pool.command("c", "HSET", keys[2], "f", "v")
    pool.command("c", "SET", keys[3], "s")
    assert pool.command("c", "MGET", keys[3], keys[2], keys[4]) == [b"s", None, None]


def test_transactions_keep_to_one_slot(shared: Any) -> None:
    cluster, pool, pre = shared
    a, b = pre + "{tx}a", pre + "{tx}b"
    assert pool.pipeline("c", [("SET", a, 1), ("INCR", a), ("MSET", b, 5, a, 7), ("MGET", a, b)],
                         transaction=True) == ["OK", 2, "OK", [b"7", b"5"]]
    assert cluster.command(cluster.node_for_key(a), "GET", b) == "5"
    x, y = pre + "x1", pre + "y2"
    assert cluster.keyslot(x) != cluster.keyslot(y)
    with pytest.raises(ProgrammingError, match="CROSSSLOT"):
        pool.pipeline("c", [("SET", x, 1), ("SET", y, 2)], transaction=True)
    with pytest.raises(ProgrammingError, match="CROSSSLOT"):
        pool.pipeline("c", [("MGET", x, y)], transaction=True)
    for k in (x, y):  # nothing was sent
        assert cluster.command(cluster.node_for_key(k), "EXISTS", k) == 0
    assert pool.pipeline("c", [("PING",), ("SET", x, 3)], transaction=True) == ["PONG", "OK"]


def test_write_frame_and_scans_across_nodes(shared: Any) -> None:
    cluster, pool, pre = shared
    n = 300
    frame = pl.DataFrame({"id": range(n), "name": [f"n{i}" for i in range(n)],
                          "age": [i if i % 7 else None for i in range(n)]})
    assert pool.write_frame("c", frame, key_column="id", prefix=pre + "u:") == n
    owners = owner_map(cluster, [f"{pre}u:{i}" for i in range(n)])
    assert set(owners.values()) == {0, 1, 2}
    for i in range(0, n, 17):
        k = f"{pre}u:{i}"
        stored = cluster.command(owners[k], "HGETALL", k)
        assert stored == (["name", f"n{i}", "age", str(i)] if i % 7 else ["name", f"n{i}"])
    assert pool.write_frame("c", frame.select("id", "name"), key_column="id", kind="string",
                            prefix=pre + "s:", ttl=600) == n
    k = f"{pre}s:5"
    assert cluster.command(cluster.node_for_key(k), "GET", k) == "n5"
    assert 0 < cluster.command(cluster.node_for_key(k), "TTL", k) <= 600

    got = pool.query("c", "HGETALL", pattern=pre + "u:*",
                     schema={"name": pl.Utf8, "age": pl.Int64}, scan_count=40)
    assert got.height == n and got["_key"].n_unique() == n
    expect = frame.with_columns(pl.format(pre + "u:{}", "id").alias("_key"))
    assert got.join(expect, on="_key").filter(
        (pl.col("name") != pl.col("name_right")) |
        (pl.col("age").ne_missing(pl.col("age_right")))).height == 0
    strings = pool.query("c", "MGET", pattern=pre + "s:*", scan_count=40)
    assert sorted(strings["_key"].to_list()) == sorted(f"{pre}s:{i}" for i in range(n))
    assert set(strings["value"].to_list()) == {f"n{i}" for i in range(n)}
    batches = list(pool.stream("c", "HMGET", pattern=pre + "u:*", schema={"age": pl.Int64},
                               batch_rows=50, scan_count=20))
    assert len(batches) > 1 and sum(b.height for b in batches) == n


# ---- resharding -------------------------------------------------------------------------


def tagged_keys(cluster: RedisCluster, owner: int, pre: str, n: int) -> tuple[int, list[str]]:
    """n keys sharing one {hash tag} whose slot `owner` serves: (slot, keys)."""
    slots = cluster.slot_map()
    for t in range(1000):
        tag = f"{pre}{t}"
        slot = cluster.keyslot("{" + tag + "}")
        if slots[slot] == owner:
            return slot, [f"{{{tag}}}:{i}" for i in range(n)]
    raise AssertionError("no tag found")


def _asks(cluster: RedisCluster, node: int, key: str) -> bool:
    try:
        cluster.command(node, "GET", key)
    except RespError as exc:
        assert str(exc).startswith("ASK"), exc
        return True
    return False


def test_moved_is_followed_after_a_slot_moves(redis_cluster: RedisCluster) -> None:
    pool = make_pool(redis_cluster)
    try:
        slot, keys = tagged_keys(redis_cluster, 1, "m", 20)
        other = [f"o:{i}" for i in range(20)]
        pool.pipeline("c", [("SET", k, i) for i, k in enumerate(keys + other)])
        assert redis_cluster.migrate_slot(slot, 1, 2) == 20
        # the pool's table still names node 1: MOVED, then node 2
        assert pool.command("c", "GET", keys[3]) == b"3"
        assert pool.pipeline("c", [("INCR", k) for k in keys] + [("GET", k) for k in other]) == \
            list(range(1, 21)) + [str(i).encode() for i in range(20, 40)]
        assert redis_cluster.command(2, "GET", keys[0]) == "1"
        assert pool.command("c", "MGET", keys[0], other[0], keys[1]) == [b"1", b"20", b"2"]
        assert pool.pipeline("c", [("SET", keys[0], "tx"), ("GET", keys[0])],
                             transaction=True) == ["OK", b"tx"]
        # every pooled connection learns it, and moving it back works too
        redis_cluster.migrate_slot(slot, 2, 0)
        assert pool.pipeline("c", [("GET", keys[1])], transaction=True) == [b"2"]
        assert pool.command("c", "DEL", *keys) == 20
        assert redis_cluster.command(0, "DBSIZE") == sum(
            1 for k in other if redis_cluster.node_for_key(k) == 0)
        # write_frame and a tabular read of the slot, each after it moved again
        prefix = keys[0].split(":")[0] + ":w:"
        redis_cluster.migrate_slot(slot, 0, 1)
        frame = pl.DataFrame({"id": range(50), "v": [f"v{i}" for i in range(50)]})
        assert pool.write_frame("c", frame, key_column="id", prefix=prefix) == 50
        assert redis_cluster.command(1, "HGET", prefix + "49", "v") == "v49"
        redis_cluster.migrate_slot(slot, 1, 2)
        got = pool.query("c", "HGETALL", pattern=prefix + "*", schema={"v": pl.Utf8})
        assert sorted(got["v"].to_list()) == sorted(frame["v"].to_list())
    finally:
        pool.close()


def test_ask_is_followed_during_a_migration(redis_cluster: RedisCluster) -> None:
    pool = make_pool(redis_cluster)
    try:
        slot, keys = tagged_keys(redis_cluster, 0, "a", 10)
        pool.pipeline("c", [("SET", k, i) for i, k in enumerate(keys)])
        redis_cluster.begin_migration(slot, 0, 1)
        assert redis_cluster.move_keys(slot, 0, 1, limit=4) == 4
        assert sum(_asks(redis_cluster, 0, k) for k in keys) == 4  # what the pool meets
        # node 0 still owns the slot: the moved keys answer ASK there
        assert pool.pipeline("c", [("GET", k) for k in keys]) == \
            [str(i).encode() for i in range(10)]
        # keys of one slot split between the nodes: Redis answers TRYAGAIN, retried a
        # few times (bounded), then the error (documented)
        with pytest.raises(db_pool.errors.ResponseError, match="TRYAGAIN"):
            pool.command("c", "MGET", *keys)
        still = [k for k in keys if not _asks(redis_cluster, 0, k)]
        assert pool.command("c", "MGET", *still) == [k.split(":")[-1].encode() for k in still]
        # a new key of the migrating slot goes to the importing node
        fresh = keys[0].split(":")[0] + ":new"
        assert pool.command("c", "SET", fresh, "x") == "OK"
        redis_cluster.move_keys(slot, 0, 1)
        redis_cluster.finish_migration(slot, 1)
        assert redis_cluster.command(1, "GET", fresh) == "x"
        assert redis_cluster.command(1, "MGET", *keys) == [str(i) for i in range(10)]
    finally:
        pool.close()


def test_scan_during_resharding_misses_and_repeats_no_key(redis_cluster: RedisCluster) -> None:
    """Masters are scanned in seed order (node 0 first). A slot of node 2 is
    moved to node 0 once node 0 has been scanned, half its keys during
    the scan of node 1 and the rest after: a single pass would miss them."""
    pool = make_pool(redis_cluster)
    try:
        slot, tagged = tagged_keys(redis_cluster, 2, "r", 60)
        plain = [f"p:{i}" for i in range(240)]
        written = set(tagged + plain)
        pool.pipeline("c", [("HSET", k, "v", k) for k in sorted(written)])
        owners = owner_map(redis_cluster, sorted(written))
        on_node0 = {k for k, o in owners.items() if o == 0}
        seen: list[str] = []
        state = "scanning node 0"
        for batch in pool.stream("c", "HGETALL", pattern="*", schema={"v": pl.Utf8},
                                 batch_rows=20, scan_count=10):
            assert batch["_key"].to_list() == batch["v"].to_list()
            seen += batch["_key"].to_list()
            if state == "scanning node 0" and on_node0 <= set(seen):
                redis_cluster.begin_migration(slot, 2, 0)
                redis_cluster.move_keys(slot, 2, 0, limit=30)
                state = "migrating"
            elif state == "migrating" and len(seen) > 160:
                redis_cluster.move_keys(slot, 2, 0)
                redis_cluster.finish_migration(slot, 0)
                state = "moved"
        assert state == "moved"
        assert len(seen) == len(set(seen)), "a key came twice"
        assert set(seen) == written, f"missed {len(written - set(seen))} keys"
        assert redis_cluster.slot_owner(slot) == 0
    finally:
        pool.close()


def test_a_frozen_node_bounds_the_call_by_its_deadline(redis_cluster: RedisCluster) -> None:
    """The deadline holds on every node's socket: a frozen master ends the
    call in time (its connection is dropped), the other masters still serve,
    and after the thaw the pool works again."""
    pool = make_pool(redis_cluster)
    try:
        keys = {redis_cluster.node_for_key(f"f:{i}"): f"f:{i}" for i in range(30)}
        assert sorted(keys) == [0, 1, 2]
        pool.pipeline("c", [("SET", k, k) for k in keys.values()])
        redis_cluster.freeze(1)
        try:
            t0 = time.monotonic()
            with pytest.raises(db_pool.errors.QueryTimeout):
                pool.pipeline("c", [("GET", keys[0]), ("GET", keys[1]), ("GET", keys[2])],
                              timeout=0.5)
            assert time.monotonic() - t0 < 2
            assert pool.command("c", "GET", keys[2], timeout=2) == keys[2].encode()
        finally:
            redis_cluster.thaw(1)
        assert pool.pipeline("c", [("GET", k) for k in keys.values()], timeout=5) == \
            [k.encode() for k in keys.values()]
    finally:
        pool.close()


def test_clusterdown_is_retried_a_bounded_time(redis_cluster: RedisCluster) -> None:
    """A master without replica dies: the others answer CLUSTERDOWN once
    they mark the cluster failed. The pool retries after short sleeps, a
    bounded number of times, then returns that error."""
    pool = make_pool(redis_cluster)
    try:
        key = next(f"d:{i}" for i in range(100) if redis_cluster.node_for_key(f"d:{i}") == 0)
        assert pool.command("c", "SET", key, 1) == "OK"
        redis_cluster.kill(2)
        deadline = time.monotonic() + 15
        while "cluster_state:fail" not in str(redis_cluster.command(0, "CLUSTER", "INFO")):
            assert time.monotonic() < deadline, "the cluster never noticed the dead master"
            time.sleep(0.1)
        t0 = time.monotonic()
        with pytest.raises(db_pool.errors.ResponseError, match="CLUSTERDOWN"):
            pool.command("c", "GET", key, timeout=5)
        assert 0.25 < time.monotonic() - t0 < 2  # 10 + 20 + 40 + 80 + 160 ms of sleeps
        t0 = time.monotonic()
        with pytest.raises(db_pool.errors.ResponseError, match="CLUSTERDOWN"):
            pool.command("c", "GET", key, timeout=0.1)  # no sleep past the deadline
        assert time.monotonic() - t0 < 0.1
        assert pool.command("c", "PING") == "PONG"  # and the connection is in step
    finally:
        pool.close()
