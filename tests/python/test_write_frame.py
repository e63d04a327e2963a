"""write_frame on SQLite: every Arrow type Polars produces round-trips, rows
land all or nothing, and bad frames give typed errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import DataError, IntegrityError, NotSupportedError, ProgrammingError

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
    with pytest.raises(NotSupportedError, match="column 'l'"):
        await mem.write_frame("db", pl.DataFrame({"i": [1], "l": [[1, 2]]}), "t")
    with pytest.raises(DataError, match="nanoseconds"):
        await mem.execute("db", "CREATE TABLE ns (ts DATETIME)")
        ts = pl.Series("ts", [1_704_067_200_000_000_001]).cast(pl.Datetime("ns"))
        await mem.write_frame("db", ts.to_frame(), "ns")
    assert (await mem.query("db", "SELECT count(*) AS n FROM t")).item() == 0
    await assert_healthy(mem, "db")
