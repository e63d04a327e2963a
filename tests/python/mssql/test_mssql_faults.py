"""Network faults between FreeTDS and the TDS test server, through the
fault proxy (tests/faults/proxy.py): each test asserts the exception class,
how long the failure took to surface (the call's deadline plus one second),
that no connection leaked, and that the pool works once the fault is gone.
Time-to-error figures print with ``pytest -s`` (lines "fault:")."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Iterator

import pytest

from db_pool import (
    DatabasePool,
    OperationalError,
    OutcomeUnknown,
    PoolClosed,
    QueryTimeout,
    TimeoutOutcomeUnknown,
)

from .conftest import POOL_ID, Target, assert_healthy, wait_idle

from tests.faults.bounds import SLACK, fails_within, report  # noqa: E402
from tests.faults.keepalive import keepalives_towards  # noqa: E402
from tests.faults.proxy import FaultProxy  # noqa: E402  (the repository root is on sys.path)



@pytest.fixture
def proxy(server: Target) -> Iterator[FaultProxy]:
    if server.tds is None:
        pytest.skip("the fault proxy tests run against the TDS test server")
    with FaultProxy(server.host, server.port) as p:
        yield p


@pytest.fixture
async def pool(server: Target, proxy: FaultProxy) -> AsyncIterator[DatabasePool]:
    p = DatabasePool()
    kwargs = server.kwargs(max_size=2, cancel_grace=1)
    kwargs.update(host="127.0.0.1", port=proxy.port)
    await p.create_pool(POOL_ID, **kwargs)
    try:
        yield p
    finally:
        proxy.pass_through()
        await p.close(timeout=5)






async def recovered(pool: DatabasePool, proxy: FaultProxy) -> None:
    proxy.pass_through()
    await wait_idle(pool, timeout=10)
    await assert_healthy(pool)


async def test_statement_timeout_sends_an_attention(pool: DatabasePool) -> None:
    """No fault: a slow batch past its timeout is stopped by an attention the
    server confirms, so the connection is kept."""
    _, took = await fails_within(
        1 + SLACK, QueryTimeout, pool.query(POOL_ID, "WAITFOR DELAY '00:00:10'; SELECT 1 AS a",
                                            timeout=1))
    report("mssql: slow batch (timeout=1), attention confirmed", took)
    stats = await wait_idle(pool)
    assert stats["query_timeouts"] == 1, stats
    await assert_healthy(pool)


async def test_blackhole_mid_query(pool: DatabasePool, proxy: FaultProxy) -> None:
    await pool.query(POOL_ID, "SELECT 1 AS a")
    task = asyncio.ensure_future(
        pool.query(POOL_ID, "WAITFOR DELAY '00:00:00.300'; SELECT 1 AS a", timeout=1))
    await asyncio.sleep(0.1)
    proxy.blackhole()
    exc, took = await fails_within(1 + SLACK, QueryTimeout, task)
    assert not isinstance(exc, OutcomeUnknown)
    report("mssql: blackhole mid-query (timeout=1)", took)
    await recovered(pool, proxy)


async def test_blackhole_mid_execute_is_outcome_unknown(pool: DatabasePool, proxy: FaultProxy) -> None:
    task = asyncio.ensure_future(
        pool.execute(POOL_ID, "WAITFOR DELAY '00:00:00.300'", timeout=1))
    await asyncio.sleep(0.1)
    proxy.blackhole()
    exc, took = await fails_within(1 + SLACK, QueryTimeout, task)
    assert isinstance(exc, OutcomeUnknown)
    report("mssql: blackhole mid-execute (timeout=1)", took)
    await recovered(pool, proxy)


async def test_reset_mid_query(pool: DatabasePool, proxy: FaultProxy) -> None:
    task = asyncio.ensure_future(pool.query(POOL_ID, "WAITFOR DELAY '00:00:02'; SELECT 1 AS a"))
    await asyncio.sleep(0.2)
    proxy.reset()
    exc, took = await fails_within(SLACK + 1, OperationalError, task)
    assert exc.category == "network", exc
    report("mssql: connection reset mid-query (no timeout)", took)
    await recovered(pool, proxy)


async def test_close_with_stuck_connections_is_bounded(server: Target, proxy: FaultProxy) -> None:
    pool = DatabasePool()
    kwargs = server.kwargs(min_size=2, max_size=2)
    kwargs.update(host="127.0.0.1", port=proxy.port)
    await pool.create_pool(POOL_ID, **kwargs)
    tasks = [asyncio.ensure_future(pool.query(POOL_ID, "WAITFOR DELAY '00:00:30'; SELECT 1 AS a"))
             for _ in range(2)]
    while pool.stats(POOL_ID)["in_use"] < 2:
        await asyncio.sleep(0.01)
    proxy.blackhole()
    start = time.monotonic()
    await pool.close(timeout=1)
    took = time.monotonic() - start
    assert took < 1.5, took
    for task in tasks:
        with pytest.raises(PoolClosed):
            await task
    report("mssql: close(timeout=1) with 2 stuck connections", took)
    proxy.pass_through()


async def test_blackhole_mid_commit(pool: DatabasePool, proxy: FaultProxy, table: str) -> None:
    await pool.execute(POOL_ID, f"CREATE TABLE {table} (a int)")

    async def transaction() -> None:
        async with pool.transaction(POOL_ID, timeout=1) as tx:
            await tx.execute(f"INSERT INTO {table} VALUES (1)")
            proxy.blackhole()

    _, took = await fails_within(1 + SLACK, TimeoutOutcomeUnknown, transaction())
    report("mssql: blackhole mid-COMMIT (timeout=1)", took)
    await recovered(pool, proxy)


async def test_blackhole_during_connect(server: Target, proxy: FaultProxy) -> None:
    """db-lib's login cannot be interrupted; its timeout follows connect_timeout."""
    pool = DatabasePool()
    kwargs = server.kwargs(min_size=0, connect_timeout=1)
    kwargs.update(host="127.0.0.1", port=proxy.port)
    await pool.create_pool(POOL_ID, **kwargs)
    try:
        proxy.blackhole()
        exc, took = await fails_within(1 + SLACK, OperationalError, pool.query(POOL_ID, "SELECT 1 AS a"))
        report("mssql: blackhole during connect (connect_timeout=1)", took)
        await recovered(pool, proxy)
    finally:
        await pool.close(timeout=5)


