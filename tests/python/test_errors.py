"""Typed errors with engine/code/sqlstate; after each one the pool holds no
leaked connection and still works."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from db_pool import (
    ConfigurationError,
    DatabaseError,
    DatabasePool,
    DataError,
    Error,
    IntegrityError,
    OperationalError,
    PoolClosed,
    PoolExists,
    PoolFull,
    PoolNotFound,
    PoolTimeout,
    ProgrammingError,
    SyncDatabasePool,
)

from conftest import assert_healthy, sqlite_url, wait_idle, wait_idle_sync


def test_every_error_has_the_attributes() -> None:
    for cls in (Error, DatabaseError, PoolClosed, ConfigurationError):
        err = cls("x")
        assert (err.engine, err.code, err.sqlstate, err.category) == (None, None, None, None)


async def test_unknown_db_type(api: Any) -> None:
    with pytest.raises(ConfigurationError, match="sqlite") as info:
        await api.create_pool("x", db_type="oracle", database="x")
    assert "oracle" in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ConfigurationError, match="supports: .*sqlite"):
        await api.create_pool("x", url="oracle://host/db")
    assert api.list_pools() == []


async def test_unknown_pool_id(mem: Any) -> None:
    with pytest.raises(PoolNotFound) as info:
        await mem.query("nope", "SELECT 1")
    assert str(info.value) == "no pool named 'nope'"
    assert isinstance(info.value, KeyError)
    with pytest.raises(PoolNotFound):
        await mem.execute("nope", "SELECT 1")
    with pytest.raises(PoolNotFound):
        mem.stats("nope")
    with pytest.raises(PoolNotFound):
        await mem.close_pool("nope")
    with pytest.raises(PoolNotFound):
        async with mem.transaction("nope"):
            pass
    await assert_healthy(mem, "db")


async def test_duplicate_pool_id(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE keep (a INTEGER)")
    with pytest.raises(PoolExists, match="'db'") as info:
        await mem.create_pool("db", url="sqlite:///:memory:")
    assert info.value.engine == "sqlite"
    assert mem.list_pools() == ["db"]
    # the original pool (and its in-memory database) is untouched
    assert (await mem.query("db", "SELECT count(*) FROM keep")).item() == 0
    await assert_healthy(mem, "db")


async def test_wrong_parameter_count(mem: Any) -> None:
    with pytest.raises(ProgrammingError, match=r"1 parameter\(s\) but 2 were given") as info:
        await mem.query("db", "SELECT ?", [1, 2])
    assert info.value.engine == "sqlite"
    with pytest.raises(ProgrammingError, match=r"2 parameter\(s\) but 0"):
        await mem.query("db", "SELECT ?, ?")
    with pytest.raises(ProgrammingError, match="':b'"):
        await mem.query("db", "SELECT :a, :b", {"a": 1, "c": 2})
    with pytest.raises(ProgrammingError, match="positional"):
        await mem.query("db", "SELECT ?", {"a": 1})
    with pytest.raises(ProgrammingError, match="sequence"):
        await mem.query("db", "SELECT ?", "a")
    with pytest.raises(ProgrammingError, match="row 1"):
        await mem.execute_many("db", "SELECT ?", [[1], [1, 2]])
    await assert_healthy(mem, "db")


async def test_unsupported_parameter_type(mem: Any) -> None:
    with pytest.raises(ProgrammingError, match="parameter 2: values of type 'object'"):
        await mem.query("db", "SELECT ?, ?", [1, object()])
    with pytest.raises(ProgrammingError, match="parameter ':x': SQLite has no type for an array"):
        await mem.query("db", "SELECT :x", {"x": [1]})
    with pytest.raises(ProgrammingError, match="time zone"):
        import datetime as dt

        await mem.query("db", "SELECT ?", [dt.time(1, tzinfo=dt.timezone.utc)])
    with pytest.raises(DataError, match="NaN"):
        from decimal import Decimal

        await mem.query("db", "SELECT ?", [Decimal("NaN")])
    await assert_healthy(mem, "db")


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
async def test_int_out_of_64_bit_range(mem: Any, value: int) -> None:
    with pytest.raises(DataError, match="parameter 1: integer out of the 64-bit range"):
        await mem.query("db", "SELECT ?", [value])
    with pytest.raises(DataError, match="parameter 'v'"):
        await mem.execute_many("db", "SELECT :v", [{"v": 1}, {"v": value}])
    await assert_healthy(mem, "db")


async def test_invalid_sql(mem: Any) -> None:
    with pytest.raises(ProgrammingError) as info:
        await mem.query("db", "SELEC 1")
    err = info.value
    assert 'near "SELEC": syntax error' in str(err)
    assert (err.engine, err.sqlstate, err.code) == ("sqlite", "42000", 1)
    with pytest.raises(ProgrammingError, match="no such table: missing") as info:
        await mem.execute("db", "DELETE FROM missing WHERE a = ?", [1])
    assert info.value.sqlstate == "42000"
    with pytest.raises(ProgrammingError, match="no such column"):
        await mem.execute("db", "SELECT nope")  # a script, compiled statement by statement
    with pytest.raises(ProgrammingError, match="more than one statement") as info:
        await mem.execute("db", "SELECT ?; SELECT 2", [1])
    assert info.value.sqlstate == "42000"
    await assert_healthy(mem, "db")


async def test_constraint_violation(mem: Any) -> None:
    await mem.execute(
        "db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE, p INTEGER REFERENCES t(id))"
    )
    await mem.execute("db", "INSERT INTO t VALUES (1, 'a', NULL)")
    cases = [
        ("INSERT INTO t VALUES (1, 'b', NULL)", "UNIQUE constraint failed: t.id"),
        ("INSERT INTO t VALUES (2, 'a', NULL)", "UNIQUE constraint failed: t.v"),
        ("INSERT INTO t VALUES (3, NULL, NULL)", "NOT NULL constraint failed: t.v"),
        ("INSERT INTO t VALUES (4, 'd', 99)", "FOREIGN KEY constraint failed"),  # foreign_keys on
    ]
    for sql, message in cases:
        with pytest.raises(IntegrityError) as info:
            await mem.execute("db", sql)
        err = info.value
        assert message in str(err)
        assert (err.engine, err.sqlstate) == ("sqlite", "23000")
        assert err.code is not None and err.code & 0xFF == 19  # SQLITE_CONSTRAINT_*
        await assert_healthy(mem, "db")
    assert (await mem.query("db", "SELECT count(*) FROM t")).item() == 1


async def test_closed_pool(api: Any) -> None:
    await api.create_pool("a", url="sqlite:///:memory:")
    await api.create_pool("b", url="sqlite:///:memory:")
    await api.close_pool("a")
    for call in (
        lambda: api.query("a", "SELECT 1"),
        lambda: api.execute("a", "SELECT 1"),
        lambda: api.execute_many("a", "SELECT ?", [[1]]),
        lambda: api.close_pool("a"),
    ):
        with pytest.raises(PoolClosed, match="'a'"):
            await call()
    await assert_healthy(api, "b")
    await api.close()
    with pytest.raises(PoolClosed):
        await api.query("b", "SELECT 1")
    with pytest.raises(PoolClosed):
        api.stats("b")
    with pytest.raises(PoolClosed):
        async with api.transaction("b"):
            pass


async def test_close_pool_fails_waiting_callers(apool: DatabasePool) -> None:
    await apool.create_pool("a", url="sqlite:///:memory:", max_size=1)
    with pytest.raises(PoolClosed):  # COMMIT fails: the pool is closed
        async with apool.transaction("a") as tx:
            waiter = asyncio.ensure_future(apool.query("a", "SELECT 1"))
            while apool.stats("a")["waiting"] == 0:
                await asyncio.sleep(0.005)
            await apool.close_pool("a")
            with pytest.raises(PoolClosed, match="while waiting"):
                await waiter
            # the transaction held open is over too: its statements fail
            with pytest.raises(PoolClosed, match="closed"):
                await tx.query("SELECT 5")
    assert apool.list_pools() == []


async def test_acquire_timeout(api: Any) -> None:
    await api.create_pool("one", url="sqlite:///:memory:", max_size=1, acquire_timeout=0.2)
    async with api.transaction("one") as tx:
        start = time.monotonic()
        with pytest.raises(PoolTimeout, match="200 ms") as info:
            await api.query("one", "SELECT 1")
        elapsed = time.monotonic() - start
        assert 0.15 <= elapsed < 2.0
        assert isinstance(info.value, OperationalError)
        assert info.value.category == "timeout"
        assert api.stats("one")["in_use"] == 1
        assert (await tx.query("SELECT 1 AS x")).item() == 1
    stats = api.stats("one")
    assert stats["timeouts"] == 1
    await assert_healthy(api, "one")


async def test_full_wait_queue_async(apool: DatabasePool) -> None:
    await apool.create_pool("one", url="sqlite:///:memory:", max_size=1, max_waiting=1)
    async with apool.transaction("one"):
        waiter = asyncio.ensure_future(apool.query("one", "SELECT 7 AS x"))
        while apool.stats("one")["waiting"] < 1:
            await asyncio.sleep(0.005)
        with pytest.raises(PoolFull, match="max_waiting") as info:
            await apool.query("one", "SELECT 1")
        assert isinstance(info.value, OperationalError)
    assert (await waiter).item() == 7
    stats = await wait_idle(apool, "one")
    assert stats["rejected"] == 1
    await assert_healthy(apool, "one")


def test_full_wait_queue_sync(spool: SyncDatabasePool) -> None:
    spool.create_pool("one", url="sqlite:///:memory:", max_size=1, max_waiting=1)
    results: list[Any] = []
    with spool.transaction("one"):
        thread = threading.Thread(target=lambda: results.append(spool.query("one", "SELECT 7 AS x")))
        thread.start()
        deadline = time.monotonic() + 5
        while spool.stats("one")["waiting"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        with pytest.raises(PoolFull):
            spool.query("one", "SELECT 1")
    thread.join(5)
    assert results[0].item() == 7
    assert wait_idle_sync(spool, "one")["rejected"] == 1
    assert spool.query("one", "SELECT 1").item() == 1


async def test_missing_file_read_only(api: Any, tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist.db"
    with pytest.raises(OperationalError) as info:
        await api.create_pool("ro", url=f"{sqlite_url(missing)}?mode=ro")
    assert str(missing) in str(info.value)
    assert info.value.engine == "sqlite"
    assert info.value.code is not None and info.value.code & 0xFF == 14  # SQLITE_CANTOPEN
    assert api.list_pools() == []
    assert not missing.exists()
    # with min_size=0 the pool opens lazily; the first query fails the same way
    await api.create_pool("lazy", url=f"{sqlite_url(missing)}?mode=ro", min_size=0)
    with pytest.raises(OperationalError, match="does-not-exist.db"):
        await api.query("lazy", "SELECT 1")
    stats = api.stats("lazy")
    assert stats["in_use"] == 0 and stats["connect_failures"] >= 1
    # once the file exists the same pool works
    await api.create_pool("rw", url=sqlite_url(missing))
    await api.execute("rw", "CREATE TABLE t (a INTEGER)")
    await assert_healthy(api, "lazy")
    with pytest.raises(OperationalError, match="readonly") as info:
        await api.execute("lazy", "INSERT INTO t VALUES (1)")
    assert info.value.sqlstate == "25006"
    await assert_healthy(api, "lazy")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_size": 0}, "max_size"),
        ({"min_size": 5, "max_size": 2}, "min_size"),
        ({"min_size": -1}, "min_size"),
        ({"max_waiting": -1}, "max_waiting"),
        ({"acquire_timeout": -1}, "acquire_timeout must be 0 or more seconds"),
        ({"busy_timeout_ms": "soon"}, "busy_timeout_ms"),
        ({"journal_mode": "sideways"}, "journal_mode"),
        ({"mode": "rwx"}, "mode"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
async def test_invalid_pool_options(api: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        await api.create_pool("bad", url="sqlite:///:memory:", **options)
    assert api.list_pools() == []
    with pytest.raises(PoolNotFound):
        api.stats("bad")
    await api.create_pool("bad", url="sqlite:///:memory:")  # the id is still free
    await assert_healthy(api, "bad")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"db_type": "sqlite"},
        {"url": "/no/scheme.db"},
        {"url": "sqlite://host/x.db"},
        {"db_type": "sqlite", "url": "mysql:///x"},
    ],
)
async def test_invalid_create_pool_arguments(api: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        await api.create_pool("bad", **kwargs)
    assert api.list_pools() == []


async def test_query_of_statement_without_columns(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (a INTEGER)")
    await mem.execute("db", "INSERT INTO t VALUES (1)")
    with pytest.raises(ProgrammingError, match="no columns; use execute"):
        await mem.query("db", "UPDATE t SET a = 2")
    with pytest.raises(ProgrammingError, match="no columns"):
        await mem.query("db", "CREATE TABLE u (a INTEGER)")
    # nothing ran
    assert (await mem.query("db", "SELECT a FROM t")).item() == 1
    with pytest.raises(ProgrammingError, match="no columns"):
        async for _ in mem.stream("db", "DELETE FROM t"):
            pass
    # RETURNING makes a statement return columns
    df = await mem.query("db", "UPDATE t SET a = 3 RETURNING a")
    assert df.item() == 3
    await assert_healthy(mem, "db")


async def test_errors_in_transactions_release_the_connection(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    for bad in ("SELEC 1", "INSERT INTO t VALUES (1), (1)"):
        with pytest.raises(DatabaseError):
            async with mem.transaction("db") as tx:
                await tx.execute("INSERT INTO t VALUES (100)")
                await tx.execute(bad)
        await assert_healthy(mem, "db")
    with pytest.raises(ProgrammingError):
        async with mem.transaction("db") as tx:
            await tx.query("SELECT ?", [object()])
    assert (await mem.query("db", "SELECT count(*) FROM t")).item() == 0
    await assert_healthy(mem, "db")


async def test_errors_counter(mem: Any) -> None:
    before = mem.stats("db")
    for _ in range(3):
        with pytest.raises(ProgrammingError):
            await mem.query("db", "SELEC 1")
    after = mem.stats("db")
    assert after["errors"] - before["errors"] == 3
    await assert_healthy(mem, "db")


async def test_execute_many_with_no_rows_does_nothing(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT DEFAULT 'x')")
    n = await mem.execute_many("db", "INSERT INTO t DEFAULT VALUES", [])
    written = (await mem.query("db", "SELECT count(*) FROM t")).item()
    assert (n, written) == (0, 0), "zero parameter rows ran the statement"
    assert await mem.execute_many("db", "INSERT INTO t (v) VALUES (?)", iter([])) == 0


async def test_pool_option_out_of_int_range_is_rejected(api: Any) -> None:
    try:
        await api.create_pool("big", url="sqlite:///:memory:", max_size=2**32 + 2)
    except (ConfigurationError, OverflowError):
        return
    assert api.stats("big")["max_size"] == 2**32 + 2
