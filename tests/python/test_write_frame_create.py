"""write_frame beyond flat frames, on SQLite: LazyFrames and dicts of
columns, List/Struct columns (JSON text), Null/Categorical/Enum/Time columns,
create=True with if_exists, and write_frame inside a transaction. The same
features on PostgreSQL and MSSQL: tests/python/pg/test_pg_write_frame_more.py,
tests/python/mssql/test_mssql_write_frame_more.py."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import ConfigurationError, DataError, NotSupportedError, ProgrammingError

from conftest import assert_healthy


def nested() -> pl.DataFrame:
    return pl.DataFrame({
        "id": [1, 2, 3],
        "l": [[1, 2, None], None, []],
        "st": [{"a": 1, "b": "x"}, None, {"a": None, "b": "é\"\\"}],
        "n": [None, None, None],
        "c": pl.Series(["x", None, "y"], dtype=pl.Categorical),
        "e": pl.Series(["lo", "hi", None], dtype=pl.Enum(["lo", "hi"])),
        "t": [dt.time(1, 2, 3), None, dt.time(23, 59, 59, 999999)],
        "ts": pl.Series([dt.datetime(2020, 1, 1, 12), None, dt.datetime(1999, 12, 31)])
        .dt.replace_time_zone("Europe/Paris"),
        "d": [Decimal("1.25"), None, Decimal("-3.50")],
    })


async def test_create_makes_the_table_from_the_frame(mem: Any) -> None:
    df = nested()
    assert await mem.write_frame("db", df, "made", create=True) == 3
    back = await mem.query("db", "SELECT * FROM made ORDER BY id")
    assert back.columns == df.columns
    assert [json.loads(v) if v else v for v in back["l"].to_list()] == [[1, 2, None], None, []]
    assert [json.loads(v) if v else v for v in back["st"].to_list()] == df["st"].to_list()
    assert back["c"].to_list() == ["x", None, "y"] and back["e"].to_list() == ["lo", "hi", None]
    assert back["t"].to_list() == df["t"].to_list() and back["d"].to_list() == df["d"].to_list()
    assert back["ts"].to_list() == df["ts"].dt.convert_time_zone("UTC").to_list()
    assert back["n"].to_list() == [None] * 3
    types = await mem.query("db", "SELECT name, type FROM pragma_table_info('made')")
    assert dict(types.rows())["ts"] == "TIMESTAMPTZ"


async def test_if_exists(mem: Any) -> None:
    df = pl.DataFrame({"a": [1, 2]})
    assert await mem.write_frame("db", df, "t", create=True) == 2
    assert await mem.write_frame("db", df, "t", create=True, if_exists="append") == 2
    assert (await mem.query("db", "SELECT count(*) AS n FROM t")).item() == 4
    with pytest.raises(ProgrammingError, match="already exists"):
        await mem.write_frame("db", df, "t", create=True, if_exists="fail")
    assert await mem.write_frame("db", pl.DataFrame({"b": ["x"]}), "t", create=True,
                                 if_exists="replace") == 1
    assert (await mem.query("db", "SELECT * FROM t")).to_dict(as_series=False) == {"b": ["x"]}
    with pytest.raises(ConfigurationError, match="needs create=True"):
        await mem.write_frame("db", df, "t", if_exists="replace")
    with pytest.raises(ConfigurationError, match="if_exists"):
        await mem.write_frame("db", df, "t", create=True, if_exists="merge")
    await assert_healthy(mem, "db")


async def test_replace_that_fails_keeps_the_old_table(mem: Any) -> None:
    await mem.write_frame("db", pl.DataFrame({"a": [1]}), "keep", create=True)
    bad = pl.DataFrame({"a": [dt.timedelta(seconds=1)]})  # SQLite has no duration type
    with pytest.raises(NotSupportedError, match="column 'a'"):
        await mem.write_frame("db", bad, "keep", create=True, if_exists="replace")
    assert (await mem.query("db", "SELECT a FROM keep")).item() == 1
    await assert_healthy(mem, "db")


async def test_lazyframe_and_dict_of_columns(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (a INTEGER, b TEXT)")
    lazy = pl.LazyFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).filter(pl.col("a") > 1)
    assert await mem.write_frame("db", lazy, "t") == 2
    assert await mem.write_frame("db", {"a": [7], "b": ["w"]}, "t") == 1
    assert (await mem.query("db", "SELECT a FROM t ORDER BY a"))["a"].to_list() == [2, 3, 7]
    with pytest.raises(ProgrammingError, match="not list"):
        await mem.write_frame("db", [1, 2], "t")


async def test_write_frame_inside_a_transaction(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (a INTEGER)")
    with pytest.raises(RuntimeError):
        async with mem.transaction("db") as tx:
            assert await tx.write_frame(pl.DataFrame({"a": [1, 2]}), "t") == 2
            assert (await tx.query("SELECT count(*) AS n FROM t")).item() == 2
            raise RuntimeError("roll back")
    assert (await mem.query("db", "SELECT count(*) AS n FROM t")).item() == 0
    async with mem.transaction("db") as tx:
        await tx.write_frame(pl.DataFrame({"b": [1.5]}), "new", create=True)
    assert (await mem.query("db", "SELECT b FROM new")).item() == 1.5
    await assert_healthy(mem, "db")


async def test_duration_is_refused_by_sqlite(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (a INTEGER, du)")
    with pytest.raises(ProgrammingError, match="column 'du': SQLite has no type for a duration"):
        await mem.write_frame("db", pl.DataFrame({"a": [1], "du": [dt.timedelta(1)]}), "t")
    with pytest.raises(DataError):  # and a List cannot go into an INTEGER column
        await mem.execute("db", "CREATE TABLE li (l INTEGER)")
        await mem.write_frame("db", pl.DataFrame({"l": [[1]]}), "li")
    assert (await mem.query("db", "SELECT count(*) AS n FROM t")).item() == 0
