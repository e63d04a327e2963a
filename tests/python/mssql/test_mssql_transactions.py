"""Transactions: commit and rollback through the API, @@TRANCOUNT tracking
(so a connection never goes back to the pool inside a transaction, even
one the user's own SQL opened), isolation levels, execute_many all or
nothing, deadlock victims."""

from __future__ import annotations

from typing import Any

import pytest

from db_pool import DatabasePool, IntegrityError, OperationalError, SyncDatabasePool

from .conftest import POOL_ID, Target, assert_healthy


async def count(pool: Any, table: str) -> int:
    df = await pool.query(POOL_ID, f"SELECT COUNT(*) AS n FROM {table}")
    return int(df["n"][0])


async def test_commit_and_rollback(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT PRIMARY KEY)")
    async with ms.transaction(POOL_ID) as tx:
        await tx.execute(f"INSERT INTO {table} VALUES (@P1)", [1])
        assert (await tx.query("SELECT @@TRANCOUNT AS tc"))["tc"].to_list() == [1]
    assert await count(ms, table) == 1
    with pytest.raises(RuntimeError):
        async with ms.transaction(POOL_ID) as tx:
            await tx.execute(f"INSERT INTO {table} VALUES (@P1)", [2])
            raise RuntimeError("roll it back")
    assert await count(ms, table) == 1
    await assert_healthy(ms)


async def test_failed_statement_inside_a_transaction(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT PRIMARY KEY)")
    with pytest.raises(IntegrityError):
        async with ms.transaction(POOL_ID) as tx:
            await tx.execute(f"INSERT INTO {table} VALUES (1)")
            await tx.execute(f"INSERT INTO {table} VALUES (1)")
    assert await count(ms, table) == 0
    await assert_healthy(ms)


async def test_user_begin_tran_is_rolled_back_on_return(ms: Any, table: str) -> None:
    """A BEGIN TRAN in plain SQL leaves @@TRANCOUNT at 1: the driver sees it
    and the pool rolls back before the connection is reused."""
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT)")
    await ms.execute(POOL_ID, f"BEGIN TRAN; INSERT INTO {table} VALUES (1)")
    await ms.execute(POOL_ID, f"BEGIN TRANSACTION; INSERT INTO {table} VALUES (@P1)", [2])
    df = await ms.query(POOL_ID, f"SELECT COUNT(*) AS n, @@TRANCOUNT AS tc FROM {table}")
    assert df.row(0) == (0, 0)
    await assert_healthy(ms)


async def test_user_commit_inside_the_api_transaction(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT)")
    """The transaction block's own COMMIT then finds nothing to commit: an
    error (like SQL Server's 3902), never a silent success."""
    with pytest.raises(OperationalError, match="no transaction is open") as ei:
        async with ms.transaction(POOL_ID) as tx:
            await tx.execute(f"INSERT INTO {table} VALUES (1); COMMIT")
            assert (await tx.query("SELECT @@TRANCOUNT AS tc"))["tc"].to_list() == [0]
    assert ei.value.sqlstate == "25000"
    assert await count(ms, table) == 1
    await assert_healthy(ms)


async def test_in_transaction_is_reset_when_a_lease_returns(server: Target, table: str) -> None:
    """Leaving the transaction block without commit (a task dropped) rolls
    back; the single connection is then reused clean."""
    async with DatabasePool() as pool:
        await pool.create_pool(POOL_ID, **server.kwargs(max_size=1))
        await pool.execute(POOL_ID, f"CREATE TABLE {table} (id INT)")
        tx = pool.transaction(POOL_ID)
        t = await tx.__aenter__()
        await t.execute(f"INSERT INTO {table} VALUES (1)")
        await tx.__aexit__(RuntimeError, RuntimeError("x"), None)
        df = await pool.query(POOL_ID, f"SELECT COUNT(*) AS n, @@TRANCOUNT AS tc FROM {table}")
        assert df.row(0) == (0, 0)
        assert pool.stats(POOL_ID)["created"] == 1


@pytest.mark.parametrize("level", ["read uncommitted", "serializable", "snapshot"])
async def test_isolation_level_is_set_and_restored(ams: DatabasePool, server: Target, level: str) -> None:
    if level == "snapshot" and server.tds is None:
        pytest.skip("SNAPSHOT needs ALLOW_SNAPSHOT_ISOLATION on the database")
    async with ams.transaction(POOL_ID, isolation=level) as tx:
        await tx.query("SELECT 1 AS one")
    async with ams.transaction(POOL_ID, begin=f"ISOLATION LEVEL {level.upper()}") as tx:
        await tx.query("SELECT 1 AS one")
    await assert_healthy(ams)