async def test_drop_after_bytes(pool: DatabasePool, proxy: FaultProxy, server: Target) -> None:
    from .conftest import series  # noqa: PLC0415

    await pool.query(POOL_ID, "SELECT 1 AS a")
    proxy.drop_after(3000)
    exc, took = await fails_within(SLACK, OperationalError,
                                   pool.query(POOL_ID, series(server, 5000, ", REPLICATE('z', 100) AS pad")))
    assert exc.category == "network", exc
    report("mssql: connection dropped after 3000 bytes of a result (no timeout)", took)
    await recovered(pool, proxy)


async def test_restart_while_idle_costs_no_errors(server: Target, proxy: FaultProxy) -> None:
    """Every idle connection dies at once (reset by the proxy, as a server
    restart does): the next queries see no error, because a dead idle
    connection is found without a round trip and replaced."""
    pool = DatabasePool()
    kwargs = server.kwargs(min_size=3, max_size=3)
    kwargs.update(host="127.0.0.1", port=proxy.port)
    await pool.create_pool(POOL_ID, **kwargs)
    try:
        await asyncio.gather(*(pool.query(POOL_ID, "WAITFOR DELAY '00:00:00.050'; SELECT 1 AS a")
                               for _ in range(3)))
        proxy.reset()
        await asyncio.sleep(0.05)
        for _ in range(20):
            assert (await pool.query(POOL_ID, "SELECT 1 AS a")).item() == 1
        assert pool.stats(POOL_ID)["validation_failures"] >= 1
        await assert_healthy(pool)
    finally:
        await pool.close(timeout=5)


async def test_connections_probe_a_silent_peer_after_10_s(pool: DatabasePool,
                                                         proxy: FaultProxy) -> None:
    """db-lib sets no keepalive: the driver does (dbp_tcp_keepalive), as for
    every engine. Only the pool connects to the proxy's port."""
    await pool.query(POOL_ID, "SELECT 1 AS one")
    timers = keepalives_towards(proxy.port)
    assert timers and all(t is not None and 0 < t <= 10.5 for t in timers), timers

