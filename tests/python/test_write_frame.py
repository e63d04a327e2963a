"""write_frame on SQLite: every Arrow type Polars produces round-trips, rows
land all or nothing, and bad frames give typed errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import DataError, IntegrityError, ProgrammingError

from conftest import assert_healthy

COLUMNS = (
    "i INTEGER, f REAL, s TEXT, b BLOB, ok BOOLEAN, d DATE, ts DATETIME, t TIME, "
    "n DECIMAL(10,2), c TEXT, u8 INTEGER, i16 INTEGER"
)


def sample() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "i": [1, None, -(2**63)],
            "f": [1.5, None, float("inf")],
            "s": ["short", "a string longer than twelve bytes \U0001f600", None],
            "b": [b"\x00\x01", None, b""],
            "ok": [True, False, None],
            "d": [dt.date(2024, 2, 29), None, dt.date(1, 1, 1)],
            "ts": [dt.datetime(2024, 1, 2, 3, 4, 5, 6), None, dt.datetime(9999, 12, 31, 23, 59, 59, 999999)],
            "t": [dt.time(23, 59, 59, 999999), None, dt.time(0, 0)],
            "n": [Decimal("1.25"), None, Decimal("-99999999.99")],
            "c": pl.Series(["x", None, "x"], dtype=pl.Categorical),
            "u8": pl.Series([0, 255, None], dtype=pl.UInt8),
            "i16": pl.Series([-32768, None, 32767], dtype=pl.Int16),
        }
    )


async def test_every_type_round_trips(mem: Any) -> None:
    await mem.execute("db", f"CREATE TABLE t ({COLUMNS})")
    df = sample()
    assert await mem.write_frame("db", df, "t") == 3
    back = await mem.query("db", "SELECT * FROM t")
    for name in df.columns:
        expected = df[name].cast(pl.String) if name == "c" else df[name]
        got = back[name].cast(expected.dtype) if name in ("u8", "i16") else back[name]
        assert got.to_list() == expected.to_list(), name
    await assert_healthy(mem, "db")


async def test_large_frame_in_several_batches(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (i INTEGER, s TEXT)")
    parts = [pl.DataFrame({"i": range(k, k + 50_000), "s": [f"v{j}" for j in range(k, k + 50_000)]})
             for k in range(0, 200_000, 50_000)]
    frame = pl.concat(parts, rechunk=False)  # several Arrow batches
    assert await mem.write_frame("db", frame, "t") == 200_000
    total = await mem.query("db", "SELECT count(*) AS n, sum(i) AS s FROM t")
    assert total.row(0) == (200_000, sum(range(200_000)))


async def test_all_or_nothing_on_a_constraint_failure(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (i INTEGER PRIMARY KEY)")
    with pytest.raises(IntegrityError) as info:
        await mem.write_frame("db", pl.DataFrame({"i": [1, 2, 3, 2, 5]}), "t")
    assert "frame row 3" in str(info.value)
    assert info.value.sqlstate == "23000"
    assert (await mem.query("db", "SELECT count(*) AS n FROM t")).item() == 0
    await assert_healthy(mem, "db")


async def test_unknown_column_and_table(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (i INTEGER)")
    with pytest.raises(ProgrammingError, match="no column named nope"):
        await mem.write_frame("db", pl.DataFrame({"nope": [1]}), "t")
    with pytest.raises(ProgrammingError, match="no such table"):
        await mem.write_frame("db", pl.DataFrame({"i": [1]}), "missing")
    await assert_healthy(mem, "db")


async def test_quoted_identifiers(mem: Any) -> None:
    await mem.execute("db", 'CREATE TABLE "odd ""name""" ("a b" INTEGER, "x""y" TEXT)')
    df = pl.DataFrame({"a b": [1], 'x"y': ["v"]})
    assert await mem.write_frame("db", df, 'odd "name"') == 1
    assert (await mem.query("db", 'SELECT * FROM "odd ""name"""')).row(0) == (1, "v")