async def test_isolation_level_reaches_the_server(server: Target) -> None:
    if server.tds is None:
        pytest.skip("checks the test server's request log")
    async with DatabasePool() as pool:
        await pool.create_pool(POOL_ID, **server.kwargs(max_size=1))
        async with pool.transaction(POOL_ID, isolation="serializable") as tx:
            await tx.query("SELECT 1 AS one")
    log = [r[2] for r in server.tds.stats.requests if r[1] == "SQL"]
    assert any("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; BEGIN TRANSACTION" in s for s in log)
    assert any(s.startswith("COMMIT TRANSACTION; SET TRANSACTION ISOLATION LEVEL READ COMMITTED") for s in log)


async def test_bad_transaction_options(ams: DatabasePool) -> None:
    from db_pool import ConfigurationError, ProgrammingError

    with pytest.raises(ConfigurationError):
        ams.transaction(POOL_ID, readonly=True)
    with pytest.raises(ProgrammingError, match="ISOLATION LEVEL"):
        async with ams.transaction(POOL_ID, begin="ISOLATION LEVEL SERIALIZABLE; DROP TABLE x"):
            pass
    await assert_healthy(ams)


async def test_execute_many_all_or_nothing(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT PRIMARY KEY, name NVARCHAR(5))")
    n = await ms.execute_many(POOL_ID, f"INSERT INTO {table} VALUES (@P1, @P2)", [(1, "a"), (2, "b"), (3, None)])
    assert n == 3
    with pytest.raises(IntegrityError) as ei:
        await ms.execute_many(POOL_ID, f"INSERT INTO {table} VALUES (@P1, @P2)", [(4, "d"), (5, "e"), (1, "dup")])
    assert "parameter row 2" in str(ei.value)
    assert await count(ms, table) == 3
    from db_pool import DataError

    with pytest.raises(DataError) as de:
        await ms.execute_many(POOL_ID, f"INSERT INTO {table} VALUES (@P1, @P2)", [(6, "f"), (7, "toolong")])
    assert de.value.sqlstate == "22001"
    assert await count(ms, table) == 3
    assert await ms.execute_many(POOL_ID, f"INSERT INTO {table} VALUES (@P1, @P2)", []) == 0
    await assert_healthy(ms)


async def test_execute_many_inside_a_transaction_uses_a_savepoint(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT PRIMARY KEY)")
    async with ms.transaction(POOL_ID) as tx:
        await tx.execute(f"INSERT INTO {table} VALUES (100)")
        with pytest.raises(IntegrityError):
            await tx.execute_many(f"INSERT INTO {table} VALUES (@P1)", [(1,), (2,), (100,)])
        assert (await tx.query("SELECT @@TRANCOUNT AS tc"))["tc"].to_list() == [1]
        assert await tx.execute_many(f"INSERT INTO {table} VALUES (@P1)", [(3,), (4,)]) == 2
    df = await ms.query(POOL_ID, f"SELECT id FROM {table} ORDER BY id")
    assert df["id"].to_list() == [3, 4, 100]
    await assert_healthy(ms)


async def test_deadlock_victim_is_retryable(ms: Any, table: str, tds: Any) -> None:
    """The test server fails statements holding 'tds:deadlock' with 1205."""
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT)")
    with pytest.raises(OperationalError) as ei:
        async with ms.transaction(POOL_ID) as tx:
            await tx.execute(f"INSERT INTO {table} VALUES (1)")
            await tx.query("SELECT 'tds:deadlock' AS boom")
    e = ei.value
    assert (e.code, e.sqlstate, e.category) == (1205, "40001", "server")
    assert "deadlock victim" in str(e)
    assert "severity 13" in (e.detail or "")
    assert await count(ms, table) == 0
    await assert_healthy(ms)


def test_sync_transaction(sms: SyncDatabasePool, table: str) -> None:
    sms.execute(POOL_ID, f"CREATE TABLE {table} (id INT)")
    with sms.transaction(POOL_ID) as tx:
        tx.execute(f"INSERT INTO {table} VALUES (@P1)", [1])
        tx.execute_many(f"INSERT INTO {table} VALUES (@P1)", [[2], [3]])
    assert sms.query(POOL_ID, f"SELECT SUM(id) AS s FROM {table}")["s"].to_list() == [6]
