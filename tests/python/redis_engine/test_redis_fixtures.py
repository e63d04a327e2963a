"""The Redis fixtures themselves, checked with redis-py (not db_pool): the
server wants AUTH (ACL user and default user) and answers NOAUTH without
it, keeps the password off command lines, can be frozen, thawed, killed
and restarted; TLS with the test CA; replication acknowledged by WAIT; a
Sentinel failover (forced, and after killing the master) elects a new
master that takes writes and has every WAIT-acknowledged write; the
cluster routes keys (MOVED from a wrong node) and ``migrate_slot`` moves a
slot with its keys (ASK during, MOVED after, seen by a raw client)."""

from __future__ import annotations

import os
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import redis
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_cluster import RedisCluster
from redis_sentinel import MASTER_NAME, RedisSentinelSet
from redis_server import PASSWORD, RedisServer

TESTS_DIR = Path(__file__).resolve().parents[2]


def client(server: RedisServer, **kwargs: Any) -> redis.Redis:
    """A redis-py client of `server` as its user, with bounded waits and no
    retries (redis-py 8 retries timeouts 3 times by default)."""
    options: dict[str, Any] = {"retry": Retry(NoBackoff(), 0), "host": server.host, "port": server.port, "db": server.database,
                               "username": server.user or None, "password": server.password or None,
                               "socket_timeout": 5, "socket_connect_timeout": 5}
    return redis.Redis(**{**options, **kwargs})


