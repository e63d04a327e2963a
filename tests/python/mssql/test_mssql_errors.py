"""Errors: each SQL Server error class maps to its PEP 249 exception with
the server's number, state, class and text kept; login failures, lost
connections and the test server's fault modes leave the pool working."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from db_pool import (
    AuthenticationError,
    DatabasePool,
    DataError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)
from tests.tds_server import TdsTestServer

from .conftest import POOL_ID, Target, assert_healthy, series, wait_idle


async def test_login_failure_is_an_authentication_error(server: Target) -> None:
    async with DatabasePool() as pool:
        for kwargs in ({**server.kwargs(), "password": "wrong"},
                       {"url": server.url(password="wrong")},
                       {**server.kwargs(), "username": "no_such_login"}):
            with pytest.raises(AuthenticationError) as ei:
                await pool.create_pool("bad", **kwargs)
            e = ei.value
            assert (e.code, e.category, e.sqlstate) == (18456, "auth", "28000")
            assert "Login failed for user" in str(e) and "cannot log in" in str(e)


async def test_unknown_database_is_not_an_authentication_error(server: Target) -> None:
    """SQL Server's error 4060 and its text, as a server error."""
    async with DatabasePool() as pool:
        for kwargs in ({**server.kwargs(), "database": "no_such_db"},
                       {"url": server.url(database="no_such_db")}):
            with pytest.raises(OperationalError) as ei:
                await pool.create_pool("bad", **kwargs)
            e = ei.value
            assert not isinstance(e, AuthenticationError), e
            assert (e.code, e.category, e.sqlstate) == (4060, "server", "08004")
            assert 'Cannot open database "no_such_db"' in str(e)


async def test_unreachable_server_is_a_network_error(server: Target) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    async with DatabasePool() as pool:
        with pytest.raises(OperationalError) as ei:
            await pool.create_pool("bad", **{**server.kwargs(), "port": port, "login_timeout": 2})
    assert not isinstance(ei.value, AuthenticationError)
    assert (ei.value.category, ei.value.sqlstate, ei.value.code) == ("network", "08001", 20009)


async def test_syntax_error(ms: Any) -> None:
    with pytest.raises(ProgrammingError) as ei:
        await ms.query(POOL_ID, "SELEC 1")
    e = ei.value
    assert (e.code, e.sqlstate, e.category, e.engine) == (102, "42000", "server", "mssql")
    assert str(e) == "Incorrect syntax near 'SELEC'."
    # SQL Server sends class 15 for syntax errors, the test server 16
    assert re.match(r"SQL Server error 102, severity 1[56], state 1, line 1$", e.detail or "")
    await assert_healthy(ms)


async def test_unknown_object_through_rpc(ms: Any) -> None:
    with pytest.raises(ProgrammingError) as ei:
        await ms.execute(POOL_ID, "SELECT * FROM no_such_table WHERE a = @P1", [1])
    assert (ei.value.code, ei.value.sqlstate) == (208, "42S02")
    await assert_healthy(ms)


async def test_constraint_errors(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT PRIMARY KEY, v NVARCHAR(3) NOT NULL, c INT CHECK (c > 0))")
    await ms.execute(POOL_ID, f"INSERT INTO {table} VALUES (1, N'a', 1)")
    cases = [
        (f"INSERT INTO {table} VALUES (1, N'b', 1)", 2627),
        (f"INSERT INTO {table} (id) VALUES (2)", 515),
        (f"INSERT INTO {table} VALUES (3, N'c', -1)", 547),
    ]
    for sql, number in cases:
        with pytest.raises(IntegrityError) as ei:
            await ms.execute(POOL_ID, sql)
        assert (ei.value.code, ei.value.sqlstate) == (number, "23000"), sql
    with pytest.raises(DataError) as de:
        await ms.execute(POOL_ID, f"INSERT INTO {table} VALUES (@P1, @P2, 1)", [4, "toolong"])
    assert de.value.code in (2628, 8152)  # 8152 before SQL Server 2019
    assert (de.value.sqlstate, de.value.category) == ("22001", "data")
    assert "truncated" in str(de.value)
    df = await ms.query(POOL_ID, f"SELECT COUNT(*) AS n FROM {table}")
    assert df["n"].to_list() == [1]
    await assert_healthy(ms)


async def test_error_after_a_result_set_is_not_swallowed(ms: Any) -> None:
    with pytest.raises(ProgrammingError) as ei:
        await ms.query(POOL_ID, "SELECT 1 AS a; SELECT * FROM missing_too")
    assert ei.value.code == 208
    with pytest.raises(ProgrammingError):
        await ms.query(POOL_ID, "SELECT * FROM missing_first; SELECT 1 AS a")
    await assert_healthy(ms)


async def test_raiserror_keeps_number_state_and_class(ms: Any) -> None:
    with pytest.raises(ProgrammingError) as ei:
        await ms.execute(POOL_ID, "RAISERROR('custom %s', 16, 7, 'failure')")
    e = ei.value
    assert (e.code, str(e)) == (50000, "custom failure")
    assert e.detail is not None and "severity 16, state 7" in e.detail


# ---- the test server's fault modes --------------------------------------------------------


