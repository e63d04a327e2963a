"""Lifetime stress from asyncio: many in-flight queries cancelled at random
moments, with tiny timeouts, while pools and the whole DatabasePool close
under them. Nothing may crash or hang, every query ends within a bound, and
a pool that stays open gets every connection back. (The C side of the same
races: tests/c/test_lifetime.c.)"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import polars as pl

from db_pool import DatabasePool, PoolClosed, PoolFull, PoolNotFound, QueryCancelled

from conftest import SLOW_SQL, assert_healthy, wait_idle

#: How long each test hammers, and how long any query may take to end.
SECONDS = 3.0
SETTLE = 5.0

#: What a query may end with here: a task cancel, its own deadline
#: (QueryTimeout), a closed pool, or the pool's limits.
ALLOWED = (TimeoutError, QueryCancelled, PoolClosed, PoolNotFound, PoolFull)


async def _query(pool: DatabasePool, pool_id: str, timeout: float | None, slow: bool) -> Any:
    return await pool.query(pool_id, SLOW_SQL if slow else "SELECT 1 AS one", timeout=timeout)


def _storm(
    pool: DatabasePool, pool_ids: list[str], rng: random.Random, n: int
) -> tuple[list[asyncio.Task[Any]], list[asyncio.Task[Any]]]:
    """Starts n queries; returns them and those that only a cancel (or a
    close) can end: slow ones without a deadline of their own."""
    tasks, endless = [], []
    for _ in range(n):
        slow = rng.random() < 0.8
        timeout = rng.uniform(0.001, 0.03) if rng.random() < 0.5 else None
        task = asyncio.create_task(_query(pool, rng.choice(pool_ids), timeout, slow))
        tasks.append(task)
        if slow and timeout is None:
            endless.append(task)
    return tasks, endless


async def _cancel_at_random(
    tasks: list[asyncio.Task[Any]], must: list[asyncio.Task[Any]], rng: random.Random
) -> None:
    """Cancels every task of `must` and half of the others, one by one at
    random moments: before they start, while they wait, run or finish."""
    victims = list(must) + [t for t in tasks if t not in must and rng.random() < 0.5]
    rng.shuffle(victims)
    for task in victims:
        if rng.random() < 0.3:
            await asyncio.sleep(rng.uniform(0, 0.005))
        task.cancel()


async def _settle(tasks: list[asyncio.Task[Any]]) -> None:
    """Every query ends within SETTLE, with a result or an allowed error."""
    done, pending = await asyncio.wait(tasks, timeout=SETTLE)
    assert not pending, f"{len(pending)} queries still running after {SETTLE}s"
    for task in done:
        if task.cancelled():
            continue
        exc = task.exception()
        assert exc is None or isinstance(exc, ALLOWED), repr(exc)
        if exc is None:
            assert isinstance(task.result(), pl.DataFrame)


async def test_random_cancels_and_tiny_timeouts_leave_the_pool_whole(apool: DatabasePool) -> None:
    rng = random.Random()
    await apool.create_pool("db", url="sqlite:///:memory:", max_size=4, cancel_grace=0.05)
    until = time.monotonic() + SECONDS
    while time.monotonic() < until:
        tasks, endless = _storm(apool, ["db"], rng, 40)
        await asyncio.sleep(rng.uniform(0, 0.01))
        await _cancel_at_random(tasks, endless, rng)
        await _settle(tasks)
    stats = await wait_idle(apool, "db", timeout=SETTLE)
    assert stats["cancelled"] > 0 and stats["query_timeouts"] > 0, stats
    await assert_healthy(apool, "db")


async def test_closing_pools_under_cancelled_queries(apool: DatabasePool) -> None:
    rng = random.Random()
    await apool.create_pool("keep", url="sqlite:///:memory:", max_size=3, cancel_grace=0.05)
    until = time.monotonic() + SECONDS
    round_ = 0
    while time.monotonic() < until:
        gone = f"gone{round_}"
        round_ += 1
        await apool.create_pool(gone, url="sqlite:///:memory:", max_size=3, cancel_grace=0.05)
        tasks, endless = _storm(apool, ["keep", gone], rng, 30)
        await asyncio.sleep(rng.uniform(0, 0.01))

        async def close_later(pool_id: str = gone) -> None:
            await asyncio.sleep(rng.uniform(0, 0.01))
            await apool.close_pool(pool_id, timeout=rng.choice([0, 0.01, 0.1]))

        # the close ends the gone pool's endless queries; the keep pool's
        # need a cancel
        must = [t for t in endless if rng.random() < 0.5]
        await asyncio.gather(close_later(), _cancel_at_random(tasks, must, rng))
        for task in endless:
            task.cancel()
        await _settle(tasks)
        await wait_idle(apool, "keep", timeout=SETTLE)
    await assert_healthy(apool, "keep")


async def test_closing_everything_under_cancelled_queries() -> None:
    rng = random.Random()
    until = time.monotonic() + SECONDS
    while time.monotonic() < until:
        pool = DatabasePool()
        await pool.create_pool("a", url="sqlite:///:memory:", max_size=3, cancel_grace=0.05)
        await pool.create_pool("b", url="sqlite:///:memory:", max_size=2, cancel_grace=0.05)
        tasks, endless = _storm(pool, ["a", "b"], rng, 30)
        await asyncio.sleep(rng.uniform(0, 0.01))
        must = [t for t in endless if rng.random() < 0.3]
        start = time.monotonic()
        # the shutdown runs on another thread while this one cancels
        await asyncio.gather(
            pool.close(timeout=rng.choice([0, 0.01, 0.1])), _cancel_at_random(tasks, must, rng)
        )
        assert time.monotonic() - start < SETTLE
        await _settle(tasks)
