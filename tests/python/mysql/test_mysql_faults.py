"""Network and server faults against a real MariaDB, through the fault
proxy (tests/faults/proxy.py) or by freezing, restarting and filling the
server: each test asserts the exception, how long the failure took to
surface (the call's deadline plus one second of slack), and that the pool
works once the fault is gone. ``pytest -s`` prints "fault:" lines."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Iterator

import pytest

from db_pool import DatabasePool, OperationalError, QueryTimeout
from faults.bounds import SLACK, fails_within, report
from faults.keepalive import keepalive_seconds
from faults.proxy import FaultProxy
from mysql_server import MysqlServer

POOL = "my"


def settings(server: MysqlServer, port: int | None = None) -> dict[str, object]:
    return {"db_type": "mysql", "host": "127.0.0.1", "port": port or server.port,
            "username": server.user, "password": server.password, "database": server.database}


@pytest.fixture
def proxy(mysql_server: MysqlServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", mysql_server.port) as p:
        yield p


@pytest.fixture
async def pool(mysql_server: MysqlServer, proxy: FaultProxy) -> AsyncIterator[DatabasePool]:
    """The pool through the proxy: max_size 4, cancel_grace 1 s."""
    p = DatabasePool()
    await p.create_pool(POOL, **settings(mysql_server, proxy.port), max_size=4, cancel_grace=1,
                        connect_timeout=2)
    try:
        yield p
    finally:
        proxy.pass_through()
        await p.close(timeout=5)


async def recovered(pool: DatabasePool, proxy: FaultProxy | None = None) -> None:
    """The fault is gone: no connection left in use, and queries work."""
    if proxy is not None:
        proxy.pass_through()
    deadline = time.monotonic() + 5
    while pool.stats(POOL)["in_use"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert pool.stats(POOL)["in_use"] == 0
    for i in range(3):
        assert (await pool.query(POOL, "SELECT ? AS i", [i]))["i"][0] == i


async def test_blackhole_mid_query(pool: DatabasePool, proxy: FaultProxy) -> None:
    await pool.query(POOL, "SELECT 1 AS one")
    task = asyncio.ensure_future(pool.query(POOL, "SELECT SLEEP(0.3) AS s", timeout=1))
    await asyncio.sleep(0.1)
    proxy.blackhole()  # the KILL goes through the proxy too: nothing confirms it
    _, took = await fails_within(1 + SLACK, QueryTimeout, task)
    report("mysql blackhole mid-query (timeout=1)", took)
    await recovered(pool, proxy)


async def test_blackhole_mid_stream(pool: DatabasePool, proxy: FaultProxy) -> None:
    batches = 0

    async def consume() -> None:
        nonlocal batches
        async for _ in pool.stream(POOL, "SELECT seq, REPEAT('x', 100) AS pad "
                                   "FROM seq_1_to_5000000", batch_rows=1000, timeout=1.5):
            batches += 1
            if batches == 1:
                proxy.blackhole()

    _, took = await fails_within(1.5 + SLACK, QueryTimeout, consume())
    assert batches >= 1
    report("mysql blackhole mid-stream (timeout=1.5)", took)
    await recovered(pool, proxy)


async def test_blackhole_during_connect(mysql_server: MysqlServer, proxy: FaultProxy) -> None:
    pool = DatabasePool()
    await pool.create_pool(POOL, **settings(mysql_server, proxy.port), min_size=0,
                           connect_timeout=1)
    try:
        proxy.blackhole()
        exc, took = await fails_within(1 + SLACK, OperationalError, pool.query(POOL, "SELECT 1"))
        report("mysql blackhole during connect (connect_timeout=1)", took)
        await recovered(pool, proxy)
    finally:
        await pool.close(timeout=5)


async def test_drop_after_bytes(pool: DatabasePool, proxy: FaultProxy) -> None:
    await pool.query(POOL, "SELECT 1 AS one")
    proxy.drop_after(5000)
    exc, took = await fails_within(SLACK, OperationalError, pool.query(
        POOL, "SELECT seq, REPEAT('z', 200) AS pad FROM seq_1_to_20000"))
    assert exc.category == "network", exc
    report("mysql connection dropped after 5000 bytes of a result", took)
    await recovered(pool, proxy)


async def test_reset_mid_query(pool: DatabasePool, proxy: FaultProxy) -> None:
    await pool.query(POOL, "SELECT 1 AS one")
    task = asyncio.ensure_future(pool.query(POOL, "SELECT SLEEP(2) AS s"))
    await asyncio.sleep(0.2)
    proxy.reset()
    exc, took = await fails_within(SLACK, OperationalError, task)
    assert exc.category == "network", exc
    report("mysql connection reset mid-query", took)
    await recovered(pool, proxy)


async def test_frozen_server(mysql_private_server: MysqlServer) -> None:
    """SIGSTOP on the server: nothing answers, not even the KILL's login;
    the call ends on its deadline and the pool works once it is thawed."""
    pool = DatabasePool()
    await pool.create_pool(POOL, **settings(mysql_private_server), max_size=2, cancel_grace=1)
    try:
        await pool.query(POOL, "SELECT 1 AS one")
        mysql_private_server.freeze()
        try:
            _, took = await fails_within(1 + SLACK, QueryTimeout,
                                         pool.query(POOL, "SELECT 1 AS one", timeout=1))
            report("mysql frozen server (SIGSTOP, timeout=1)", took)
        finally:
            mysql_private_server.thaw()
        await recovered(pool)
    finally:
        await pool.close(timeout=5)


async def test_server_restart_is_survived_by_reads(mysql_private_server: MysqlServer) -> None:
    """The idle connections die with the server; a read afterwards finds a
    fresh one (or runs again on one), without an error."""
    pool = DatabasePool()
    await pool.create_pool(POOL, **settings(mysql_private_server), max_size=2, min_size=2)
    try:
        await pool.query(POOL, "SELECT 1 AS one")
        mysql_private_server.restart()
        for i in range(5):
            assert (await pool.query(POOL, "SELECT ? AS i", [i]))["i"][0] == i
    finally:
        await pool.close(timeout=5)


async def test_max_connections_reached_is_a_typed_error(mysql_private_server: MysqlServer
                                                        ) -> None:
    mysql_private_server.sql("SET GLOBAL max_connections = 10")  # MariaDB's least
    pool = DatabasePool()
    try:
        await pool.create_pool(POOL, **settings(mysql_private_server), max_size=16, min_size=0,
                               acquire_timeout=5)
        holders = [asyncio.ensure_future(pool.query(POOL, "SELECT SLEEP(1) AS s"))
                   for _ in range(14)]
        results = await asyncio.gather(*holders, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors, "the server refused no connection"
        assert all(isinstance(e, OperationalError) and e.code == 1040 for e in errors), errors
        assert "Too many connections" in str(errors[0])
    finally:
        mysql_private_server.sql("SET GLOBAL max_connections = 100")
        await pool.close(timeout=5)


async def test_deadlock_carries_its_code_for_a_retry(mysql_dsn: str, table_name: str) -> None:
    pool = await DatabasePool.from_config({"pools": {POOL: {"url": mysql_dsn}}})
    try:
        await pool.execute(POOL, f"CREATE TABLE {table_name} (id INT PRIMARY KEY, v INT)")
        await pool.execute(POOL, f"INSERT INTO {table_name} VALUES (1, 0), (2, 0)")
        first_locked = asyncio.Event()
        second_locked = asyncio.Event()

        async def worker(a: int, b: int, mine: asyncio.Event, theirs: asyncio.Event) -> None:
            async with pool.transaction(POOL) as tx:
                await tx.execute(f"UPDATE {table_name} SET v = v + 1 WHERE id = ?", [a])
                mine.set()
                await theirs.wait()
                await tx.execute(f"UPDATE {table_name} SET v = v + 1 WHERE id = ?", [b])

        results = await asyncio.wait_for(asyncio.gather(
            worker(1, 2, first_locked, second_locked), worker(2, 1, second_locked, first_locked),
            return_exceptions=True), 30)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], OperationalError), results
        assert errors[0].code == 1213 and errors[0].sqlstate == "40001"
    finally:
        await pool.close(timeout=5)


async def test_connections_probe_a_silent_peer_after_10_s(mysql_server: MysqlServer) -> None:
    """The connector sets no keepalive: the driver does, as for the other
    engines (10 s idle, 3 probes 5 s apart, TCP_USER_TIMEOUT 30 s)."""
    async with DatabasePool() as pool:
        await pool.create_pool("k", **settings(mysql_server), min_size=1, max_size=1)
        df = await pool.query("k", "SELECT host FROM information_schema.processlist "
                                   "WHERE id = CONNECTION_ID()")
        local_port = int(str(df["host"][0]).rsplit(":", 1)[1])
        timer = keepalive_seconds(local_port)
        assert timer is not None and 0 < timer <= 10.5, timer

