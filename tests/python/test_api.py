"""The shape of the public API, for DatabasePool and SyncDatabasePool."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import db_pool
from db_pool import (
    ConfigurationError,
    DatabasePool,
    IntegrityError,
    OperationalError,
    PoolClosed,
    SyncDatabasePool,
)

from conftest import STATS_KEYS, assert_healthy, sqlite_url, wait_idle, wait_idle_sync

N_ROWS_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < {n}) "
    "INSERT INTO big (i, s) SELECT x, 'row-' || x FROM c"
)


def test_package_exports() -> None:
    assert "sqlite" in db_pool.engines()  # always built: the embedded default
    for name in db_pool.__all__:
        assert hasattr(db_pool, name), name
    assert issubclass(db_pool.PoolNotFound, KeyError)
    assert issubclass(db_pool.ConfigurationError, ValueError)
    assert issubclass(db_pool.PoolTimeout, db_pool.OperationalError)
    assert issubclass(db_pool.IntegrityError, db_pool.DatabaseError)
    assert issubclass(db_pool.PoolClosed, db_pool.PoolError)


# ---- creating pools ---------------------------------------------------------------


async def test_create_pool_with_url_file(api: Any, db_path: Path) -> None:
    await api.create_pool("f", url=sqlite_url(db_path))
    assert db_path.exists()
    df = await api.query("f", "SELECT 1 AS one, 'x' AS s")
    assert isinstance(df, pl.DataFrame)
    assert df.to_dict(as_series=False) == {"one": [1], "s": ["x"]}
    assert api.list_pools() == ["f"]


async def test_create_pool_with_db_type_and_database(api: Any, db_path: Path) -> None:
    await api.create_pool("f", db_type="sqlite", database=str(db_path), max_size=2)
    await api.execute("f", "CREATE TABLE t (a INTEGER)")
    await api.execute("f", "INSERT INTO t VALUES (7)")
    # another client sees what the pool wrote to the file
    with contextlib.closing(sqlite3.connect(db_path)) as con:
        assert con.execute("SELECT a FROM t").fetchall() == [(7,)]
    await api.create_pool("alias", db_type="SQLite3", database=":memory:")
    assert (await api.query("alias", "SELECT 2 AS two")).item() == 2
    assert api.stats("f")["max_size"] == 2
    assert api.stats("f")["engine"] == "sqlite"


async def test_memory_database_is_shared_by_a_pools_connections(api: Any) -> None:
    await api.create_pool("m1", url="sqlite:///:memory:", max_size=2)
    await api.create_pool("m2", url="sqlite:///:memory:", max_size=2)
    await api.execute("m1", "CREATE TABLE t (a INTEGER)")
    await api.execute("m1", "INSERT INTO t VALUES (1)")
    # while one connection is held by a (reading, so DEFERRED) transaction, a
    # second one sees the table
    async with api.transaction("m1", "DEFERRED") as tx:
        assert (await tx.query("SELECT count(*) AS n FROM t")).item() == 1
        assert (await api.query("m1", "SELECT count(*) AS n FROM t")).item() == 1
        assert api.stats("m1")["size"] == 2
    # but another pool's :memory: database is a different one
    with pytest.raises(db_pool.ProgrammingError, match="no such table"):
        await api.query("m2", "SELECT * FROM t")


# ---- statements --------------------------------------------------------------------


async def test_query_returns_dataframe_with_params(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    assert await mem.execute("db", "INSERT INTO t (name) VALUES (?)", ["a"]) == 1
    assert await mem.execute("db", "INSERT INTO t (name) VALUES (:n)", {"n": "b"}) == 1
    df = await mem.query("db", "SELECT id, name FROM t WHERE id >= ? ORDER BY id", (1,))
    assert_frame_equal(df, pl.DataFrame({"id": [1, 2], "name": ["a", "b"]}))
    empty = await mem.query("db", "SELECT id, name FROM t WHERE id < 0")
    assert empty.height == 0
    assert empty.schema == pl.Schema({"id": pl.Int64, "name": pl.String})


async def test_execute_rows_affected_scripts_and_ddl(mem: Any) -> None:
    assert await mem.execute("db", "CREATE TABLE t (a INTEGER, b TEXT)") == 0
    assert await mem.execute("db", "CREATE INDEX t_a ON t (a)") == 0
    script = """
        INSERT INTO t VALUES (1, 'x');
        INSERT INTO t VALUES (2, 'y'), (3, 'z');
        -- a comment between statements
        UPDATE t SET b = b || '!' WHERE a >= 2;
    """
    assert await mem.execute("db", script) == 5
    assert await mem.execute("db", "UPDATE t SET b = 'q' WHERE a < 0") == 0
    assert await mem.execute("db", "DELETE FROM t WHERE a = ?", [1]) == 1
    assert await mem.execute("db", "SELECT * FROM t") == 0
    assert await mem.execute("db", "DROP TABLE t") == 0
    df = await mem.query("db", "SELECT name FROM sqlite_master WHERE name = 't'")
    assert df.height == 0


async def test_execute_many_counts_and_is_all_or_nothing(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    n = await mem.execute_many("db", "INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(100)])
    assert n == 100
    n = await mem.execute_many(
        "db", "UPDATE t SET v = :v WHERE id = :id", ({"id": i, "v": "w"} for i in range(0, 100, 2))
    )
    assert n == 50
    with pytest.raises(IntegrityError, match="parameter row 2"):
        await mem.execute_many("db", "INSERT INTO t VALUES (?, ?)", [(1000, "a"), (1001, "b"), (5, "dup")])
    assert (await mem.query("db", "SELECT count(*) FROM t WHERE id >= 1000")).item() == 0
    assert (await mem.query("db", "SELECT count(*) FROM t WHERE v = 'w'")).item() == 50
    await assert_healthy(mem, "db")


# ---- transactions -----------------------------------------------------------------


async def test_transaction_commits_on_success(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (a INTEGER)")
    async with mem.transaction("db") as tx:
        assert await tx.execute("INSERT INTO t VALUES (?)", [1]) == 1
        assert await tx.execute_many("INSERT INTO t VALUES (?)", [[2], [3]]) == 2
        df = await tx.query("SELECT sum(a) AS s FROM t")
        assert df.item() == 6
        assert mem.stats("db")["in_use"] == 1
    assert mem.stats("db")["in_use"] == 0
    assert (await mem.query("db", "SELECT count(*) FROM t")).item() == 3


async def test_transaction_rolls_back_on_exception(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (a INTEGER)")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with mem.transaction("db") as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
            raise Boom
    assert (await mem.query("db", "SELECT count(*) FROM t")).item() == 0
    # a database error inside the block rolls back too
    await mem.execute("db", "CREATE TABLE u (id INTEGER PRIMARY KEY)")
    with pytest.raises(IntegrityError):
        async with mem.transaction("db") as tx:
            await tx.execute("INSERT INTO u VALUES (1)")
            await tx.execute("INSERT INTO u VALUES (1)")
    assert (await mem.query("db", "SELECT count(*) FROM u")).item() == 0
    await assert_healthy(mem, "db")


async def test_transaction_is_inactive_after_the_block(mem: Any) -> None:
    async with mem.transaction("db") as tx:
        pass
    with pytest.raises(PoolClosed):
        await tx.query("SELECT 1")


@pytest.mark.parametrize("begin", ["IMMEDIATE", "immediate", "EXCLUSIVE"])
async def test_transaction_begin_immediate_takes_the_write_lock(
    api: Any, db_path: Path, begin: str
) -> None:
    await api.create_pool("f", url=sqlite_url(db_path), max_size=2, busy_timeout_ms=100)
    await api.execute("f", "CREATE TABLE t (a INTEGER)")
    async with api.transaction("f", begin=begin) as tx:
        with pytest.raises(OperationalError, match="locked") as info:
            await api.execute("f", "INSERT INTO t VALUES (1)")
        assert info.value.engine == "sqlite"
        assert info.value.code is not None and info.value.code & 0xFF == 5  # SQLITE_BUSY
        await tx.execute("INSERT INTO t VALUES (2)")
    assert (await api.query("f", "SELECT a FROM t")).to_series().to_list() == [2]
    await assert_healthy(api, "f")


async def test_transaction_deferred_does_not_lock(api: Any, db_path: Path) -> None:
    await api.create_pool("f", url=sqlite_url(db_path), max_size=2, busy_timeout_ms=100)
    await api.execute("f", "CREATE TABLE t (a INTEGER)")
    async with api.transaction("f", "DEFERRED") as tx:
        assert await api.execute("f", "INSERT INTO t VALUES (1)") == 1
        assert (await tx.query("SELECT count(*) FROM t")).item() == 1
    await assert_healthy(api, "f")


async def test_transaction_default_takes_the_write_lock_up_front(api: Any, db_path: Path) -> None:
    """IMMEDIATE by default (tests/python/test_sqlite_writers.py): another
    writer waits busy_timeout_ms, then fails saying what to change."""
    await api.create_pool("f", url=sqlite_url(db_path), max_size=2, busy_timeout_ms=100)
    await api.execute("f", "CREATE TABLE t (a INTEGER)")
    async with api.transaction("f") as tx:
        with pytest.raises(db_pool.OperationalError, match="locked") as info:
            await api.execute("f", "INSERT INTO t VALUES (1)")
        assert "busy_timeout_ms" in info.value.hint
        assert (await tx.query("SELECT count(*) FROM t")).item() == 0
    await assert_healthy(api, "f")


async def test_transaction_rejects_unknown_begin_mode(mem: Any) -> None:
    with pytest.raises(db_pool.ProgrammingError, match="DEFERRED, IMMEDIATE or EXCLUSIVE"):
        async with mem.transaction("db", begin="SOMETIMES"):
            pass
    await assert_healthy(mem, "db")


# ---- streaming ----------------------------------------------------------------------


async def test_stream_batches_equal_query(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE big (i INTEGER, s TEXT)")
    await mem.execute("db", N_ROWS_SQL.format(n=100_000))
    frames = [df async for df in mem.stream("db", "SELECT * FROM big ORDER BY i", batch_rows=10_000)]
    assert [f.height for f in frames] == [10_000] * 10
    assert all(f.schema == pl.Schema({"i": pl.Int64, "s": pl.String}) for f in frames)
    whole = await mem.query("db", "SELECT * FROM big ORDER BY i")
    assert_frame_equal(pl.concat(frames), whole)
    assert mem.stats("db")["in_use"] == 0
    # uneven last batch, parameters, an empty result
    sizes = [f.height async for f in mem.stream("db", "SELECT i FROM big WHERE i <= ?", [25], batch_rows=10)]
    assert sizes == [10, 10, 5]
    assert [f async for f in mem.stream("db", "SELECT i FROM big WHERE i < 0")] == []
    with pytest.raises(ValueError):
        async for _ in mem.stream("db", "SELECT 1", batch_rows=0):
            pass
    await assert_healthy(mem, "db")


async def test_stream_holds_one_connection_until_closed(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE big (i INTEGER, s TEXT)")
    await mem.execute("db", N_ROWS_SQL.format(n=1000))
    async with contextlib.aclosing(mem.stream("db", "SELECT * FROM big", batch_rows=100)) as it:
        async for df in it:
            assert df.height == 100
            assert mem.stats("db")["in_use"] == 1
            break
    assert mem.stats("db")["in_use"] == 0
    await assert_healthy(mem, "db")


async def test_async_stream_break_returns_the_connection(apool: DatabasePool) -> None:
    await apool.create_pool("db", url="sqlite:///:memory:", max_size=1)
    await apool.execute("db", "CREATE TABLE big (i INTEGER, s TEXT)")
    await apool.execute("db", N_ROWS_SQL.format(n=100_000))
    async for df in apool.stream("db", "SELECT * FROM big", batch_rows=10_000):
        assert df.height == 10_000
        break
    # the abandoned async generator is closed by the event loop soon after
    stats = await wait_idle(apool, "db", timeout=5)
    assert stats["in_use"] == 0
    await assert_healthy(apool, "db")


def test_sync_stream_break_returns_the_connection(spool: SyncDatabasePool) -> None:
    spool.create_pool("db", url="sqlite:///:memory:", max_size=1)
    spool.execute("db", "CREATE TABLE big (i INTEGER, s TEXT)")
    spool.execute("db", N_ROWS_SQL.format(n=100_000))
    frames = list(spool.stream("db", "SELECT * FROM big", batch_rows=10_000))
    assert [f.height for f in frames] == [10_000] * 10
    assert_frame_equal(pl.concat(frames), spool.query("db", "SELECT * FROM big"))
    for df in spool.stream("db", "SELECT * FROM big", batch_rows=10_000):
        assert spool.stats("db")["in_use"] == 1
        break
    assert spool.stats("db")["in_use"] == 0
    assert spool.query("db", "SELECT count(*) FROM big").item() == 100_000


# ---- stats, pools, closing -------------------------------------------------------------


async def test_stats_keys_and_counters(api: Any) -> None:
    await api.create_pool("db", url="sqlite:///:memory:", min_size=1, max_size=3)
    s0 = api.stats("db")
    assert set(s0) == STATS_KEYS | {"endpoints", "events"}
    assert s0["engine"] == "sqlite"
    assert s0["events"] == []
    (only,) = s0["endpoints"]  # one endpoint, never probed: no roles in SQLite
    assert (only["role"], only["health"], only["is_primary"]) == ("unknown", "up", False)
    assert only["size"] == s0["size"] and only["endpoint"].endswith(":memory:")
    assert (s0["min_size"], s0["max_size"]) == (1, 3)
    assert s0["in_use"] == 0 and s0["waiting"] == 0
    assert s0["size"] == s0["idle"] + s0["in_use"] >= 1
    for key in STATS_KEYS - {"engine"}:
        assert isinstance(s0[key], (int, float)) and s0[key] >= 0, key
    for i in range(5):
        await api.query("db", "SELECT ?", [i])
    with pytest.raises(db_pool.ProgrammingError):
        await api.query("db", "SELEC 1")
    s1 = api.stats("db")
    assert s1["requests"] - s0["requests"] == 6
    assert s1["errors"] - s0["errors"] == 1
    assert s1["acquired"] - s0["acquired"] == 6
    assert 1 <= s1["size"] <= 3
    assert s1["created"] >= s1["size"]
    assert s1["in_use"] == 0


async def test_list_pools_and_close_pool(api: Any) -> None:
    assert api.list_pools() == []
    await api.create_pool("a", url="sqlite:///:memory:")
    await api.create_pool("b", url="sqlite:///:memory:")
    assert sorted(api.list_pools()) == ["a", "b"]
    await api.close_pool("a")
    assert api.list_pools() == ["b"]
    with pytest.raises(PoolClosed):
        await api.query("a", "SELECT 1")
    with pytest.raises(PoolClosed):
        api.stats("a")
    # the id can be used again
    await api.create_pool("a", url="sqlite:///:memory:")
    assert (await api.query("a", "SELECT 3 AS x")).item() == 3
    await assert_healthy(api, "b")


async def test_close_is_idempotent(api: Any) -> None:
    await api.create_pool("a", url="sqlite:///:memory:")
    await api.close()
    await api.close()
    with pytest.raises(PoolClosed):
        await api.query("a", "SELECT 1")
    with pytest.raises(PoolClosed):
        api.list_pools()
    with pytest.raises(PoolClosed):
        await api.create_pool("b", url="sqlite:///:memory:")
    assert "closed" in repr(api)


async def test_async_context_manager_closes() -> None:
    async with DatabasePool() as pool:
        await pool.create_pool("a", url="sqlite:///:memory:")
        assert (await pool.query("a", "SELECT 1 AS x")).item() == 1
        assert "a" in repr(pool)
    with pytest.raises(PoolClosed):
        await pool.query("a", "SELECT 1")
    await pool.close()


def test_sync_context_managers(db_path: Path) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("a", url=sqlite_url(db_path), max_size=2)
        pool.execute("a", "CREATE TABLE t (a INTEGER)")
        with pool.transaction("a", begin="IMMEDIATE") as tx:
            assert tx.execute("INSERT INTO t VALUES (1)") == 1
            assert tx.execute_many("INSERT INTO t VALUES (?)", [(2,), (3,)]) == 2
            assert tx.query("SELECT count(*) FROM t").item() == 3
        with pytest.raises(ZeroDivisionError):
            with pool.transaction("a") as tx:
                tx.execute("INSERT INTO t VALUES (4)")
                1 / 0
        assert pool.query("a", "SELECT sum(a) FROM t").item() == 6
        assert wait_idle_sync(pool, "a")["in_use"] == 0
    with pytest.raises(PoolClosed):
        pool.query("a", "SELECT 1")
    pool.close()


# ---- secrets -----------------------------------------------------------------------------


async def test_password_never_shown(api: Any) -> None:
    secret = "pa55-w0rd-XYZZY"
    with pytest.raises(ConfigurationError) as info:
        await api.create_pool("p", url="sqlite:///:memory:", password=secret)
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert "password" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        await api.create_pool("p", db_type="sqlite", database=":memory:", username="bob", password=secret)
    assert secret not in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        await api.create_pool("p", url=f"sqlite:///:memory:?password={secret}")
    assert secret not in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        await api.create_pool("p", url=f"sqlite://bob:{secret}@host/x.db")
    assert secret not in str(info.value)
    assert api.list_pools() == []
    await api.create_pool("ok", url="sqlite:///:memory:")
    assert secret not in repr(api)
    assert "ok" in repr(api)
    assert all(secret not in str(v) for v in api.stats("ok").values())


async def test_close_with_an_open_transaction_and_stream(api: Any) -> None:
    await api.create_pool("a", url="sqlite:///:memory:", max_size=2)
    it = api.stream("a", "SELECT 1 AS x UNION ALL SELECT 2", batch_rows=1)
    assert (await it.__anext__()).item() == 1
    tx = api.transaction("a")
    await tx.__aenter__()
    assert api.stats("a")["in_use"] == 2
    await api.close()
    with pytest.raises(PoolClosed):
        await tx.query("SELECT 1")
    with pytest.raises(PoolClosed):
        await tx.__aexit__(None, None, None)
    with pytest.raises(PoolClosed):
        await it.__anext__()
    await it.aclose()
