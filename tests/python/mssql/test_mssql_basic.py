"""The MSSQL engine end to end: the README's example, settings and URLs,
scripts, row counts, streams, notices."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import db_pool
from db_pool import ConfigurationError, DatabasePool, ProgrammingError, SyncDatabasePool

from .conftest import POOL_ID, Target, assert_healthy, series


def test_engine_is_compiled_in() -> None:
    assert "mssql" in db_pool.engines()


async def test_seed_example(server: Target) -> None:
    """create_pool with keywords, then a query returns a DataFrame."""
    async with DatabasePool() as pool:
        await pool.create_pool(pool_id="main_db", db_type="mssql", host=server.host, port=server.port,
                               database=server.database, username=server.user, password=server.password)
        df = await pool.query("main_db", "SELECT 1 AS id, N'Ada' AS name, DB_NAME() AS db")
        assert isinstance(df, pl.DataFrame)
        assert df.to_dict(as_series=False) == {"id": [1], "name": ["Ada"], "db": [server.database]}
        assert df.schema == {"id": pl.Int32, "name": pl.String, "db": pl.String}
        assert pool.stats("main_db")["engine"] == "mssql"


@pytest.mark.parametrize("scheme", ["mssql", "sqlserver"])
def test_url_and_alias(server: Target, scheme: str) -> None:
    with SyncDatabasePool() as pool:
        url = server.url().replace("mssql://", f"{scheme}://", 1)
        pool.create_pool("u", url=url)
        assert pool.query("u", "SELECT DB_NAME() AS db")["db"].to_list() == [server.database]
        pool.create_pool("k", db_type="sqlserver", **{k: v for k, v in server.kwargs().items() if k != "db_type"})
        assert pool.query("k", "SELECT 7 AS x")["x"].to_list() == [7]


def test_url_with_escaped_password_and_query_settings(server: Target) -> None:
    from db_pool._common import pool_arguments

    engine, settings, options = pool_arguments(
        None, None, None, None, None, None,
        "mssql://sa:p%40ss%3Aw@db.example:1444/my%20db?encryption=require&app_name=x", {"max_size": 3})
    assert engine == "mssql"
    assert settings == [{"user": "sa", "password": "p@ss:w", "host": "db.example", "port": "1444",
                         "database": "my db", "encryption": "require", "app_name": "x",
                         "login_timeout": "10"}]  # follows connect_timeout (10 s)
    assert options == {"max_size": 3}
    engine, settings, _ = pool_arguments(None, None, None, None, None, None, "sqlserver://[::1]/master", {})
    assert settings == [{"host": "::1", "database": "master", "login_timeout": "10"}]
    with pytest.raises(ConfigurationError):
        pool_arguments(None, None, None, None, None, None, "mssql://h:port/db", {})


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"nonsense": "1"}, "unknown mssql setting"),
        ({"port": "0"}, "port"),
        ({"encryption": "maybe"}, "encryption"),
        ({"ca_file": "a;b.pem"}, "cannot be passed to FreeTDS"),  # a file that exists
        ({"login_timeout": "x"}, "login_timeout"),
    ],
)
async def test_bad_settings_fail_at_create_pool(server: Target, setting: dict[str, str], message: str,
                                                tmp_path: Path) -> None:
    if "ca_file" in setting:  # a CA file must be readable (checked first): make one
        (tmp_path / setting["ca_file"]).write_text("PEM\n")
        setting = {"ca_file": str(tmp_path / setting["ca_file"])}
    async with DatabasePool() as pool:
        with pytest.raises(ConfigurationError, match=message):
            await pool.create_pool("bad", **{**server.kwargs(), **setting})


async def test_missing_user_is_a_configuration_error(server: Target) -> None:
    async with DatabasePool() as pool:
        with pytest.raises(ConfigurationError, match="needs a user"):
            await pool.create_pool("bad", db_type="mssql", host=server.host, port=server.port)


async def test_script_rowcounts_and_results(ms: Any, table: str) -> None:
    n = await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT PRIMARY KEY, name NVARCHAR(20));"
                                  f"INSERT INTO {table} VALUES (1, N'a'), (2, N'b');"
                                  f"INSERT INTO {table} VALUES (3, N'c');"
                                  f"SELECT * FROM {table}")
    assert n == 3  # row counts of the INSERTs; the SELECT's rows are not changes
    assert await ms.execute(POOL_ID, f"UPDATE {table} SET name = @P1 WHERE id > @P2", ["z", 1]) == 2
    assert await ms.execute(POOL_ID, f"DELETE FROM {table} WHERE id = @P1", [99]) == 0
    df = await ms.query(POOL_ID, f"SET NOCOUNT ON; SELECT id, name FROM {table} ORDER BY id")
    assert df.to_dict(as_series=False) == {"id": [1, 2, 3], "name": ["a", "z", "z"]}
    await assert_healthy(ms)


async def test_query_without_result_set_is_misuse(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (a INT)")
    with pytest.raises(ProgrammingError, match="returns no columns"):
        await ms.query(POOL_ID, f"INSERT INTO {table} VALUES (1)")
    await assert_healthy(ms)


async def test_first_result_set_is_returned(ms: Any) -> None:
    df = await ms.query(POOL_ID, "SELECT 1 AS a; SELECT 2 AS b, 3 AS c")
    assert df.to_dict(as_series=False) == {"a": [1]}
    await assert_healthy(ms)


async def test_unnamed_columns_get_names(ms: Any) -> None:
    df = await ms.query(POOL_ID, "SELECT 1, 2 AS b, 3")
    assert df.columns == ["column1", "b", "column3"]


async def test_empty_result_keeps_types(ms: Any) -> None:
    df = await ms.query(POOL_ID, "SELECT CAST(1 AS SMALLINT) AS a, N'x' AS b WHERE 1 = 0")
    assert df.height == 0
    assert df.schema == {"a": pl.Int16, "b": pl.String}


async def test_stream_in_batches(ms: Any, server: Target) -> None:
    sql = series(server, 2500, ", 'row' AS t")
    sizes = []
    total = 0
    async for batch in ms.stream(POOL_ID, sql, batch_rows=1000):
        sizes.append(batch.height)
        total += int(batch["x"].sum())
    assert sizes == [1000, 1000, 500]
    assert total == 2500 * 2501 // 2
    await assert_healthy(ms)


async def test_stream_closed_early_leaves_the_connection_clean(ms: Any, server: Target) -> None:
    sql = series(server, 50000)
    async for batch in ms.stream(POOL_ID, sql, batch_rows=100):
        assert batch.height == 100
        break
    await assert_healthy(ms)


async def test_print_messages_are_logged(ams: DatabasePool, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="db_pool"):
        df = await ams.query(POOL_ID, "PRINT 'hello from T-SQL'; SELECT 1 AS a")
    assert df["a"].to_list() == [1]
    assert any("hello from T-SQL" in r.getMessage() for r in caplog.records)


async def test_large_result(ms: Any, server: Target) -> None:
    sql = series(server, 100000, ", 'padding' AS p")
    df = await ms.query(POOL_ID, sql)
    assert df.height == 100000
    assert df["x"].sum() == 100000 * 100001 // 2