async def test_unsupported_types_are_refused_before_writing(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (i INTEGER, l TEXT)")
    with pytest.raises(ProgrammingError, match="column 'l': SQLite has no type for a duration"):
        await mem.write_frame("db", pl.DataFrame({"i": [1], "l": [dt.timedelta(1)]}), "t")
    with pytest.raises(DataError, match="nanoseconds"):
        await mem.execute("db", "CREATE TABLE ns (ts DATETIME)")
        ts = pl.Series("ts", [1_704_067_200_000_000_001]).cast(pl.Datetime("ns"))
        await mem.write_frame("db", ts.to_frame(), "ns")
    assert (await mem.query("db", "SELECT count(*) AS n FROM t")).item() == 0
    await assert_healthy(mem, "db")


# ---- values checked against the declared type (docs/sqlite.md, write_frame) ----


async def test_whole_floats_and_decimals_into_integer_columns_are_exact(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (a INTEGER, b INTEGER, c BIGINT)")
    df = pl.DataFrame({"a": [1.0, -2.0, None], "b": [Decimal("3.00"), Decimal("-9223372036854775808"), None],
                       "c": ["12", "-7", None]})
    assert await mem.write_frame("db", df, "t") == 3
    back = await mem.query("db", "SELECT a, b, c, typeof(a) AS ta, typeof(b) AS tb FROM t")
    assert back.rows() == [(1, 3, 12, "integer", "integer"), (-2, -(2**63), -7, "integer", "integer"),
                           (None, None, None, "null", "null")]


@pytest.mark.parametrize("column,values,message", [
    ("INTEGER", [1.0, 2.5], "column 'v' \\(declared INTEGER\\): a value is not a whole number"),
    ("INTEGER", [Decimal("1.50")], "not a whole number"),
    ("INTEGER", [2.0**63], "not a whole number in the INTEGER range"),
    ("INTEGER", [float("nan")], "not a whole number"),
    ("INTEGER", ["abc"], "not a whole number"),
    ("INTEGER", [dt.date(2020, 1, 1)], "not an integer"),
    ("DECIMAL(10,2)", [Decimal("1.125")], "precision and scale"),
    ("DECIMAL(10,2)", [0.125], "precision and scale"),
    ("DECIMAL(4,2)", [12345], "precision and scale"),
    ("REAL", [2**53 + 1], "beyond 2\\^53"),
    ("REAL", ["1.5"], "not a number"),
    ("BOOLEAN", [2], "not a boolean"),
    ("DATE", [dt.datetime(2020, 1, 1, 12)], "not a date"),
    ("TIME", [dt.date(2020, 1, 1)], "not a time of day"),
    ("TEXT", [b"\x00"], "binary, not text"),
    ("BLOB", [1], "not binary or text"),
])
async def test_values_the_declared_type_cannot_read_back_are_refused(
        mem: Any, column: str, values: list[Any], message: str) -> None:
    await mem.execute("db", f"CREATE TABLE t (id INTEGER, v {column})")
    df = pl.DataFrame({"id": list(range(len(values))), "v": values}, strict=False)
    with pytest.raises(DataError, match=message) as info:
        await mem.write_frame("db", df, "t")
    assert "no row was written" in str(info.value)
    assert (await mem.query("db", "SELECT count(*) AS n FROM t")).item() == 0
    await assert_healthy(mem, "db")


async def test_aware_datetimes_keep_their_instant_in_a_timestamptz_column(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (ts TIMESTAMPTZ, naive DATETIME)")
    paris = pl.Series("ts", [dt.datetime(2024, 7, 1, 12, 0, 0, 5), None]).dt.replace_time_zone("Europe/Paris")
    df = pl.DataFrame({"ts": paris, "naive": [dt.datetime(2024, 1, 1), None]})
    assert await mem.write_frame("db", df, "t") == 2
    back = await mem.query("db", "SELECT ts, naive FROM t")
    assert back.schema["ts"] == pl.Datetime("us", "UTC")
    assert back["ts"].to_list() == paris.dt.convert_time_zone("UTC").to_list()
    assert back["naive"].to_list() == [dt.datetime(2024, 1, 1), None]


async def test_aware_datetimes_into_a_column_without_zone_are_refused(mem: Any) -> None:
    await mem.execute("db", "CREATE TABLE t (ts DATETIME, z TIMESTAMP WITH TIME ZONE)")
    aware = pl.Series("ts", [dt.datetime(2024, 7, 1, 12)]).dt.replace_time_zone("UTC")
    with pytest.raises(DataError, match="column 'ts' .* has a time zone.*TIMESTAMPTZ"):
        await mem.write_frame("db", aware.to_frame(), "t")
    with pytest.raises(DataError, match="column 'z' .* has no time zone"):
        await mem.write_frame("db", pl.DataFrame({"z": [dt.datetime(2024, 7, 1)]}), "t")
    assert (await mem.query("db", "SELECT count(*) AS n FROM t")).item() == 0