def poll(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> float:
    """Calls predicate() until it is true; the seconds it took. Fails after `timeout`."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"{what}: not within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - t0


# ---- one server -------------------------------------------------------------------------


def test_auth_is_required_and_works(redis_server: RedisServer, redis_prefix: str) -> None:
    if not redis_server.password:
        pytest.skip("the external server has no password")
    with client(redis_server) as r:
        assert r.acl_whoami() == redis_server.user
        assert r.set(redis_prefix + "k", b"v\x00w") and r.get(redis_prefix + "k") == b"v\x00w"
    with redis.from_url(redis_server.url, socket_timeout=5) as r:
        assert r.get(redis_prefix + "k") == b"v\x00w"
    with client(redis_server, username=None, password=None, protocol=2) as r:
        with pytest.raises(redis.exceptions.AuthenticationError, match="Authentication required"):  # -NOAUTH
            r.get(redis_prefix + "k")
    with client(redis_server, password="wrong") as r:
        with pytest.raises(redis.exceptions.AuthenticationError):
            r.ping()
    if not redis_server.external:  # our config: the default user has the same password
        with client(redis_server, username=None) as r:
            assert r.acl_whoami() == "default"


def test_password_stays_off_command_lines(redis_server: RedisServer) -> None:
    assert redis_server.cli("ACL", "WHOAMI").strip() == (redis_server.user or "default")
    with pytest.raises(ValueError, match="command line"):
        redis_server.cli("AUTH", redis_server.password or PASSWORD)
    assert PASSWORD not in repr(redis_server)
    if not redis_server.external:
        assert redis_server.pid is not None
        cmdline = Path(f"/proc/{redis_server.pid}/cmdline").read_bytes()
        assert PASSWORD.encode() not in cmdline
        assert (redis_server.config_file.stat().st_mode & 0o077) == 0


def test_unix_socket_and_no_persistence(redis_private_server: RedisServer, redis_prefix: str) -> None:
    srv = redis_private_server
    with redis.Redis(unix_socket_path=str(srv.socket_path), username=srv.user,
                     password=srv.password, socket_timeout=5) as r:
        r.set(redis_prefix + "gone", 1)
    srv.restart()
    with client(srv) as r:
        assert r.get(redis_prefix + "gone") is None  # save "" + appendonly no
    assert list(srv.data_dir.iterdir()) == []


def test_persistence_keeps_data_over_restart(redis_server_factory: Callable[..., RedisServer]) -> None:
    srv = redis_server_factory(persistence=True)
    with client(srv) as r:
        r.set("kept", "yes")
    srv.restart()
    with redis.from_url(srv.unix_url, socket_timeout=5) as r:
        assert r.get("kept") == b"yes" and r.acl_whoami() == "dbpool"


def test_factory_servers_take_extra_config(redis_server_factory: Callable[..., RedisServer]) -> None:
    srv = redis_server_factory(auth=False, extra_conf="maxmemory 1mb\nmaxmemory-policy noeviction")
    assert srv.url == f"redis://127.0.0.1:{srv.port}/0"
    with redis.from_url(srv.url, socket_timeout=5) as r:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            for n in range(100):
                r.set(f"big{n}", b"x" * 100_000)


def test_freeze_thaw_kill_restart(redis_private_server: RedisServer) -> None:
    srv = redis_private_server
    with client(srv, socket_timeout=0.5) as r:
        r.ping()
        srv.freeze()
        t0 = time.monotonic()
        with pytest.raises(redis.exceptions.TimeoutError):
            r.ping()
        assert time.monotonic() - t0 < 2
        srv.thaw()
        assert r.ping()
        srv.kill()
        with pytest.raises(redis.exceptions.ConnectionError):
            r.ping()
        srv.start()
        assert r.ping()  # redis-py reconnects on the same port


def test_sigterm_removes_private_servers() -> None:
    """A process that made a server and gets SIGTERM (no handler of its own,
    like a killed test run) takes it with it."""
    script = ("import sys, time; sys.path.insert(0, sys.argv[1]);"
              "from redis_server import RedisServer; s = RedisServer.start_private();"
              "print(s.pid, s.root, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script, str(TESTS_DIR)],
                            stdout=subprocess.PIPE, text=True)
    pid, root = 0, ""
    try:
        assert proc.stdout is not None
        assert select.select([proc.stdout], [], [], 30)[0], "the child printed nothing in 30 s"
        pid_text, root = proc.stdout.readline().split()
        pid = int(pid_text)
        assert Path(root).is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == -signal.SIGTERM
        poll(lambda: not Path(f"/proc/{pid}").exists(), 5, "redis-server killed")
        assert not Path(root).exists()
    finally:
        proc.kill()
        proc.wait(10)
        if pid and Path(f"/proc/{pid}").exists():  # the handler failed: do not leak the server
            os.kill(pid, signal.SIGKILL)
        if root.startswith(tempfile.gettempdir()):
            shutil.rmtree(root, ignore_errors=True)


def test_tls(redis_tls_server: RedisServer) -> None:
    srv = redis_tls_server
    assert srv.certs is not None and srv.tls_port is not None
    common: dict[str, Any] = {"retry": Retry(NoBackoff(), 0), "host": srv.host, "port": srv.tls_port, "username": srv.user, "password": srv.password,
              "socket_timeout": 5, "socket_connect_timeout": 5, "ssl": True}
    with redis.Redis(**common, ssl_ca_certs=str(srv.certs.ca_cert)) as r:
        assert r.acl_whoami() == srv.user
    with redis.Redis(**common, ssl_ca_certs=str(srv.certs.ca_cert), ssl_certfile=str(srv.certs.client_cert),
                     ssl_keyfile=str(srv.certs.client_key), ssl_password=srv.certs.key_password) as r:
        assert r.ping()
    with redis.Redis(**common, ssl_ca_certs=str(srv.certs.other_ca_cert)) as r:
        with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
            r.ping()
    with client(srv, port=srv.tls_port, socket_timeout=2) as r:
        with pytest.raises(redis.exceptions.ConnectionError):
            r.ping()  # plain RESP on the TLS port
    assert srv.cli("PING", tls=True).strip() == "PONG"
    assert srv.tls_url == f"rediss://dbpool:{PASSWORD}@127.0.0.1:{srv.tls_port}/0"
    with srv.connect(tls=True) as conn:
        assert isinstance(conn._sock, ssl.SSLSocket)


# ---- Sentinel ---------------------------------------------------------------------------


def sentinel_client(group: RedisSentinelSet) -> redis.sentinel.Sentinel:
    node = group.nodes[0]
    auth: dict[str, Any] = {"username": node.user, "password": node.password}
    return redis.sentinel.Sentinel(group.sentinel_addresses, sentinel_kwargs={**auth, "socket_timeout": 2},
                                   socket_timeout=10, **auth)  # above WAIT 5000 below


def test_sentinel_set_replicates_with_wait(redis_sentinel: RedisSentinelSet) -> None:
    group = redis_sentinel
    hosts = ",".join(f"127.0.0.1:{s.port}" for s in group.sentinels)
    assert group.url() == f"redis+sentinel://dbpool:{PASSWORD}@{hosts}/{MASTER_NAME}"
    assert group.master_index() == 0
    master = sentinel_client(group).master_for(MASTER_NAME)
    assert master.set("k", "v") and master.execute_command("WAIT", 2, 2000) == 2
    for i in (1, 2):
        with client(group.nodes[i]) as replica:
            assert replica.get("k") == b"v"
            with pytest.raises(redis.exceptions.ReadOnlyError):
                replica.set("k", "w")
    assert sentinel_client(group).discover_master(MASTER_NAME) == ("127.0.0.1", group.nodes[0].port)


def assert_all_sentinels_switched(group: RedisSentinelSet, new: int) -> None:
    """Every running Sentinel has switched to node `new` (+switch-master
    done, not just the promoted replica named while the failover runs)."""
    for sentinel in group.sentinels:
        if sentinel.running:
            with client(sentinel) as r:
                state = r.sentinel_master(MASTER_NAME)
                assert (state["port"], state["flags"]) == (group.nodes[new].port, "master")


def write_acknowledged(r: redis.Redis, keys: range, replicas: int) -> None:
    """SET each key, then WAIT until `replicas` replicas have them."""
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.set(f"k{k}", k)
    pipe.execute()
    assert r.execute_command("WAIT", replicas, 5000) == replicas


def test_sentinel_failover_elects_a_new_master(redis_sentinel: RedisSentinelSet) -> None:
    group = redis_sentinel
    with client(group.nodes[0]) as r:
        write_acknowledged(r, range(100), 2)
    t0 = time.monotonic()
    new = group.failover()
    took = time.monotonic() - t0
    assert new in (1, 2) and group.master_index() == new and took < 10, took
    assert_all_sentinels_switched(group, new)
    assert sentinel_client(group).discover_master(MASTER_NAME)[1] == group.nodes[new].port
    with client(group.nodes[new]) as r:
        assert [int(v) for v in r.mget([f"k{k}" for k in range(100)])] == list(range(100))
        r.set("after", "failover")
        assert r.execute_command("WAIT", 1, 5000) == 1  # the other replica follows
    # Sentinel demotes the old master (still alive) ~9 s after the switch
    group.wait_replicating(new, 20, [0])
    assert group.role(0)[:3] == ["slave", "127.0.0.1", group.nodes[new].port]
    with client(group.nodes[0]) as old:
        poll(lambda: old.get("after") == b"failover", 5, "old master has the new write")


def test_killing_the_master_fails_over_quickly(redis_sentinel: RedisSentinelSet) -> None:
    group = redis_sentinel
    with client(group.nodes[0]) as r:
        write_acknowledged(r, range(50), 2)
    old_port = group.nodes[0].port
    t0 = time.monotonic()
    group.kill(0)
    new = group.wait_new_master(old_port, timeout=20)
    took = time.monotonic() - t0
    assert_all_sentinels_switched(group, new)
    assert took < 10, f"failover after a kill took {took:.1f}s"  # measured 4.1-4.3 s
    master = sentinel_client(group).master_for(MASTER_NAME)
    assert master.set("after", "kill") and master.execute_command("WAIT", 1, 5000) == 1
    assert [int(v) for v in master.mget([f"k{k}" for k in range(50)])] == list(range(50))
    group.wait_ready(10)  # the other replica follows; the dead node is just down
    assert group.master_index() == new


# ---- Cluster ----------------------------------------------------------------------------


def test_cluster_routes_keys(redis_cluster: RedisCluster) -> None:
    cluster = redis_cluster
    assert cluster.url() == "redis+cluster://dbpool:" + PASSWORD + "@" + ",".join(
        f"127.0.0.1:{p}" for p in cluster.ports)
    slots = cluster.slot_map()
    assert len(slots) == 16384 and set(slots.values()) == {0, 1, 2}
    rc = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port, username="dbpool",
                                    password=PASSWORD, socket_timeout=5)
    try:
        for k in range(60):
            rc.set(f"key{k}", k)
        for k in range(60):
            owner = cluster.node_for_key(f"key{k}")
            with client(cluster.nodes[owner]) as raw:
                assert raw.get(f"key{k}") == str(k).encode()
            wrong = (owner + 1) % 3
            with client(cluster.nodes[wrong]) as raw:
                with pytest.raises(redis.exceptions.MovedError,  # -MOVED slot host:port
                                   match=f"{cluster.keyslot(f'key{k}')} 127.0.0.1:"
                                         f"{cluster.nodes[owner].port}"):
                    raw.get(f"key{k}")
    finally:
        rc.close()


def test_migrate_slot_moves_keys_with_ask_then_moved(redis_cluster: RedisCluster) -> None:
    cluster = redis_cluster
    keys = [f"{{user7}}:{n}" for n in range(10)]  # one hash tag: one slot
    slot = cluster.keyslot(keys[0])
    src = cluster.node_for_key(keys[0])
    dst = (src + 1) % 3
    rc = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.nodes[dst].port, username="dbpool",
                                    password=PASSWORD, socket_timeout=5)
    try:
        for n, key in enumerate(keys):
            rc.set(key, n)
        cluster.begin_migration(slot, src, dst)
        assert cluster.move_keys(slot, src, dst, batch=2, limit=4) == 4
        with client(cluster.nodes[src]) as raw_src, client(cluster.nodes[dst]) as raw_dst:
            assert cluster.command(src, "CLUSTER", "COUNTKEYSINSLOT", slot) == 6
            assert cluster.command(dst, "CLUSTER", "COUNTKEYSINSLOT", slot) == 4
            on_src = {str(k) for k in cluster.command(src, "CLUSTER", "GETKEYSINSLOT", slot, 100)}  # type: ignore[union-attr]
            gone = sorted(set(keys) - on_src)
            with pytest.raises(redis.exceptions.AskError,  # -ASK slot host:port
                               match=f"{slot} 127.0.0.1:{cluster.nodes[dst].port}"):
                raw_src.get(gone[0])
            assert raw_src.get(sorted(on_src)[0]) is not None  # not moved yet: served by src
            with pytest.raises(redis.exceptions.MovedError,
                               match=f"{slot} 127.0.0.1:{cluster.nodes[src].port}"):
                raw_dst.get(gone[0])  # without ASKING the importing node redirects back
            pipe = raw_dst.pipeline(transaction=False)
            pipe.execute_command("ASKING")
            pipe.get(gone[0])
            assert pipe.execute()[1] == str(keys.index(gone[0])).encode()
        assert [int(rc.get(k) or -1) for k in keys] == list(range(10))  # redis-py follows ASK
        assert cluster.move_keys(slot, src, dst) == 6
        cluster.finish_migration(slot, dst)
        assert cluster.slot_owner(slot) == dst and cluster.node_for_key(keys[0]) == dst
        with client(cluster.nodes[src]) as raw_src:
            with pytest.raises(redis.exceptions.MovedError,
                               match=f"{slot} 127.0.0.1:{cluster.nodes[dst].port}"):
                raw_src.get(keys[0])
        assert cluster.command(dst, "CLUSTER", "COUNTKEYSINSLOT", slot) == 10
        assert [int(rc.get(k) or -1) for k in keys] == list(range(10))
        cluster.wait_ready(10)
    finally:
        rc.close()


def test_migrate_slot_in_one_call(redis_cluster: RedisCluster) -> None:
    cluster = redis_cluster
    slot = cluster.keyslot("solo")
    src = cluster.node_for_key("solo")
    cluster.command(src, "SET", "solo", "x")
    dst = (src + 2) % 3
    with pytest.raises(ValueError, match="owned by node"):
        cluster.migrate_slot(slot, dst, src)
    assert cluster.migrate_slot(slot, src, dst) == 1
    assert cluster.node_for_key("solo") == dst and cluster.command(dst, "GET", "solo") == "x"