async def test_connection_dropped_mid_result(ams: DatabasePool, server: Target, tds: TdsTestServer) -> None:
    before = tds.stats.get("dropped_mid_result")
    tds.faults.drop_after_rows = 2000
    with pytest.raises(OperationalError) as ei:
        await ams.query(POOL_ID, series(server, 20000))
    assert ei.value.category == "network"
    assert tds.stats.get("dropped_mid_result") == before + 1
    tds.faults.drop_after_rows = None
    stats = await wait_idle(ams)
    assert stats["closed"] >= 1  # the broken connection was discarded
    await assert_healthy(ams)


async def test_connection_dropped_mid_stream(ams: DatabasePool, server: Target, tds: TdsTestServer) -> None:
    tds.faults.drop_after_rows = 3000
    got = 0
    with pytest.raises(OperationalError):
        async for batch in ams.stream(POOL_ID, series(server, 20000), batch_rows=500):
            got += batch.height
    assert 0 < got <= 3000
    tds.faults.drop_after_rows = None
    await assert_healthy(ams)


async def test_refused_logins(server: Target, tds: TdsTestServer) -> None:
    tds.faults.refuse_logins = True
    async with DatabasePool() as pool:
        with pytest.raises(AuthenticationError) as ei:
            await pool.create_pool("r", **server.kwargs())
        assert (ei.value.code, ei.value.category) == (18456, "auth")
        tds.faults.refuse_logins = False
        await pool.create_pool("r", **server.kwargs())
        assert (await pool.query("r", "SELECT 1 AS a"))["a"].to_list() == [1]


async def test_refused_connections(server: Target, tds: TdsTestServer) -> None:
    tds.faults.refuse_connections = True
    async with DatabasePool() as pool:
        with pytest.raises(OperationalError) as ei:
            await pool.create_pool("r", **server.kwargs(login_timeout=2))
        assert ei.value.category == "network"


async def test_pool_replaces_connections_lost_while_idle(server: Target, tds: TdsTestServer) -> None:
    """A connection that died idle is found by validation and replaced."""
    async with DatabasePool() as pool:
        await pool.create_pool("v", **server.kwargs(max_size=1, validate_after=0))
        assert (await pool.query("v", "SELECT 1 AS a"))["a"].to_list() == [1]
        tds.faults.drop_after_rows = 0  # the next result set drops the link...
        with pytest.raises(OperationalError):
            await pool.query("v", "SELECT 2 AS a")
        tds.faults.drop_after_rows = None
        assert (await pool.query("v", "SELECT 3 AS a"))["a"].to_list() == [3]
        assert pool.stats("v")["created"] == 2


# ---- cancel -----------------------------------------------------------------------------------


async def test_wait_for_sends_an_attention_and_keeps_the_connection(ams: DatabasePool, tds: TdsTestServer) -> None:
    acked = tds.stats.get("attentions_acknowledged")
    await wait_idle(ams)
    created = ams.stats(POOL_ID)["created"]
    tds.faults.delay_ms = 5000
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ams.query(POOL_ID, "SELECT 1 AS a"), 0.2)
    stats = await wait_idle(ams, timeout=5)
    assert time.monotonic() - start < 2.5  # the cancel takes effect within a poll (1 s)
    assert stats["cancelled"] >= 1
    tds.faults.delay_ms = 0
    assert tds.stats.get("attentions_acknowledged") >= acked + 1
    await assert_healthy(ams)
    stats = ams.stats(POOL_ID)
    assert stats["created"] == created and stats["closed"] == 0  # the same connection, still usable


@pytest.mark.parametrize("how", ["query", "query-params", "execute", "execute-params"])
async def test_cancel_waitfor(ams: DatabasePool, how: str) -> None:
    calls = {
        "query": lambda: ams.query(POOL_ID, "WAITFOR DELAY '00:00:10'; SELECT 1 AS a"),
        "query-params": lambda: ams.query(POOL_ID, "WAITFOR DELAY '00:00:10'; SELECT @P1 AS a", [1]),
        "execute": lambda: ams.execute(POOL_ID, "WAITFOR DELAY '00:00:10'"),
        "execute-params": lambda: ams.execute(POOL_ID, "WAITFOR DELAY '00:00:10'; SELECT @P1", [1]),
    }
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(calls[how](), 0.1)
    await wait_idle(ams, timeout=5)
    assert time.monotonic() - start < 2.5
    await assert_healthy(ams)
    assert ams.stats(POOL_ID)["closed"] == 0


async def test_cancel_inside_a_transaction_rolls_back(ams: DatabasePool, table: str) -> None:
    await ams.execute(POOL_ID, f"CREATE TABLE {table} (id INT)")

    async def work() -> None:
        async with ams.transaction(POOL_ID) as tx:
            await tx.execute(f"INSERT INTO {table} VALUES (1)")
            await tx.execute("WAITFOR DELAY '00:00:10'")

    task = asyncio.ensure_future(work())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(ams, timeout=5)
    df = await ams.query(POOL_ID, f"SELECT COUNT(*) AS n FROM {table}")
    assert df["n"].to_list() == [0]
    await assert_healthy(ams)


async def test_cancel_while_rows_stream_in(ams: DatabasePool, server: Target) -> None:
    task = asyncio.ensure_future(ams.query(POOL_ID, series(server, 2_000_000, ", 'wide padding text' AS t")))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(ams, timeout=10)
    await assert_healthy(ams)
