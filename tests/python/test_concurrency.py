"""Many concurrent callers on a small pool: asyncio tasks and Python threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from db_pool import DatabasePool, ProgrammingError, SyncDatabasePool

from conftest import assert_healthy, sqlite_url, wait_idle, wait_idle_sync

N = 1000


async def test_1000_tasks_on_4_connections(apool: DatabasePool) -> None:
    await apool.create_pool("db", url="sqlite:///:memory:", max_size=4)
    before = apool.stats("db")["requests"]

    async def one(i: int) -> tuple[int, int, str]:
        df = await apool.query("db", "SELECT ? AS i, ? * 2 AS twice, 'n' || ? AS s", [i, i, i])
        assert df.height == 1
        return df.row(0)

    results = await asyncio.gather(*(one(i) for i in range(N)))
    assert results == [(i, 2 * i, f"n{i}") for i in range(N)]
    stats = await wait_idle(apool, "db")
    assert stats["in_use"] == 0
    assert stats["size"] <= 4
    assert stats["created"] <= 4  # connections were reused, not reopened
    assert stats["requests"] - before >= N
    assert stats["errors"] == 0
    await assert_healthy(apool, "db")


async def test_concurrent_tasks_with_failures_leak_nothing(apool: DatabasePool) -> None:
    await apool.create_pool("db", url="sqlite:///:memory:", max_size=4)

    async def one(i: int) -> int:
        sql = "SELEC ?" if i % 10 == 0 else "SELECT ? AS i"
        return int((await apool.query("db", sql, [i])).item())

    results = await asyncio.gather(*(one(i) for i in range(500)), return_exceptions=True)
    for i, r in enumerate(results):
        if i % 10 == 0:
            assert isinstance(r, ProgrammingError)
        else:
            assert r == i
    stats = await wait_idle(apool, "db")
    assert stats["errors"] == 50
    assert stats["size"] <= 4
    await assert_healthy(apool, "db")


async def test_concurrent_transactions_serialize_writes(apool: DatabasePool, db_path: Path) -> None:
    await apool.create_pool("f", url=sqlite_url(db_path), max_size=4)
    await apool.execute("f", "CREATE TABLE counter (n INTEGER)")
    await apool.execute("f", "INSERT INTO counter VALUES (0)")

    async def bump() -> None:
        async with apool.transaction("f", begin="IMMEDIATE") as tx:
            n = (await tx.query("SELECT n FROM counter")).item()
            await tx.execute("UPDATE counter SET n = ?", [n + 1])

    await asyncio.gather(*(bump() for _ in range(100)))
    assert (await apool.query("f", "SELECT n FROM counter")).item() == 100
    await wait_idle(apool, "f")


def test_8_threads_on_4_connections(spool: SyncDatabasePool) -> None:
    spool.create_pool("db", url="sqlite:///:memory:", max_size=4)
    before = spool.stats("db")["requests"]
    per_thread = N // 8
    start = threading.Barrier(8)

    def work(t: int) -> list[tuple[int, int]]:
        start.wait(5)
        out = []
        for i in range(t * per_thread, (t + 1) * per_thread):
            df = spool.query("db", "SELECT ? AS i, ? * 3 AS thrice", [i, i])
            out.append(df.row(0))
        return out

    with ThreadPoolExecutor(8) as ex:
        results = [row for rows in ex.map(work, range(8)) for row in rows]
    assert results == [(i, 3 * i) for i in range(N)]
    stats = wait_idle_sync(spool, "db")
    assert stats["in_use"] == 0
    assert stats["size"] <= 4
    assert stats["requests"] - before >= N
    assert stats["errors"] == 0


def test_threads_with_transactions(spool: SyncDatabasePool, db_path: Path) -> None:
    spool.create_pool("f", url=sqlite_url(db_path), max_size=4)
    spool.execute("f", "CREATE TABLE counter (n INTEGER)")
    spool.execute("f", "INSERT INTO counter VALUES (0)")

    def work(_: int) -> None:
        for _ in range(20):
            with spool.transaction("f", begin="IMMEDIATE") as tx:
                n = tx.query("SELECT n FROM counter").item()
                tx.execute("UPDATE counter SET n = ?", [n + 1])

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(work, range(8)))
    assert spool.query("f", "SELECT n FROM counter").item() == 160
    assert wait_idle_sync(spool, "f")["in_use"] == 0


def test_threads_share_one_pool_with_streams(spool: SyncDatabasePool) -> None:
    spool.create_pool("db", url="sqlite:///:memory:", max_size=4)
    spool.execute("db", "CREATE TABLE t (i INTEGER)")
    spool.execute_many("db", "INSERT INTO t VALUES (?)", [(i,) for i in range(5000)])

    def work(t: int) -> int:
        total = 0
        for df in spool.stream("db", "SELECT i FROM t WHERE i % 8 = ?", [t], batch_rows=100):
            total += int(df["i"].sum())
        return total

    with ThreadPoolExecutor(8) as ex:
        totals = list(ex.map(work, range(8)))
    assert totals == [sum(i for i in range(5000) if i % 8 == t) for t in range(8)]
    assert wait_idle_sync(spool, "db")["in_use"] == 0
