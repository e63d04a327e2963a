"""The non-lossy rule: the declared type decides the dtype; a stored value
that disagrees with it is converted only when that is exact, otherwise the
query fails with DataError naming the column and the row."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from db_pool import DataError

from conftest import assert_healthy, sqlite_url

UNTYPED = "SELECT x FROM ({}) AS q"


async def expect_data_error(pool: Any, sql: str, *fragments: str) -> DataError:
    with pytest.raises(DataError) as info:
        await pool.query("db", sql)
    err = info.value
    for fragment in fragments:
        assert fragment in str(err), (fragment, str(err))
    assert err.engine == "sqlite"
    assert err.sqlstate == "22000"
    assert err.category == "data"
    await assert_healthy(pool, "db")
    return err


async def test_text_in_integer_column(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
    await mem.execute_many("db", "INSERT INTO t VALUES (?, ?)", [(1, 10), (2, "abc"), (3, 30)])
    await expect_data_error(
        mem, "SELECT n FROM t ORDER BY id", "column 'n'", "declared INTEGER", "TEXT", "row 2"
    )
    # converting in the SQL, as the message suggests, works
    df = await mem.query("db", "SELECT CAST(n AS TEXT) AS n FROM t ORDER BY id")
    assert df["n"].to_list() == ["10", "abc", "30"]


async def test_fraction_in_integer_column(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (n INTEGER)")
    await mem.execute_many("db", "INSERT INTO t VALUES (?)", [(1,), (1.5,)])
    await expect_data_error(mem, "SELECT n FROM t", "column 'n'", "REAL", "row 2")
    await mem.execute("db", "DELETE FROM t")
    await mem.execute("db", "INSERT INTO t VALUES (1e19)")  # whole, but beyond int64
    await expect_data_error(mem, "SELECT n FROM t", "column 'n'", "row 1")


async def test_whole_real_in_integer_column_is_exact(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (n INTEGER)")
    await mem.execute_many("db", "INSERT INTO t VALUES (?)", [(2.0,), (-7.0,), ("12",), (None,)])
    df = await mem.query("db", "SELECT n FROM t")
    assert df.schema == pl.Schema({"n": pl.Int64})
    assert df["n"].to_list() == [2, -7, 12, None]


async def test_untyped_integers_mixed_with_reals_become_float64(mem: Any) -> None:
    df = await mem.query("db", UNTYPED.format("SELECT 1 AS x UNION ALL SELECT 2.5 UNION ALL SELECT 3"))
    assert df.schema == pl.Schema({"x": pl.Float64})
    assert df["x"].to_list() == [1.0, 2.5, 3.0]
    df = await mem.query("db", UNTYPED.format("SELECT 2.5 AS x UNION ALL SELECT 4 UNION ALL SELECT NULL"))
    assert df.schema == pl.Schema({"x": pl.Float64})
    assert df["x"].to_list() == [2.5, 4.0, None]
    # 2**53 is still exact
    df = await mem.query("db", UNTYPED.format("SELECT 9007199254740992 AS x UNION ALL SELECT 0.5"))
    assert df["x"].to_list() == [9007199254740992.0, 0.5]


async def test_untyped_integer_too_big_for_float64_is_an_error(mem: Any) -> None:
    await expect_data_error(
        mem,
        UNTYPED.format("SELECT 9007199254740993 AS x UNION ALL SELECT 2.5"),
        "column 'x'",
        "row 2",
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 2.5 AS x UNION ALL SELECT 9007199254740993",
        "SELECT 1 AS x UNION ALL SELECT 2.5 UNION ALL SELECT 9007199254740993",
    ],
    ids=["real-first", "after-promotion"],
)
async def test_untyped_integer_after_real_is_not_rounded(mem: Any, sql: str) -> None:
    try:
        df = await mem.query("db", UNTYPED.format(sql))
    except DataError:
        return  # refusing is fine
    assert int(df["x"][-1]) == 9007199254740993, "2**53 + 1 was rounded"


async def test_untyped_types_are_fixed_by_the_first_stream_batch(mem: Any) -> None:
    sql = UNTYPED.format("SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 2.5")
    it = mem.stream("db", sql, batch_rows=2)
    first = await it.__anext__()
    assert first.schema == pl.Schema({"x": pl.Int64})
    with pytest.raises(DataError, match="row 3"):
        await it.__anext__()
    await it.aclose()
    await assert_healthy(mem, "db")


async def test_stream_untyped_column_null_in_first_batch_learns_its_type_later(mem: Any) -> None:
    # Documented in docs/sqlite.md: an untyped column that is NULL throughout
    # the first batch is Null there (SQLite cannot tell its type); later
    # batches carry the real type, and a relaxed concat restores query()'s frame.
    sql = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 30) "
        "SELECT x, CASE WHEN x > 15 THEN x END AS y FROM c"
    )
    frames = [df async for df in mem.stream("db", sql, batch_rows=10)]
    await assert_healthy(mem, "db")
    assert [f.height for f in frames] == [10, 10, 10]
    assert [f.schema["y"] for f in frames] == [pl.Null, pl.Int64, pl.Int64]
    assert pl.concat(frames, how="vertical_relaxed").equals(await mem.query("db", sql))


async def test_stream_error_names_the_row_across_batches(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
    await mem.execute(
        "db",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 20000) "
        "INSERT INTO t SELECT x, CASE WHEN x = 15000 THEN 'bad' ELSE x END FROM c",
    )
    seen = 0
    with pytest.raises(DataError, match="row 15000"):
        async for df in mem.stream("db", "SELECT n FROM t ORDER BY id", batch_rows=1000):
            seen += df.height
    assert seen == 14_000
    await assert_healthy(mem, "db")


async def test_decimal_needing_rounding_is_an_error(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (id INTEGER PRIMARY KEY, d DECIMAL(10,2), s DECIMAL(5,2))")
    await mem.execute("db", "INSERT INTO t VALUES (1, ?, NULL)", [Decimal("1.25")])
    await mem.execute("db", "INSERT INTO t VALUES (2, ?, NULL)", [Decimal("1.234")])
    await expect_data_error(mem, "SELECT d FROM t ORDER BY id", "column 'd'", "DECIMAL(10,2)", "row 2")
    await mem.execute("db", "DELETE FROM t")
    await mem.execute("db", "INSERT INTO t VALUES (1, NULL, ?)", [Decimal("12345")])  # 5 > 5-2 digits
    await expect_data_error(mem, "SELECT s FROM t", "column 's'", "row 1")
    await mem.execute("db", "DELETE FROM t")
    await mem.execute("db", "INSERT INTO t VALUES (1, 'abc', NULL)")
    await expect_data_error(mem, "SELECT d FROM t", "column 'd'", "TEXT")
    # trailing zeros beyond the scale are not rounding
    await mem.execute("db", "DELETE FROM t")
    await mem.execute("db", "INSERT INTO t VALUES (1, CAST('1.2000' AS TEXT), ?)", ["999.99"])
    df = await mem.query("db", "SELECT d, s FROM t")
    assert df.row(0) == (Decimal("1.20"), Decimal("999.99"))


@pytest.mark.parametrize(
    ("decl", "value"),
    [("DECIMAL(10,5)", "0.00001"), ("NUMERIC(38,10)", "-0.0000000001"), ("NUMERIC(38,10)", "1E+20")],
)
async def test_decimal_exponent_forms_read_exactly(mem: Any, decl: str, value: str) -> None:
    await mem.execute("db", f"CREATE TABLE t (d {decl})")
    await mem.execute("db", "INSERT INTO t VALUES (?)", [Decimal(value)])
    assert (await mem.query("db", "SELECT d FROM t")).item() == Decimal(value)


async def test_decimal_column_real_is_not_silently_rounded(mem: Any, db_path: Path) -> None:
    await mem.create_pool("f", url=sqlite_url(db_path))
    await mem.execute("f", "CREATE TABLE t (d DECIMAL(20,2))")
    await mem.execute("f", "INSERT INTO t VALUES (?)", [Decimal("123456789012345.67")])
    with contextlib.closing(sqlite3.connect(db_path)) as con:
        stored = con.execute("SELECT d FROM t").fetchone()[0]
    assert stored == 123456789012345.67  # SQLite keeps it as this REAL
    try:
        got = (await mem.query("f", "SELECT d FROM t")).item()
    except DataError:
        return  # refusing is fine
    assert got == Decimal(repr(stored)), f"{got} != {stored!r}: rounded without an error"


async def test_invalid_utf8_text_is_an_error(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)")
    await mem.execute("db", "INSERT INTO t VALUES (1, 'fine \U0001f600')")
    await mem.execute("db", "INSERT INTO t VALUES (2, CAST(X'FF' AS TEXT))")
    await expect_data_error(mem, "SELECT s FROM t ORDER BY id", "column 's'", "UTF-8", "row 2")
    for blob in ("C328", "EDA080", "C0AF", "F4908080", "61F09F98"):
        await expect_data_error(mem, f"SELECT CAST(X'{blob}' AS TEXT) AS u", "column 'u'", "UTF-8")
    # as bytes it is fine
    df = await mem.query("db", "SELECT CAST(s AS BLOB) AS b FROM t WHERE id = 2")
    assert df.item() == b"\xff"


async def test_other_disagreeing_values(mem: Any) -> None:
    await mem.execute(
        "db", "CREATE TABLE t (bo BOOLEAN, d DATE, ts DATETIME, tm TIME, b BLOB, s TEXT)"
    )

    async def one(col: str, value: Any, ok: Any = DataError) -> None:
        await mem.execute("db", "DELETE FROM t")
        await mem.execute("db", f"INSERT INTO t ({col}) VALUES (?)", [value])
        if ok is DataError:
            await expect_data_error(mem, f"SELECT {col} FROM t", f"column '{col}'", "row 1")
        else:
            assert (await mem.query("db", f"SELECT {col} FROM t")).item() == ok

    await one("bo", 2)
    await one("bo", "true")
    await one("bo", 1.0, True)
    await one("d", "2021-02-30")
    await one("d", "2021-02-28 10:00")
    await one("ts", "2020-01-01 10:00:00.1234567")  # would lose the 7th digit
    await one("ts", "2020-01-01T10:00:00Z", dt.datetime(2020, 1, 1, 10))
    await one("ts", 1700000000)
    await one("tm", "24:00:00")
    await one("tm", "12:00:00.123456000", dt.time(12, 0, 0, 123456))
    await one("b", 5)
    await one("b", "text", b"text")
    await one("s", 12, "12")
    await one("s", b"\xff")
