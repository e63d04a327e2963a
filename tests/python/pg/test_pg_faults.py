"""Network and server faults against a real PostgreSQL, through the fault
proxy (tests/faults/proxy.py) or by freezing the server: each test asserts
the exception class, how long the failure took to surface, that no
connection leaked, and that the pool works once the fault is gone.

The bound every test checks is the issue's: the call's deadline plus one
second. Time-to-error figures print with ``pytest -s`` (lines "fault:").
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import polars as pl
import pytest

from db_pool import (
    DatabasePool,
    OperationalError,
    OutcomeUnknown,
    PoolClosed,
    QueryTimeout,
    TimeoutOutcomeUnknown,
)

from .conftest import POOL_ID, assert_healthy, pool_kwargs, wait_idle

from faults.bounds import SLACK, fails_within, report  # noqa: E402
from faults.keepalive import keepalives_towards  # noqa: E402
from faults.proxy import FaultProxy  # noqa: E402  (tests/ is on sys.path: see conftest)



@pytest.fixture
def proxy(pg_server: Any) -> Iterator[FaultProxy]:
    with FaultProxy(pg_server.host, pg_server.port) as p:
        yield p


@pytest.fixture
async def pool(pg_server: Any, schema: str, proxy: FaultProxy) -> AsyncIterator[DatabasePool]:
    """The pool "pg" through the proxy: max_size 4, cancel_grace 1 s."""
    p = DatabasePool()
    kwargs = pool_kwargs(pg_server, schema, max_size=4, cancel_grace=1)
    kwargs.update(host="127.0.0.1", port=proxy.port)
    await p.create_pool(POOL_ID, **kwargs)
    try:
        yield p
    finally:
        proxy.pass_through()
        await p.close(timeout=5)






async def recovered(pool: DatabasePool, proxy: FaultProxy) -> None:
    """The fault is gone: no leaked connection, and queries work again."""
    proxy.pass_through()
    await wait_idle(pool, timeout=5)
    await assert_healthy(pool)


async def test_blackhole_mid_query(pool: DatabasePool, proxy: FaultProxy) -> None:
    await pool.query(POOL_ID, "SELECT 1 AS one")
    task = asyncio.ensure_future(pool.query(POOL_ID, "SELECT pg_sleep(0.3) AS s", timeout=1))
    await asyncio.sleep(0.1)
    proxy.blackhole()
    exc, took = await fails_within(1 + SLACK, QueryTimeout, task)
    assert not isinstance(exc, OutcomeUnknown)  # a read
    assert exc.sqlstate == "57014"
    report("blackhole mid-query (timeout=1)", took)
    stats = pool.stats(POOL_ID)
    assert stats["query_timeouts"] == 1 and stats["abandoned"] == 1, stats
    await recovered(pool, proxy)


async def test_blackhole_mid_stream(pool: DatabasePool, proxy: FaultProxy) -> None:
    sql = "SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 500000) g"
    start = time.monotonic()
    batches = 0

    async def consume() -> None:
        nonlocal batches
        async for _ in pool.stream(POOL_ID, sql, batch_rows=1000, timeout=1.5):
            batches += 1
            if batches == 1:
                proxy.blackhole()

    _, took = await fails_within(1.5 + SLACK, QueryTimeout, consume())
    assert batches >= 1
    report("blackhole mid-stream (timeout=1.5 for the stream)", time.monotonic() - start)
    await recovered(pool, proxy)


async def test_blackhole_mid_commit(pool: DatabasePool, proxy: FaultProxy, admin: Any) -> None:
    """A COMMIT whose answer never comes: the outcome is unknown, and the
    error says so while still being a QueryTimeout."""
    admin.execute("CREATE TABLE t (a int)")

    async def transaction() -> None:
        async with pool.transaction(POOL_ID, timeout=1) as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
            proxy.blackhole()

    exc, took = await fails_within(1 + SLACK, TimeoutOutcomeUnknown, transaction())
    assert isinstance(exc, QueryTimeout) and isinstance(exc, OutcomeUnknown)
    assert exc.sqlstate == "08007"
    report("blackhole mid-COMMIT (timeout=1)", took)
    await recovered(pool, proxy)
    # the held COMMIT reached the server once the link came back: that is
    # why the outcome was unknown
    assert admin.execute("SELECT count(*) FROM t").fetchone()[0] in (0, 1)


async def test_blackhole_mid_write_frame(pool: DatabasePool, proxy: FaultProxy, admin: Any) -> None:
    admin.execute("CREATE TABLE w (a int, b text)")
    n = 2_000_000
    frame = pl.DataFrame({"a": range(n), "b": ["row"] * n})
    task = asyncio.ensure_future(pool.write_frame(POOL_ID, frame, "w", timeout=1))
    await asyncio.sleep(0.05)
    proxy.blackhole()
    exc, took = await fails_within(1 + SLACK, QueryTimeout, task)
    assert isinstance(exc, OutcomeUnknown)  # a write whose cancel nobody confirmed
    report("blackhole mid-write_frame (timeout=1)", took)
    await recovered(pool, proxy)
    assert admin.execute("SELECT count(*) FROM w").fetchone()[0] in (0, n)  # all or nothing


async def test_blackhole_during_connect(pg_server: Any, schema: str, proxy: FaultProxy) -> None:
    """A server that accepts and never answers the login: connect_timeout."""
    pool = DatabasePool()
    kwargs = pool_kwargs(pg_server, schema, min_size=0, connect_timeout=1)
    kwargs.update(host="127.0.0.1", port=proxy.port)
    await pool.create_pool(POOL_ID, **kwargs)
    try:
        proxy.blackhole()
        exc, took = await fails_within(1 + SLACK, OperationalError, pool.query(POOL_ID, "SELECT 1"))
        assert exc.category == "network" and "connect_timeout" in str(exc)
        report("blackhole during connect (connect_timeout=1)", took)
        await recovered(pool, proxy)
    finally:
        await pool.close(timeout=5)


async def test_statement_timeout_is_cancelled_on_the_server(pool: DatabasePool, admin: Any) -> None:
    """No fault at all: a slow statement past its timeout is cancelled by
    the server (confirmed), so its connection is kept."""
    exc, took = await fails_within(
        0.5 + SLACK, QueryTimeout, pool.query(POOL_ID, "SELECT pg_sleep(5) AS s", timeout=0.5)
    )
    assert not isinstance(exc, OutcomeUnknown) and "timeout=500 ms" in str(exc)
    report("slow statement (timeout=0.5), cancel confirmed", took)
    assert not admin.execute(
        "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5)%'").fetchall()
    stats = await wait_idle(pool)
    assert stats["abandoned"] == 0 and stats["query_timeouts"] == 1, stats
    created = stats["created"]
    await assert_healthy(pool)
    assert pool.stats(POOL_ID)["created"] == created  # the connection was kept


async def test_slow_drip_of_a_result(pool: DatabasePool, proxy: FaultProxy) -> None:
    proxy.drip(20_000)
    sql = "SELECT g, repeat('y', 200) AS pad FROM generate_series(1, 20000) g"
    _, took = await fails_within(1 + SLACK, QueryTimeout, pool.query(POOL_ID, sql, timeout=1))
    report("slow drip of a result (timeout=1)", took)
    await recovered(pool, proxy)


async def test_drop_after_bytes(pool: DatabasePool, proxy: FaultProxy) -> None:
    await pool.query(POOL_ID, "SELECT 1 AS one")
    proxy.drop_after(5000)
    sql = "SELECT g, repeat('z', 200) AS pad FROM generate_series(1, 20000) g"
    exc, took = await fails_within(SLACK, OperationalError, pool.query(POOL_ID, sql))
    assert exc.category == "network", exc
    report("connection dropped after 5000 bytes of a result (no timeout)", took)
    await recovered(pool, proxy)


async def test_reset_mid_query(pool: DatabasePool, proxy: FaultProxy) -> None:
    task = asyncio.ensure_future(pool.query(POOL_ID, "SELECT pg_sleep(2) AS s"))
    await asyncio.sleep(0.2)
    proxy.reset()
    exc, took = await fails_within(SLACK, OperationalError, task)
    assert exc.category == "network", exc
    report("connection reset mid-query (no timeout)", took)
    await recovered(pool, proxy)


def server_pids(server: Any) -> list[int]:
    """The postmaster and its children."""
    postmaster = int((Path(server.data_dir) / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            pids.append(int(stat.parent.name))
    return pids


async def test_frozen_server(private_server: Any, schema: str) -> None:
    """SIGSTOP on every server process: nothing answers, not even the cancel
    request; the call ends on its deadline, and once the server is thawed
    the pool works (the cancel thread, stuck until then, ends too)."""
    pool = DatabasePool()
    await pool.create_pool(POOL_ID, **pool_kwargs(private_server, schema, max_size=2,
                                                  cancel_grace=1))
    threads = threading.active_count()
    pids = server_pids(private_server)
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        exc, took = await fails_within(
            1 + SLACK, QueryTimeout, pool.query(POOL_ID, "SELECT 1 AS one", timeout=1))
        report("frozen server (SIGSTOP, timeout=1)", took)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    await wait_idle(pool, timeout=5)
    await assert_healthy(pool)
    await pool.close(timeout=5)
    deadline = time.monotonic() + 5
    while threading.active_count() > threads and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert threading.active_count() <= threads


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_cancel_storm_under_blackhole(pg_server: Any, schema: str, proxy: FaultProxy) -> None:
    """1,000 queries cancelled at random points while the link is a black
    hole: every cancel returns at once, every caller is answered, and once
    the link is back the pool is whole, with no thread or fd left over."""
    pool = DatabasePool()
    kwargs = pool_kwargs(pg_server, schema, max_size=8, cancel_grace=0.5, connect_timeout=2)
    kwargs.update(host="127.0.0.1", port=proxy.port)
    await pool.create_pool(POOL_ID, **kwargs)
    await pool.query(POOL_ID, "SELECT 1 AS one")
    threads, fds = threading.active_count(), open_fds()
    rng = random.Random(7)
    try:
        proxy.blackhole()
        tasks = [asyncio.ensure_future(pool.query(POOL_ID, f"SELECT {i} AS i")) for i in range(1000)]
        slowest = 0.0
        for task in tasks:
            await asyncio.sleep(rng.random() * 0.002)
            start = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            slowest = max(slowest, time.monotonic() - start)
        assert slowest < 0.5, slowest  # cancel_grace
        report("1000 cancels under a black hole: slowest cancel", slowest)
        proxy.pass_through()
        await wait_idle(pool, timeout=10)
        await assert_healthy(pool)
    finally:
        proxy.pass_through()
        await pool.close(timeout=5)
    deadline = time.monotonic() + 10
    while (threading.active_count() > threads or open_fds() > fds) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert threading.active_count() <= threads
    assert open_fds() <= fds


SIGINT_SCRIPT = """
import sys, time
from db_pool import SyncDatabasePool
pool = SyncDatabasePool()
pool.create_pool("p", db_type="postgresql", host="127.0.0.1", port=int(sys.argv[1]),
                 database=sys.argv[2], username=sys.argv[3], password=sys.argv[4])
