"""The async API runs a short SQLite read on the event loop's thread, within
a budget of about 1 ms (docs/sqlite.md, "Threads"): a read that runs longer
is stopped and run again on a worker, and a statement that may write always
runs on a worker, so the event loop is never held for long and nothing is
written twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from db_pool import DatabasePool, QueryTimeout

from conftest import assert_healthy, sqlite_url, wait_idle

LONG_READ = ("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {}) "
             "SELECT count(*) AS n, sum(i) AS s FROM c")


async def ticks_during(coro: object, interval: float = 0.001) -> tuple[object, int, float]:
    """Runs `coro` beside a task that ticks every `interval`; returns its
    result, the ticks and the longest gap between two ticks (how long the
    event loop was held)."""
    ticks, longest, stop = 0, 0.0, False

    async def ticker() -> None:
        nonlocal ticks, longest
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(interval)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now
            ticks += 1

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    try:
        result = await coro  # type: ignore[misc]
    finally:
        stop = True
        await task
    return result, ticks, longest


async def test_a_long_read_moves_to_a_worker_and_the_loop_keeps_running(
    apool: DatabasePool,
) -> None:
    await apool.create_pool("s", url="sqlite:///:memory:", max_size=1)
    n = 5_000_000
    df, ticks, longest = await ticks_during(apool.query("s", LONG_READ.format(n)))
    assert df.row(0) == (n, n * (n + 1) // 2)  # type: ignore[attr-defined]
    # the read takes most of a second; held inline it would stop the ticker
    # for all of it (the bounds leave room for a loaded machine)
    assert ticks >= 20, ticks
    assert longest < 0.3, longest
    await wait_idle(apool, "s")
    await assert_healthy(apool, "s")


async def test_short_reads_give_the_same_rows_as_the_worker(apool: DatabasePool,
                                                           db_path: Path) -> None:
    await apool.create_pool("s", url=sqlite_url(db_path), max_size=2)
    await apool.execute("s", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, x REAL)")
    await apool.execute_many("s", "INSERT INTO t VALUES (?, ?, ?)",
                             [(i, f"n{i}", i / 4) for i in range(1, 201)])
    # many tasks: some run inline, some wait their turn and run on a worker
    frames = await asyncio.gather(*(apool.query("s", "SELECT * FROM t WHERE id = ?", [i])
                                    for i in range(1, 201)))
    assert [f.row(0) for f in frames] == [(i, f"n{i}", i / 4) for i in range(1, 201)]
    await wait_idle(apool, "s")


async def test_a_query_that_writes_runs_once_on_a_worker(apool: DatabasePool,
                                                         db_path: Path) -> None:
    await apool.create_pool("s", url=sqlite_url(db_path), max_size=1)
    await apool.execute("s", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(20):
        df = await apool.query("s", "INSERT INTO t (v) VALUES (?) RETURNING id", [f"v{i}"])
        assert df.item() == i + 1
    df = await apool.query("s", "SELECT count(*) AS n, count(DISTINCT v) AS d FROM t")
    assert df.row(0) == (20, 20)  # each statement ran exactly once


async def test_a_read_waiting_for_a_lock_does_not_hold_the_loop(db_path: Path) -> None:
    """An exclusive lock held by another connection: the inline read gives up
    at once (no busy wait on the loop's thread), and on a worker it waits
    for the lock as busy_timeout_ms says."""
    import sqlite3

    setup = sqlite3.connect(db_path)
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    setup.execute("INSERT INTO t VALUES (1)")
    setup.commit()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    async with DatabasePool() as pool:
        await pool.create_pool("s", url=sqlite_url(db_path), max_size=1, busy_timeout_ms=600)
        released = asyncio.get_running_loop().call_later(0.3, holder.execute, "COMMIT")
        df, ticks, longest = await ticks_during(pool.query("s", "SELECT id FROM t"))
        assert df.item() == 1  # type: ignore[attr-defined]
        assert ticks >= 10, ticks
        assert longest < 0.2, longest  # a busy wait on the loop would be 0.3 s
        released.cancel()
    holder.close()
    setup.close()


async def test_a_long_read_moved_to_a_worker_keeps_its_deadline(apool: DatabasePool) -> None:
    await apool.create_pool("s", url="sqlite:///:memory:", max_size=1)
    start = time.monotonic()
    with pytest.raises(QueryTimeout):
        await apool.query("s", LONG_READ.format(10**9), timeout=0.2)
    assert time.monotonic() - start < 1.0
    await wait_idle(apool, "s")
    await assert_healthy(apool, "s")
