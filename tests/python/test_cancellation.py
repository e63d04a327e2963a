"""Cancelling asyncio tasks: running statements are interrupted, queued
requests are removed, transactions roll back, and no connection leaks.

(The sync API's Ctrl-C path, KeyboardInterrupt during Request.wait, is not
tested: delivering SIGINT inside pytest is too fragile.)"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from db_pool import DatabasePool

from conftest import SLOW_SQL, assert_healthy, wait_idle


@pytest.fixture
async def pool(apool: DatabasePool) -> DatabasePool:
    await apool.create_pool("db", url="sqlite:///:memory:", max_size=2)
    await apool.execute("db", "CREATE TABLE t (a INTEGER)")
    return apool


async def test_wait_for_interrupts_a_running_statement(pool: DatabasePool) -> None:
    before = pool.stats("db")["cancelled"]
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.query("db", SLOW_SQL), timeout=0.2)
    assert time.monotonic() - start < 1.5
    stats = await wait_idle(pool, "db", timeout=5)
    assert stats["cancelled"] > before
    assert stats["in_use"] == 0
    await assert_healthy(pool, "db")


async def test_task_cancel_interrupts_a_running_statement(pool: DatabasePool) -> None:
    for op in (pool.query, pool.execute):
        task = asyncio.ensure_future(op("db", SLOW_SQL))
        await asyncio.sleep(0.1)
        assert pool.stats("db")["in_use"] == 1
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_idle(pool, "db", timeout=5)
        assert time.monotonic() - start < 1.5
    await assert_healthy(pool, "db")


async def test_cancelled_statements_free_every_connection(pool: DatabasePool) -> None:
    tasks = [asyncio.ensure_future(pool.query("db", SLOW_SQL)) for _ in range(6)]
    await asyncio.sleep(0.1)
    stats = pool.stats("db")
    assert stats["in_use"] == 2 and stats["waiting"] == 4
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    stats = await wait_idle(pool, "db", timeout=5)
    assert stats["cancelled"] >= 6
    await assert_healthy(pool, "db")


async def test_cancelling_a_queued_request_removes_it(pool: DatabasePool) -> None:
    before = pool.stats("db")["cancelled"]
    await pool.create_pool("one", url="sqlite:///:memory:", max_size=1)
    await pool.execute("one", "CREATE TABLE t (a INTEGER)")
    async with pool.transaction("one"):
        waiter = asyncio.ensure_future(pool.execute("one", "INSERT INTO t VALUES (1)"))
        deadline = time.monotonic() + 5
        while pool.stats("one")["waiting"] == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        stats = pool.stats("one")
        assert stats["waiting"] == 0 and stats["in_use"] == 1
        assert stats["cancelled"] >= 1
    await asyncio.sleep(0.05)
    # the dequeued INSERT never ran
    assert (await pool.query("one", "SELECT count(*) FROM t")).item() == 0
    await assert_healthy(pool, "one")
    assert pool.stats("db")["cancelled"] == before  # other pools unaffected


async def test_cancelling_inside_a_transaction_rolls_back(pool: DatabasePool) -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            async with pool.transaction("db") as tx:
                await tx.execute("INSERT INTO t VALUES (1)")
                await tx.query(SLOW_SQL)
    assert time.monotonic() - start < 1.5
    await wait_idle(pool, "db", timeout=5)
    assert (await pool.query("db", "SELECT count(*) FROM t")).item() == 0
    # the connection went back without an open transaction: new ones commit
    async with pool.transaction("db", begin="IMMEDIATE") as tx:
        await tx.execute("INSERT INTO t VALUES (2)")
    assert (await pool.query("db", "SELECT a FROM t")).to_series().to_list() == [2]
    await assert_healthy(pool, "db")


async def test_timeout_caught_inside_a_transaction_keeps_it_usable(pool: DatabasePool) -> None:
    async with pool.transaction("db") as tx:
        await tx.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(tx.query(SLOW_SQL), timeout=0.2)
        # the next statement waits for the interrupted one to leave the connection
        assert (await tx.query("SELECT count(*) FROM t")).item() == 1
        await tx.execute("INSERT INTO t VALUES (2)")
    assert (await pool.query("db", "SELECT count(*) FROM t")).item() == 2
    await assert_healthy(pool, "db")


async def test_cancelling_a_stream_returns_the_connection(pool: DatabasePool) -> None:
    async def consume(sql: str) -> int:
        n = 0
        async for df in pool.stream("db", sql, batch_rows=10):
            n += df.height
        return n

    rows_forever = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
        "SELECT x FROM c WHERE x % 100000000 = 0"
    )
    for sql in (SLOW_SQL, rows_forever):
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(consume(sql), timeout=0.2)
        assert time.monotonic() - start < 1.5
        await wait_idle(pool, "db", timeout=5)
        await assert_healthy(pool, "db")


async def test_cancelling_while_waiting_for_a_transaction(pool: DatabasePool) -> None:
    await pool.create_pool("one", url="sqlite:///:memory:", max_size=1)

    async def in_tx() -> None:
        async with pool.transaction("one") as tx:
            await tx.query("SELECT 1")

    async with pool.transaction("one"):
        task = asyncio.ensure_future(in_tx())
        while pool.stats("one")["waiting"] == 0:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await wait_idle(pool, "one")
    await assert_healthy(pool, "one")


async def test_close_while_a_statement_runs(apool: DatabasePool) -> None:
    await apool.create_pool("db", url="sqlite:///:memory:", max_size=1)
    task = asyncio.ensure_future(apool.query("db", SLOW_SQL))
    await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    start = time.monotonic()
    await apool.close()
    assert time.monotonic() - start < 2.0
