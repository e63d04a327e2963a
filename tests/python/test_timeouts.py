"""Deadlines on the embedded SQLite engine: timeout= on every call, the
pool's query_timeout, lock waits that a deadline ends, and the validation of
every time value (docs/timeouts.md). The network faults are in
tests/python/pg/test_pg_faults.py and tests/python/mssql/test_mssql_faults.py."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from db_pool import (
    ConfigurationError,
    DatabasePool,
    OperationalError,
    PoolClosed,
    PoolTimeout,
    QueryTimeout,
)

from conftest import assert_healthy, sqlite_url

#: A query that runs for minutes unless stopped.
ENDLESS = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
           "SELECT max(x) AS m FROM c")


async def took(call: Any) -> float:
    start = time.monotonic()
    await call
    return time.monotonic() - start


async def test_timeout_stops_a_query(api: Any) -> None:
    await api.create_pool("db", url="sqlite:///:memory:", max_size=1)
    start = time.monotonic()
    with pytest.raises(QueryTimeout) as info:
        await api.query("db", ENDLESS, timeout=0.3)
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 1.3, elapsed
    err = info.value
    assert isinstance(err, OperationalError) and isinstance(err, TimeoutError)
    assert err.sqlstate == "57014" and err.category == "query-timeout"
    assert "timeout=300 ms" in str(err)
    stats = api.stats("db")
    assert stats["query_timeouts"] == 1 and stats["abandoned"] == 0
    await assert_healthy(api, "db")


async def test_query_timeout_option_and_per_call_override(api: Any) -> None:
    await api.create_pool("db", url="sqlite:///:memory:", max_size=1, query_timeout=0.2)
    with pytest.raises(QueryTimeout, match="query_timeout=200 ms"):
        await api.query("db", ENDLESS)
    start = time.monotonic()
    with pytest.raises(QueryTimeout, match="timeout=500 ms"):
        await api.execute("db", ENDLESS, timeout=0.5)
    assert time.monotonic() - start >= 0.45
    assert (await api.query("db", "SELECT 1 AS one", timeout=5)).item() == 1


async def test_timeout_of_every_call(api: Any, tmp_path: Path) -> None:
    await api.create_pool("db", url=sqlite_url(tmp_path / "t.db"), max_size=2)
    await api.execute("db", "CREATE TABLE t (a INTEGER)", timeout=5)
    assert await api.execute_many("db", "INSERT INTO t VALUES (?)", [(1,), (2,)], timeout=5) == 2
    assert await api.write_frame("db", pl.DataFrame({"a": [3]}), "t", timeout=5) == 1
    async with api.transaction("db", timeout=5) as tx:
        assert (await tx.query("SELECT count(*) AS n FROM t", timeout=5)).item() == 3
        with pytest.raises(QueryTimeout):
            await tx.query(ENDLESS, timeout=0.2)
    got = [b async for b in api.stream("db", "SELECT a FROM t", batch_rows=1, timeout=5)]
    assert len(got) == 3
    with pytest.raises(QueryTimeout, match="stream"):
        async for _ in api.stream("db", "SELECT a FROM t", batch_rows=1, timeout=0.3):
            await asyncio.sleep(0.2)  # the caller's own time counts too
    await assert_healthy(api, "db")


async def test_deadline_ends_a_lock_wait(api: Any, tmp_path: Path) -> None:
    """SQLite's busy wait for another connection's lock stops at the
    deadline, not at busy_timeout_ms."""
    url = sqlite_url(tmp_path / "lock.db")
    await api.create_pool("db", url=url, max_size=2, busy_timeout_ms=60000)
    await api.execute("db", "CREATE TABLE t (a INTEGER)")
    async with api.transaction("db", "IMMEDIATE") as tx:
        await tx.execute("INSERT INTO t VALUES (1)")
        start = time.monotonic()
        with pytest.raises(QueryTimeout):
            await api.execute("db", "INSERT INTO t VALUES (2)", timeout=0.3)
        assert time.monotonic() - start < 1.3
    await assert_healthy(api, "db")


async def test_deadline_covers_the_wait_for_a_connection(api: Any) -> None:
    await api.create_pool("db", url="sqlite:///:memory:", max_size=1)
    async with api.transaction("db"):
        start = time.monotonic()
        with pytest.raises(QueryTimeout, match="nothing was sent"):
            await api.query("db", "SELECT 1", timeout=0.2)
        assert time.monotonic() - start < 1.2
    assert api.stats("db")["timeouts"] == 0  # not an acquire_timeout


async def test_tiny_acquire_timeout_is_not_forever(api: Any) -> None:
    """Below a millisecond used to mean "wait forever"; it rounds up now."""
    await api.create_pool("db", url="sqlite:///:memory:", max_size=1, acquire_timeout=0.0004)
    async with api.transaction("db"):
        start = time.monotonic()
        with pytest.raises(PoolTimeout):
            await api.query("db", "SELECT 1")
        assert time.monotonic() - start < 1.0


BAD_SECONDS = [0, -1, math.nan, math.inf, -math.inf, "1", True, None.__class__]


@pytest.mark.parametrize("bad", [b for b in BAD_SECONDS if b is not None.__class__])
async def test_bad_timeout_is_refused_with_its_name(api: Any, bad: Any) -> None:
    await api.create_pool("db", url="sqlite:///:memory:")
    calls = [
        lambda: api.query("db", "SELECT 1", timeout=bad),
        lambda: api.execute("db", "SELECT 1", timeout=bad),
        lambda: api.execute_many("db", "SELECT ?", [(1,)], timeout=bad),
        lambda: api.write_frame("db", pl.DataFrame({"a": [1]}), "t", timeout=bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="timeout") as info:
            await call()
        assert isinstance(info.value, ConfigurationError)
    with pytest.raises(ValueError, match="timeout"):
        api.transaction("db", timeout=bad)
    await assert_healthy(api, "db")


@pytest.mark.parametrize("option", ["acquire_timeout", "query_timeout", "connect_timeout",
                                    "cancel_grace", "idle_timeout", "max_lifetime",
                                    "failover_timeout", "probe_interval", "max_replica_lag"])
@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "soon", True, 10**12])
async def test_bad_time_option_is_refused_with_its_name(api: Any, option: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match=option):
        await api.create_pool("db", url="sqlite:///:memory:", **{option: bad})
    assert api.list_pools() == []


async def test_close_timeouts_are_validated(tmp_path: Path) -> None:
    pool = DatabasePool()
    await pool.create_pool("db", url="sqlite:///:memory:")
    with pytest.raises(ConfigurationError, match="timeout"):
        await pool.close_pool("db", timeout=math.nan)
    with pytest.raises(ConfigurationError, match="timeout"):
        await pool.close(timeout=-1)
    await pool.close(timeout=0)  # nothing runs: closes at once
    with pytest.raises(PoolClosed):
        await pool.query("db", "SELECT 1")


async def test_close_cancels_running_statements(tmp_path: Path) -> None:
    """close() stops what runs (its callers get PoolClosed) within its
    timeout; queued work fails with PoolClosed too."""
    pool = DatabasePool()
    await pool.create_pool("db", url="sqlite:///:memory:", max_size=1)
    running = asyncio.ensure_future(pool.query("db", ENDLESS))
    while pool.stats("db")["in_use"] == 0:
        await asyncio.sleep(0.005)
    queued = asyncio.ensure_future(pool.query("db", "SELECT 1"))
    await asyncio.sleep(0.05)
    elapsed = await took(pool.close(timeout=2))
    assert elapsed < 1.0, elapsed
    for task in (running, queued):
        with pytest.raises(PoolClosed):
            await task
