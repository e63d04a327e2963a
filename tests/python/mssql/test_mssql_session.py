"""Session state on MSSQL: db-lib cannot reset a session, so a connection
whose session a statement may have changed (SET of a session option, USE,
#temporary tables) is replaced before another caller gets it
(reset_on_release="auto"); "always" replaces every connection, "never"
none. Each connection is told apart by its @@SPID."""

from __future__ import annotations

from typing import Any

import pytest

from db_pool import DatabasePool

from .conftest import POOL_ID, Target, assert_healthy


async def spid(pool: DatabasePool) -> int:
    return int((await pool.query(POOL_ID, "SELECT @@SPID AS s")).item())


@pytest.mark.parametrize(
    "sql",
    ["SET NOCOUNT ON", "set  lock_timeout 100", "CREATE TABLE #scratch (a int)"],
)
async def test_session_change_replaces_the_connection(server: Target, sql: str) -> None:
    pool = DatabasePool()
    await pool.create_pool(POOL_ID, **server.kwargs(max_size=1))
    try:
        first = await spid(pool)
        assert await spid(pool) == first  # plain statements keep it
        await pool.execute(POOL_ID, "DECLARE @x int; SET @x = 1")
        assert await spid(pool) == first  # SET @variable is no session change
        await pool.execute(POOL_ID, sql)
        assert await spid(pool) != first
        await assert_healthy(pool)
    finally:
        await pool.close()


@pytest.mark.parametrize(("mode", "replaced"), [("always", True), ("never", False)])
async def test_reset_modes(server: Target, mode: str, replaced: bool) -> None:
    pool = DatabasePool()
    await pool.create_pool(POOL_ID, **server.kwargs(max_size=1, reset_on_release=mode))
    try:
        first = await spid(pool)
        await pool.execute(POOL_ID, "SET NOCOUNT ON")
        assert (await spid(pool) != first) is replaced
    finally:
        await pool.close()


async def test_init_sql_runs_on_each_new_connection(server: Target, tds: Any, table: str) -> None:
    """init_sql="SET NOCOUNT ON" shows: the server stops counting rows."""
    pool = DatabasePool()
    await pool.create_pool(POOL_ID, **server.kwargs(max_size=1))
    other = DatabasePool()
    await other.create_pool(POOL_ID, **server.kwargs(max_size=1, init_sql="SET NOCOUNT ON"))
    try:
        await pool.execute(POOL_ID, f"CREATE TABLE {table} (a int)")
        assert await pool.execute(POOL_ID, f"INSERT INTO {table} VALUES (1)") == 1
        assert await other.execute(POOL_ID, f"INSERT INTO {table} VALUES (2)") == 0
    finally:
        await pool.close()
        await other.close()


async def test_init_sql_is_the_baseline_not_a_change(server: Target) -> None:
    """A SET in init_sql does not get the connection replaced on release."""
    pool = DatabasePool()
    await pool.create_pool(POOL_ID, **server.kwargs(max_size=1, init_sql="SET NOCOUNT ON"))
    try:
        first = await spid(pool)
        assert await spid(pool) == first
        assert pool.stats(POOL_ID)["created"] == 1
    finally:
        await pool.close()


@pytest.mark.parametrize("sql", ["SELECT 'Item #5' AS a", "DECLARE @n int; SET @n = 1; SELECT @n AS a",
                                 "SELECT 'SET NOCOUNT ON' AS a"])
async def test_plain_statements_keep_the_connection(server: Target, sql: str) -> None:
    pool = DatabasePool()
    await pool.create_pool(POOL_ID, **server.kwargs(max_size=1))
    try:
        first = await spid(pool)
        await pool.query(POOL_ID, sql)
        assert await spid(pool) == first
    finally:
        await pool.close()
