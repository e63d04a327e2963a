"""Differential test, SQLite (issue 12): random frames of every dtype
write_frame takes, written, then read back with query() and with Python's
sqlite3, compared cell by cell with what was written. The PostgreSQL and
MSSQL versions are tests/python/pg/test_pg_differential.py and
tests/python/mssql/test_mssql_differential.py; the generators are in
differential.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from db_pool import DataError, DatabasePool

import differential as D
from conftest import sqlite_url
from differential import column

ROWS = 3000


def from_int(value: Any) -> Any:
    """BOOLEAN is stored as INTEGER 0/1; anything else stays as it is (and differs)."""
    return {0: False, 1: True}.get(value, value) if type(value) is int else value


def from_text(parse: Any) -> Any:
    return lambda value: parse(value) if isinstance(value, str) else value


def from_number(value: Any) -> Any:
    """A DECIMAL column holds INTEGER or REAL (NUMERIC affinity): its exact value."""
    if type(value) is int:
        return Decimal(value)
    return Decimal(repr(value)) if isinstance(value, float) else value


# SQLite's own limits shape some values:
# - NaN: SQLite stores a NaN REAL as NULL, so db-pool refuses it (DataError).
# - -0.0: a REAL column stores an integral double as an integer in the record
#   and reads it back as 0.0 (sqlite3 gives 0.0 as well), so the sign is lost.
# - UInt64 above 2**63-1: no SQLite INTEGER holds it (db-pool says DataError).
# - DECIMAL(p,s) has NUMERIC affinity: SQLite turns the exact decimal text
#   db-pool binds into a REAL (an INTEGER when integral). See sqlite_decimals.


def sqlite_decimals(precision: int, scale: int) -> tuple[D.Gen, list[Decimal]]:
    """Decimals SQLite can store exactly: with scale 0 any 64-bit integer,
    otherwise any of at most 15 significant digits. DECIMAL(p,s) has NUMERIC
    affinity, so SQLite keeps a REAL; db-pool binds the double that reads
    back as exactly the decimal (SQLite's own text-to-REAL conversion is not
    correctly rounded: '-601.758578' would become -601.7585779999999), and
    refuses a decimal no double holds exactly (tests/python/test_write_frame.py)."""
    whole = precision - scale  # digits before the point
    integers = D.ints(-min(10**precision - 1, 2**63), min(10**precision - 1, 2**63 - 1))

    def gen(rng: random.Random) -> Decimal:
        if scale == 0 and rng.random() < 0.5:
            return D.scaled(integers[0](rng), 0)
        digits = rng.randint(1, min(15, precision))
        low = max(0, digits - whole)  # the lowest digit's place below the point
        shift = rng.randint(low, min(scale, digits + scale)) if scale else 0
        unscaled = rng.randrange(10 ** digits) * 10 ** (scale - shift)
        return D.scaled(-unscaled if rng.random() < 0.5 else unscaled, scale)

    extremes = [D.scaled(0, scale)]
    if scale == 0:
        extremes += [D.scaled(v, 0) for v in integers[1]]
    if whole > 0:
        largest = min(10**whole, 10**15) - 1
        extremes += [D.scaled(largest * 10**scale, scale), D.scaled(-largest * 10**scale, scale)]
    if scale > 0:
        j = min(scale, 21)
        extremes += [D.scaled(5**j * 10 ** (scale - j), scale), D.scaled(-(5**j) * 10 ** (scale - j), scale)]
    return gen, extremes


LABELS = ["red", "green", "", "blue \U0001f600", "it's"]

COLUMNS: list[D.Col] = [
    column("i8", "INTEGER", pl.Int8, D.ints(-(2**7), 2**7 - 1), pl.Int64),
    column("i16", "INTEGER", pl.Int16, D.ints(-(2**15), 2**15 - 1), pl.Int64),
    column("i32", "INTEGER", pl.Int32, D.ints(-(2**31), 2**31 - 1), pl.Int64),
    column("i64", "INTEGER", pl.Int64, D.ints(-(2**63), 2**63 - 1), pl.Int64),
    column("u8", "INTEGER", pl.UInt8, D.ints(0, 2**8 - 1), pl.Int64),
    column("u16", "INTEGER", pl.UInt16, D.ints(0, 2**16 - 1), pl.Int64),
    column("u32", "INTEGER", pl.UInt32, D.ints(0, 2**32 - 1), pl.Int64),
    column("u64", "INTEGER", pl.UInt64, D.ints(0, 2**63 - 1), pl.Int64),
    column("f32", "REAL", pl.Float32, D.floats(32, nan=False, negative_zero=False), pl.Float64),
    column("f64", "REAL", pl.Float64, D.floats(64, nan=False, negative_zero=False), pl.Float64),
    *(column(f"dec_{p}_{s}", f"DECIMAL({p},{s})", pl.Decimal(p, s), sqlite_decimals(p, s),
           pl.Decimal(p, s), ref=from_number) for p, s in D.DECIMALS),
    column("txt", "TEXT", pl.String, D.texts(), pl.String),
    column("cat", "TEXT", pl.Categorical, D.choices(LABELS), pl.String),
    column("enum", "TEXT", pl.Enum(LABELS), D.choices(LABELS), pl.String),
    column("bin", "BLOB", pl.Binary, D.binaries(), pl.Binary),
    column("flag", "BOOLEAN", pl.Boolean, D.choices([True, False]), pl.Boolean, ref=from_int),
    column("day", "DATE", pl.Date, D.dates(), pl.Date, ref=from_text(dt.date.fromisoformat)),
    column("ts", "DATETIME", pl.Datetime("us"), D.datetimes(*D.FULL_RANGE), pl.Datetime("us"),
           ref=from_text(dt.datetime.fromisoformat)),
    column("ts_ms", "DATETIME", pl.Datetime("ms"), D.datetimes(*D.FULL_RANGE, step_us=1000),
           pl.Datetime("us"), ref=from_text(dt.datetime.fromisoformat)),
    column("ts_ns", "TIMESTAMP", pl.Datetime("ns"), D.datetimes(*D.NS_RANGE), pl.Datetime("us"),
           ref=from_text(dt.datetime.fromisoformat)),
    # Aware datetimes need a column with a zone (TIMESTAMPTZ): stored as UTC
    # text with +00:00, read by query() as Datetime UTC (docs/sqlite.md);
    # sqlite3's text parses to the aware instant.
    column("tsz", "TIMESTAMPTZ", pl.Datetime("us", "UTC"), D.datetimes(*D.FULL_RANGE, aware=True),
           pl.Datetime("us", "UTC"), ref=from_text(dt.datetime.fromisoformat)),
    column("tsz_ny", "TIMESTAMP WITH TIME ZONE", pl.Datetime("us", "America/New_York"),
           D.datetimes(*D.ZONED_RANGE, aware=True), pl.Datetime("us", "UTC"),
           ref=from_text(dt.datetime.fromisoformat)),
    column("tod", "TIME", pl.Time, D.times(), pl.Time, ref=from_text(dt.time.fromisoformat)),
    column("nothing", "INTEGER", pl.Null, D.choices([None]), pl.Int64),
]


@pytest.mark.parametrize("seed", D.SEEDS)
async def test_write_frame_matches_sqlite3(seed: int, tmp_path: Path) -> None:
    path = tmp_path / "diff.db"
    frame = D.make_frame(COLUMNS, seed, ROWS)
    D.assert_covered(frame, COLUMNS)
    async with DatabasePool() as pool:
        await pool.create_pool("db", url=sqlite_url(path), max_size=1)
        await pool.execute("db", D.create_table_sql("diff", COLUMNS))
        assert await pool.write_frame("db", D.layout(frame, seed), "diff") == ROWS
        back = await pool.query("db", "SELECT * FROM diff ORDER BY id")
    query_report = D.check_query(frame, back, COLUMNS)
    names = ", ".join(f'"{c.name}"' for c in COLUMNS)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(f"SELECT id, {names} FROM diff ORDER BY id").fetchall()
    reference_report = D.check_reference(frame, rows, COLUMNS)
    assert query_report.counts == {}, f"query() differs:\n{query_report}"
    assert reference_report.counts == {}, f"sqlite3 differs:\n{reference_report}"


async def test_write_frame_years_outside_0000_9999(tmp_path: Path) -> None:
    """SQLite keeps dates as 'YYYY-MM-DD' text, years 0000 to 9999 (its date
    functions' range; query() reads those, year 0 included). Other years
    must be refused (DataError) or read back as written, never stored as
    text query() then refuses; the main test keeps to years 1-9999 (Python's,
    for sqlite3's side)."""
    day_us = 86_400_000_000
    days = [-719_529, -1_000_000, 2_932_897, 5_000_000]  # -001-12-31, ..., 10000-01-01, ...
    frame = pl.DataFrame({
        "id": range(len(days)),
        "d": pl.Series(days, dtype=pl.Int32).cast(pl.Date),
        "ts": pl.Series([d * day_us + 1 for d in days], dtype=pl.Int64).cast(pl.Datetime("us")),
    })
    wrong = []
    async with DatabasePool() as pool:
        await pool.create_pool("db", url=sqlite_url(tmp_path / "years.db"), max_size=1)
        await pool.execute("db", "CREATE TABLE years (id INTEGER, d DATE, ts DATETIME)")
        for row in range(frame.height):
            one = frame.slice(row, 1)
            try:
                await pool.write_frame("db", one, "years")
            except DataError:
                continue  # refused: fine
            stored = await pool.query("db", f"SELECT CAST(d AS TEXT) AS d FROM years WHERE id = {row}")
            try:
                back = await pool.query("db", f"SELECT d, ts FROM years WHERE id = {row}")
            except DataError as exc:
                wrong.append(f"{days[row]} days written as {stored.item()!r}; query(): {exc}")
                continue
            if back.to_dicts() != one.drop("id").to_dicts():
                wrong.append(f"{days[row]} days written as {stored.item()!r}; read as {back.to_dicts()}")
    assert wrong == []