pool.query("p", "SELECT 1 AS one")
print("ready", flush=True)
try:
    pool.query("p", "SELECT pg_sleep(60) AS s")
except KeyboardInterrupt:
    print("interrupted", flush=True)
pool.close(timeout=1)
"""


def test_sigint_interrupts_sync_call_on_frozen_link(pg_server: Any, proxy: FaultProxy, tmp_path: Path) -> None:
    """Ctrl-C reaches a synchronous call stuck on a link that answers
    nothing within a second, and the statement is cancelled."""
    script = tmp_path / "sigint.py"
    script.write_text(SIGINT_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(proxy.port), pg_server.database, pg_server.user,
         pg_server.password],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        proxy.blackhole()
        time.sleep(0.2)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline().strip()
        took = time.monotonic() - start
        assert line == "interrupted", (line, proc.stderr.read() if proc.stderr else "")
        assert took < 1.0, took
        report("SIGINT on a sync call over a black hole", took)
        proxy.pass_through()
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


async def test_close_with_stuck_connections_is_bounded(pg_server: Any, schema: str, proxy: FaultProxy) -> None:
    """close() with 10 connections stuck on a dead link returns within its
    timeout, every caller gets PoolClosed, and the event loop keeps serving
    other tasks meanwhile."""
    pool = DatabasePool()
    kwargs = pool_kwargs(pg_server, schema, min_size=10, max_size=10)
    kwargs.update(host="127.0.0.1", port=proxy.port)
    await pool.create_pool(POOL_ID, **kwargs)
    tasks = [asyncio.ensure_future(pool.query(POOL_ID, "SELECT pg_sleep(30) AS s"))
             for _ in range(10)]
    while pool.stats(POOL_ID)["in_use"] < 10:
        await asyncio.sleep(0.01)
    proxy.blackhole()
    lag = 0.0
    stop = False

    async def ticker() -> None:
        nonlocal lag
        while not stop:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lag = max(lag, time.monotonic() - before - 0.01)

    tick = asyncio.ensure_future(ticker())
    start = time.monotonic()
    await pool.close(timeout=1)
    took = time.monotonic() - start
    stop = True
    await tick
    assert took < 1 + 0.5, took
    for task in tasks:
        with pytest.raises(PoolClosed):
            await task
    assert lag < 0.1, lag
    report(f"close(timeout=1) with 10 stuck connections (loop lag {lag * 1000:.0f} ms)", took)
    proxy.pass_through()


async def test_down_endpoint_shows_in_stats_and_comes_back_alone(pg_server: Any, schema: str,
                                                                 proxy: FaultProxy) -> None:
    """While the server refuses connections stats() says so, with the error
    and since when; once it accepts again the pool reopens min_size
    connections by itself and says it is up, with no query needed."""
    pool = DatabasePool()
    kwargs = pool_kwargs(pg_server, schema, min_size=2, max_size=2)
    kwargs.update(host="127.0.0.1", port=proxy.port)
    await pool.create_pool(POOL_ID, **kwargs)
    try:
        proxy.refuse()
        proxy.reset()
        before = time.time()
        with pytest.raises(OperationalError) as info:
            await pool.query(POOL_ID, "SELECT 1 AS one")
        assert info.value.category == "network"
        (ep,) = pool.stats(POOL_ID)["endpoints"]
        assert ep["health"] == "down" and "refused" in ep["last_error"], ep
        assert before - 1 <= ep["health_since"] <= time.time()
        proxy.pass_through()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stats = pool.stats(POOL_ID)
            if stats["endpoints"][0]["health"] == "up" and stats["idle"] == 2:
                break
            await asyncio.sleep(0.05)
        assert stats["endpoints"][0]["health"] == "up" and stats["idle"] == 2, stats
        await assert_healthy(pool)
    finally:
        proxy.pass_through()
        await pool.close(timeout=5)


async def test_connections_probe_a_silent_peer_after_10_s(pool: DatabasePool,
                                                         proxy: FaultProxy) -> None:
    """libpq's keepalives as the driver sets them by default (10 s idle, 3
    probes 5 s apart; docs/timeouts.md). Only the pool connects to the proxy."""
    await pool.query(POOL_ID, "SELECT 1 AS one")
    timers = keepalives_towards(proxy.port)
    assert timers and all(t is not None and 0 < t <= 10.5 for t in timers), timers

