"""Multi-endpoint pools on real PostgreSQL streaming replication: routing,
failover after the primary dies and a standby is promoted, banned and
readmitted replicas, all endpoints down, and read retries. Every scenario
kills, stops or promotes real servers; nothing is mocked.

The failover test prints the time to resume after promotion and the number
of acknowledged writes lost, the figures the failover docs quote."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

import psycopg
import pytest

import db_pool
from db_pool import DatabasePool, NoEndpointAvailable, OutcomeUnknown, SyncDatabasePool
from pg_cluster import PgCluster

FAST = {"probe_interval": 0.2, "validate_after": 0.0}


def node_ids(pool: SyncDatabasePool, pool_id: str, n: int, **kwargs: Any) -> list[bool]:
    """pg_is_in_recovery() of the node that served each of n queries."""
    return [
        pool.query(pool_id, "SELECT pg_is_in_recovery() AS r", **kwargs)["r"][0] for _ in range(n)
    ]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls until predicate() is true; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


def endpoint(pool: SyncDatabasePool | DatabasePool, pool_id: str, port: int) -> dict[str, Any]:
    for ep in pool.stats(pool_id)["endpoints"]:
        if ep["endpoint"].startswith(f"127.0.0.1:{port}/"):
            return ep  # type: ignore[no-any-return]
    raise AssertionError(f"no endpoint on port {port}")


# ---- configuration and routing -------------------------------------------------------


def test_multi_host_url_becomes_endpoints_with_probed_roles(pg_cluster: PgCluster) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("db", url=pg_cluster.multi_host_dsn(), **FAST)
        stats = pool.stats("db")
        eps = stats["endpoints"]
        assert [e["role"] for e in eps] == ["primary", "replica"]
        assert [e["is_primary"] for e in eps] == [True, False]
        assert [e["health"] for e in eps] == ["up", "up"]
        assert eps[0]["endpoint"] == f"127.0.0.1:{pg_cluster.ports[0]}/dbpool_test"
        assert "dbpool-secret" not in repr(stats)
        # the default read_from="primary" sends everything to the primary
        assert node_ids(pool, "db", 6) == [False] * 6


def test_endpoints_list_and_keyword_hosts_are_the_same_pool(pg_cluster: PgCluster) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("a", endpoints=[pg_cluster.dsn(1), pg_cluster.dsn(0)])
        pool.create_pool(
            "b",
            db_type="postgresql",
            host="127.0.0.1,127.0.0.1",
            port=f"{pg_cluster.ports[0]},{pg_cluster.ports[1]}",
            database="dbpool_test",
            username="dbpool_test",
            password="dbpool-secret",
        )
        for pool_id in ("a", "b"):
            roles = {e["endpoint"]: e["role"] for e in pool.stats(pool_id)["endpoints"]}
            assert sorted(roles.values()) == ["primary", "replica"]
        # the primary is found wherever it is listed
        assert pool.query("a", "SELECT pg_is_in_recovery() AS r", readonly=False)["r"][0] is False


def test_reads_follow_read_from_and_writes_go_to_the_primary(pg_cluster: PgCluster) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("rep", url=pg_cluster.multi_host_dsn(), read_from="replicas", **FAST)
        pool.create_pool("any", url=pg_cluster.multi_host_dsn(), read_from="any", **FAST)
        assert node_ids(pool, "rep", 6) == [True] * 6
        assert set(node_ids(pool, "any", 8)) == {True, False}  # round robin over both
        assert node_ids(pool, "rep", 3, readonly=False) == [False] * 3
        assert pool.execute("rep", "CREATE TABLE w (id int)") == 0
        assert pool.execute("rep", "INSERT INTO w VALUES (1)") == 1
        with pool.transaction("rep") as tx:
            assert tx.query("SELECT pg_is_in_recovery() AS r")["r"][0] is False
        with pool.transaction("rep", readonly=True) as tx:
            assert tx.query("SELECT pg_is_in_recovery() AS r")["r"][0] is True
        frames = list(pool.stream("rep", "SELECT pg_is_in_recovery() AS r"))
        assert frames[0]["r"][0] is True


def test_lagging_replica_is_skipped(pg_cluster: PgCluster) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool(
            "db", url=pg_cluster.multi_host_dsn(), read_from="replicas", max_replica_lag=0.5, **FAST
        )
        pool.execute("db", "CREATE TABLE lag (id int)")
        pool.execute("db", "INSERT INTO lag VALUES (1)")  # a replayed transaction to measure from
        wait_for(lambda: node_ids(pool, "db", 2) == [True, True], 5, "reads on the replica")
        pg_cluster.sql(1, "SELECT pg_wal_replay_pause()")
        pool.execute("db", "INSERT INTO lag VALUES (2)")  # the standby receives, does not replay
        wait_for(lambda: node_ids(pool, "db", 1) == [False], 10, "reads leave the lagging replica")
        lag = endpoint(pool, "db", pg_cluster.ports[1])["lag"]
        assert lag is not None and lag > 0.5
        pg_cluster.sql(1, "SELECT pg_wal_replay_resume()")
        wait_for(lambda: node_ids(pool, "db", 1) == [True], 10, "reads come back")


# ---- failover ---------------------------------------------------------------------------


async def test_writes_resume_after_promotion_and_no_acknowledged_write_is_lost(
    pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """12 writers insert numbered rows; the primary is killed mid-way and,
    after a pause, the standby is promoted (as an orchestrator would)."""
    caplog.set_level(logging.INFO, logger="db_pool")
    writers, after_resume = 12, 20
    acked: set[int] = set()
    unknown: list[int] = []
    other_errors: list[BaseException] = []
    killed_at = promoted_at = resumed_at = 0.0
    async with DatabasePool() as pool:
        # default probe_interval, failover_timeout and validate_after: the goal is
        # stated for the defaults
        await pool.create_pool("db", url=pg_cluster.multi_host_dsn(), max_size=4)
        await pool.execute("db", "CREATE TABLE acks (id bigint PRIMARY KEY, writer int)")

        async def writer(w: int) -> None:
            nonlocal resumed_at
            done_after_resume = 0
            seq = 0
            while done_after_resume < after_resume:
                row = w * 1_000_000 + seq
                seq += 1
                try:
                    await pool.execute("db", "INSERT INTO acks VALUES ($1, $2)", [row, w])
                except OutcomeUnknown:
                    unknown.append(row)
                    continue
                except Exception as exc:  # noqa: BLE001 - every other error fails the test
                    other_errors.append(exc)
                    return
                acked.add(row)
                if promoted_at:
                    resumed_at = resumed_at or time.monotonic()
                    done_after_resume += 1

        tasks = [asyncio.create_task(writer(w)) for w in range(writers)]
        while len(acked) < 300:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(pg_cluster.kill, 0)
        killed_at = time.monotonic()
        await asyncio.sleep(1.0)  # writers now wait for a primary
        acked_before_promotion = len(acked)
        promoted_at = time.monotonic()  # from the start of `pg_ctl promote`
        await asyncio.to_thread(pg_cluster.promote, 1)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        stats = pool.stats("db")

    resume_s = resumed_at - promoted_at
    with psycopg.connect(pg_cluster.dsn(1), autocommit=True) as conn:
        present = {r[0] for r in conn.execute("SELECT id FROM acks").fetchall()}
    lost = acked - present
    print(
        f"\nfailover: {len(acked)} acknowledged writes, {len(unknown)} with unknown outcome, "
        f"{len(lost)} acknowledged writes lost; writes resumed {resume_s:.3f} s after the "
        f"promotion ({resumed_at - killed_at:.3f} s after the kill)"
    )
    assert not other_errors, other_errors
    assert lost == set()
    assert len(unknown) <= writers  # at most the one in flight per writer at the kill
    assert acked_before_promotion <= len(acked) - writers * after_resume
    assert resume_s < 5.0
    assert stats["failovers"] == 1
    assert stats["topology_generation"] >= 1
    kinds = {(e["kind"], e["endpoint"].split("/")[0]) for e in stats["events"]}
    assert ("down", f"127.0.0.1:{pg_cluster.ports[0]}") in kinds
    assert ("primary", f"127.0.0.1:{pg_cluster.ports[1]}") in kinds
    assert "is now the primary" in caplog.text


def test_reads_are_served_by_the_standby_while_the_primary_is_down(pg_cluster: PgCluster) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("db", url=pg_cluster.multi_host_dsn(), read_from="any", **FAST)
        pool.execute("db", "CREATE TABLE r (id int)")
        pool.execute("db", "INSERT INTO r VALUES (1), (2)")
        pg_cluster.kill(0)
        for _ in range(20):  # none fails: dead connections are replaced or retried
            df = pool.query("db", "SELECT count(*) AS n, pg_is_in_recovery() AS r FROM r")
            assert df.row(0) == (2, True)
        assert endpoint(pool, "db", pg_cluster.ports[0])["health"] == "down"
        with pytest.raises(NoEndpointAvailable) as info:
            pool.execute("db", "INSERT INTO r VALUES (3)")
        assert "no primary endpoint" in str(info.value)


def test_read_on_a_broken_replica_runs_again_elsewhere(pg_cluster: PgCluster) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("db", url=pg_cluster.multi_host_dsn(), read_from="replicas", **FAST)
        assert node_ids(pool, "db", 1) == [True]

        import threading

        killer = threading.Timer(0.5, pg_cluster.kill, args=(1,))
        killer.start()
        df = pool.query("db", "SELECT pg_sleep(2), pg_is_in_recovery() AS r", readonly=True)
        killer.join()
        assert df["r"][0] is False  # answered by the primary after the replica died
        assert pool.stats("db")["retries"] >= 1


def test_replica_is_banned_then_readmitted(
    pg_cluster_factory: Callable[..., PgCluster], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="db_pool")
    cluster = pg_cluster_factory(synchronous=False)  # a stopped sync standby would block commits
    with SyncDatabasePool() as pool:
        pool.create_pool("db", url=cluster.multi_host_dsn(), read_from="replicas", **FAST)
        assert node_ids(pool, "db", 2) == [True, True]
        cluster.stop(1)
        assert node_ids(pool, "db", 5) == [False] * 5  # the primary stands in
        standby = endpoint(pool, "db", cluster.ports[1])
        assert standby["health"] == "down" and standby["failures"] >= 1
        started = time.monotonic()
        cluster.start(1)
        wait_for(lambda: endpoint(pool, "db", cluster.ports[1])["health"] == "up", 15, "readmitted")
        took = time.monotonic() - started
        print(f"\nreplica readmitted {took:.2f} s after `pg_ctl start` began")
        assert took < 8  # backoff is capped at 5 s
        wait_for(lambda: node_ids(pool, "db", 1) == [True], 5, "reads return to the replica")
        assert "is down" in caplog.text and "is up" in caplog.text


def test_all_endpoints_down_is_a_typed_error_then_recovers(
    pg_cluster_factory: Callable[..., PgCluster],
) -> None:
    cluster = pg_cluster_factory(synchronous=False)
    with SyncDatabasePool() as pool:
        pool.create_pool(
            "db", url=cluster.multi_host_dsn(), failover_timeout=2.0, acquire_timeout=1.0, **FAST
        )
        pool.execute("db", "CREATE TABLE d (id int)")
        cluster.stop(0)  # clean stops: the private servers run with synchronous_commit off
        cluster.stop(1)
        start = time.monotonic()
        with pytest.raises(NoEndpointAvailable) as info:
            pool.execute("db", "INSERT INTO d VALUES (1)")
        waited = time.monotonic() - start
        print(f"\nall endpoints down: NoEndpointAvailable after {waited:.2f} s (failover_timeout 2 s)")
        assert 1.5 < waited < 5.0
        message = str(info.value)
        assert all(f"127.0.0.1:{port}" in message for port in cluster.ports)
        assert "dbpool-secret" not in message
        assert info.value.category == "unavailable"
        started = time.monotonic()
        cluster.start(0)
        wait_for(
            lambda: endpoint(pool, "db", cluster.ports[0])["health"] == "up", 15, "primary back"
        )
        print(f"primary back up {time.monotonic() - started:.2f} s after `pg_ctl start` began")
        assert pool.execute("db", "INSERT INTO d VALUES (2)") == 1
        assert pool.stats("db")["in_use"] == 0


def test_creation_with_one_endpoint_down_and_with_all_down(pg_cluster: PgCluster) -> None:
    with SyncDatabasePool() as pool:
        pg_cluster.kill(1)
        pool.create_pool("db", url=pg_cluster.multi_host_dsn(), **FAST)
        assert [e["health"] for e in pool.stats("db")["endpoints"]] == ["up", "down"]
        pg_cluster.kill(0)
        with pytest.raises(db_pool.OperationalError, match="none of the 2 endpoints"):
            pool.create_pool("db2", url=pg_cluster.multi_host_dsn())
        assert pool.list_pools() == ["db"]


def test_sqlite_refuses_several_endpoints() -> None:
    with SyncDatabasePool() as pool:
        with pytest.raises(db_pool.ConfigurationError, match="takes one endpoint"):
            pool.create_pool("s", endpoints=["sqlite:///:memory:", "sqlite:///:memory:"])
        with pytest.raises(db_pool.ConfigurationError, match="read_from"):
            pool.create_pool("s", url="sqlite:///:memory:", read_from="nearest")
