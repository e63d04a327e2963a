"""MySQL/MariaDB pools over a real primary and a semi-synchronous replica:
roles probed from read_only, reads routed to the replica, and a failover
(kill the primary, promote the replica) while writers run: no acknowledged
write lost, writes resumed within 10 s. Nothing is mocked."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pymysql
import pytest

from db_pool import DatabaseError, DatabasePool, OutcomeUnknown, SyncDatabasePool
from mysql_cluster import MysqlCluster

FAST = {"probe_interval": 0.2, "validate_after": 0.0}


def test_roles_come_from_read_only_and_reads_go_to_the_replica(mysql_cluster: MysqlCluster
                                                               ) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("db", url=mysql_cluster.multi_host_dsn(), read_from="replicas", **FAST)
        eps = pool.stats("db")["endpoints"]
        assert [e["role"] for e in eps] == ["primary", "replica"]
        assert [e["is_primary"] for e in eps] == [True, False]
        assert eps[1]["lag"] is None  # SHOW SLAVE STATUS needs SLAVE MONITOR: unknown
        # global privileges reach new sessions: a pool made after the grant reads the lag
        mysql_cluster.sql(0, "GRANT SLAVE MONITOR ON *.* TO 'dbpool_test'@'127.0.0.1', "
                             "'dbpool_test'@'%'")  # replicated to the replica
        deadline = time.monotonic() + 10
        while True:
            pool.create_pool("fresh", url=mysql_cluster.multi_host_dsn(), **FAST)
            lag = pool.stats("fresh")["endpoints"][1]["lag"]
            pool.close_pool("fresh")
            if lag is not None:
                break
            assert time.monotonic() < deadline, "no lag from Seconds_Behind_Master"
            time.sleep(0.1)
        assert lag >= 0
        read = pool.query("db", "SELECT @@global.read_only AS ro")
        assert read["ro"][0] == 1
        pool.execute("db", "CREATE TABLE w (id INT PRIMARY KEY)")  # writes: the primary
        pool.execute("db", "INSERT INTO w VALUES (1)")
        with pytest.raises(DatabaseError, match="read-only") as e:  # sent to the replica
            pool.query("db", "INSERT INTO w VALUES (2) RETURNING id", readonly=True)
        assert e.value.code == 1290


async def test_failover_loses_no_acknowledged_write(mysql_cluster: MysqlCluster) -> None:
    writers, after_resume = 4, 20
    pool = await DatabasePool.from_config({"pools": {"db": {
        "engine": "mysql", "endpoints": [mysql_cluster.dsn(0), mysql_cluster.dsn(1)],
        "failover_timeout": 30,
        "connect_timeout": 2, **FAST}}})
    await pool.execute("db", "CREATE TABLE acks (id BIGINT PRIMARY KEY, w INT)")
    acked: set[int] = set()
    unknown: list[int] = []
    other_errors: list[BaseException] = []
    promoted_at = resumed_at = 0.0

    async def writer(w: int) -> None:
        nonlocal resumed_at
        seq = done_after_resume = 0
        while done_after_resume < after_resume:
            row = w * 1_000_000 + seq
            seq += 1
            try:
                await pool.execute("db", "INSERT INTO acks VALUES (?, ?)", [row, w])
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

    try:
        tasks = [asyncio.create_task(writer(w)) for w in range(writers)]
        while len(acked) < 200 and not other_errors:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(mysql_cluster.kill, 0)
        killed_at = time.monotonic()
        await asyncio.sleep(1.0)  # writers now wait for a primary
        promoted_at = time.monotonic()
        await asyncio.to_thread(mysql_cluster.promote, 1)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        stats = pool.stats("db")
    finally:
        await pool.close()

    conn = pymysql.connect(**_kwargs(mysql_cluster, 1))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM acks")
            present = {r[0] for r in cur.fetchall()}
    finally:
        conn.close()
    lost = acked - present
    resume_s = resumed_at - promoted_at
    print(f"\nmysql failover: {len(acked)} acknowledged writes, {len(unknown)} unknown, "
          f"{len(lost)} lost; writes resumed {resume_s:.3f} s after the promotion "
          f"({resumed_at - killed_at:.3f} s after the kill)")
    assert not other_errors, other_errors
    assert lost == set()
    assert len(unknown) <= writers
    assert resume_s < 10.0
    assert stats["failovers"] == 1


def _kwargs(cluster: MysqlCluster, i: int) -> dict[str, Any]:
    return cluster.nodes[i].connect_kwargs()
