"""Hot reload under load on real PostgreSQL streaming replication: 20 tasks
query while the configuration changes 22 times (sizes, timeouts, a replica
removed and added back, the password rotated with ALTER ROLE ... PASSWORD).
No query may fail because of a reload, no connection may leak, and every
change must show in stats(). Nothing is mocked."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import pytest

import db_pool
from db_pool import DatabasePool, SyncDatabasePool
from pg_cluster import PgCluster

FAST = {"probe_interval": 0.1, "validate_after": 0.0}


def with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.netloc.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def config(cluster: PgCluster, password: str, replica: bool = True, **options: Any
           ) -> dict[str, Any]:
    endpoints = [with_password(cluster.dsn(0), password)]
    if replica:
        endpoints.append(with_password(cluster.dsn(1), password))
    # a lone primary takes the reads (the model refuses read_from="replicas" then)
    table = {"engine": "postgresql", "endpoints": endpoints,
             "read_from": "replicas" if replica else "primary", **FAST, **options}
    return {"pools": {"db": table}}


def server_connections(cluster: PgCluster, node: int) -> int:
    return int(cluster.sql(node, "SELECT count(*) FROM pg_stat_activity "
                                 "WHERE usename = 'dbpool_test' AND backend_type = 'client backend'"))


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def endpoint_stats(pool: DatabasePool | SyncDatabasePool, port: int) -> dict[str, Any]:
    for ep in pool.stats("db")["endpoints"]:
        if ep["endpoint"].startswith(f"127.0.0.1:{port}/"):
            return ep  # type: ignore[no-any-return]
    raise AssertionError(f"no endpoint on port {port}")


async def test_22_reloads_under_load_fail_no_query_and_leak_nothing(
    pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="db_pool")
    password = "dbpool-secret"
    pool = await DatabasePool.from_config(config(pg_cluster, password, max_size=4, min_size=2))
    await pool.execute("db", "CREATE TABLE t (i int)")
    for _ in range(100):  # the standby replays it a moment later
        try:
            await pool.query("db", "SELECT count(*) AS c FROM t", readonly=True)
            break
        except db_pool.ProgrammingError:
            await asyncio.sleep(0.05)
    failures: list[BaseException] = []
    done = 0
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        nonlocal done
        while not stop.is_set():
            try:
                if n % 4 == 0:
                    await pool.execute("db", "INSERT INTO t VALUES ($1)", [n])
                else:
                    df = await pool.query("db", "SELECT count(*) AS c FROM t", readonly=True)
                    assert df["c"][0] >= 0
                done += 1
            except BaseException as e:  # every failure is a finding
                failures.append(e)
                return

    tasks = [asyncio.create_task(worker(n)) for n in range(20)]
    primary, standby = pg_cluster.ports
    steps: list[tuple[str, Callable[[], Any]]] = []

    async def reload(what: str, cfg: dict[str, Any], check: Callable[[], bool]) -> None:
        report = await pool.reload(cfg)
        assert report, f"{what}: the reload changed nothing"
        assert password not in str(report) and password not in repr(report)
        await asyncio.sleep(0.15)  # let the workload run on the new configuration
        deadline = time.monotonic() + 5
        while not check():
            assert time.monotonic() < deadline, f"{what}: not visible in stats()"
            await asyncio.sleep(0.05)
        steps.append((what, check))

    async def rotate(new: str, **options: Any) -> None:
        # the pool is full first, so nothing connects between ALTER ROLE and the reload
        nonlocal password
        await asyncio.to_thread(
            pg_cluster.sql, 0, f"ALTER ROLE dbpool_test PASSWORD '{new}'")
        password = new
        await reload(f"rotate to {new}", config(pg_cluster, new, **options),
                     lambda: endpoint_stats(pool, primary)["size"] >= 1)

    stats = pool.stats
    for i in range(4):
        size = 3 + i
        await reload(f"max_size {size}", config(pg_cluster, password, max_size=size,
                                                min_size=size),
                     lambda s=size: stats("db")["max_size"] == s)
        await reload(f"timeouts {i}", config(pg_cluster, password, max_size=size, min_size=size,
                                             acquire_timeout=20 + i, query_timeout=30 + i),
                     lambda s=size: stats("db")["max_size"] == s)
        await reload(f"replica removed {i}",
                     config(pg_cluster, password, replica=False, max_size=size, min_size=size),
                     lambda: endpoint_stats(pool, standby)["removed"])
        await reload(f"replica back {i}", config(pg_cluster, password, max_size=size, min_size=size),
                     lambda: (not endpoint_stats(pool, standby)["removed"]
                              and endpoint_stats(pool, standby)["role"] == "replica"))
        # both endpoints full: a connection opened between ALTER ROLE and the
        # reload (the standby refilling after "replica back") would fail its login
        wait_until(lambda s=size: all(endpoint_stats(pool, port)["size"] == s
                                      for port in (primary, standby)), 10, "pool filled")
        await rotate(f"rotated-{i}", max_size=size, min_size=size)
    await reload("max_size 2", config(pg_cluster, password, max_size=2, min_size=1),
                 lambda: stats("db")["max_size"] == 2)
    await reload("max_size 4", config(pg_cluster, password, max_size=4, min_size=2),
                 lambda: stats("db")["max_size"] == 4)
    assert len(steps) == 22

    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert failures == [], f"{len(failures)} queries failed, first: {failures[0]!r}"
    assert done > 100
    # no leak: every connection the pool counts is one the servers have, and back
    s = pool.stats("db")
    assert s["in_use"] == 0 and s["waiting"] == 0
    wait_until(lambda: all(endpoint_stats(pool, p)["size"] == server_connections(pg_cluster, n)
                           for n, p in enumerate((primary, standby))), 10, "connections settled")
    # connections made with old passwords were all replaced
    assert sum(m["value"] for m in pool.metrics("db")["dbpool_connections_closed_total"]
               if m["labels"].get("reason") == "reconfigured") > 0
    reloads = [r for r in caplog.records if "configuration reloaded" in r.getMessage()]
    assert len(reloads) == 22
    assert not any("rotated-" in r.getMessage() or "dbpool-secret" in r.getMessage()
                   for r in caplog.records)
    assert any(e["kind"] == "reload" for e in pool.stats("db")["events"])
    await pool.close()
    wait_until(lambda: server_connections(pg_cluster, 0) == 0, 10, "closed")


def test_a_failed_reload_changes_nothing(pg_cluster: PgCluster) -> None:
    with SyncDatabasePool.from_config(config(pg_cluster, "dbpool-secret", max_size=3)) as pool:
        before = pool.stats("db")
        bad = config(pg_cluster, "dbpool-secret", max_size=2)
        bad["pools"]["db"]["max_szie"] = 5
        with pytest.raises(db_pool.ConfigurationError, match="did you mean"):
            pool.reload(bad)
        # a new pool that cannot open undoes the change made to the others
        broken = config(pg_cluster, "dbpool-secret", max_size=2)
        broken["pools"]["other"] = {"url": with_password(pg_cluster.dsn(0), "wrong"),
                                    "connect_timeout": 5}
        with pytest.raises(db_pool.AuthenticationError):
            pool.reload(broken)
        assert pool.list_pools() == ["db"]
        assert pool.stats("db")["max_size"] == before["max_size"] == 3
        assert pool.query("db", "SELECT 1 AS one")["one"][0] == 1


def test_removed_pool_drains_running_statements(pg_cluster: PgCluster) -> None:
    cfg = config(pg_cluster, "dbpool-secret")
    cfg["pools"]["other"] = {"url": pg_cluster.dsn(0)}
    with SyncDatabasePool.from_config(cfg) as pool:
        report = pool.reload(config(pg_cluster, "dbpool-secret"), timeout=5)
        assert report.removed == ("other",)
        assert pool.list_pools() == ["db"]
        with pytest.raises(db_pool.PoolClosed):
            pool.query("other", "SELECT 1")
