"""Differential test, PostgreSQL (issue 12): random frames of every dtype
write_frame takes, written with COPY, then read back with query() (both
read paths: COPY binary and the extended protocol) and with psycopg,
compared cell by cell with what was written (generators in
tests/python/differential.py)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import polars as pl
import pytest

from db_pool import Error

import differential as D
from differential import column

from .conftest import POOL_ID

ROWS = 3000


# PostgreSQL's own limits shape some values:
# - text cannot hold the NUL character (PostgreSQL refuses it), so no NUL in text.
# - UInt64 above 2**63-1: no integer type holds it (db-pool refuses it with
#   DataError before sending; numeric(20) could, but write_frame reads uint64
#   as a 64-bit signed integer).
# - dates and timestamps: psycopg (Python) holds years 1 to 9999 only; the
#   server's wider range is tested below, through psycopg's text.
LABELS = ["red", "green", "", "blue \U0001f600", "it's", "tab\there", "back\\slash"]

COLUMNS: list[D.Col] = [
    column("i8", "int2", pl.Int8, D.ints(-(2**7), 2**7 - 1), pl.Int16),
    column("i16", "int2", pl.Int16, D.ints(-(2**15), 2**15 - 1), pl.Int16),
    column("i32", "int4", pl.Int32, D.ints(-(2**31), 2**31 - 1), pl.Int32),
    column("i64", "int8", pl.Int64, D.ints(-(2**63), 2**63 - 1), pl.Int64),
    column("u8", "int2", pl.UInt8, D.ints(0, 2**8 - 1), pl.Int16),
    column("u16", "int4", pl.UInt16, D.ints(0, 2**16 - 1), pl.Int32),
    column("u32", "int8", pl.UInt32, D.ints(0, 2**32 - 1), pl.Int64),
    column("u64", "int8", pl.UInt64, D.ints(0, 2**63 - 1), pl.Int64),
    column("f32", "float4", pl.Float32, D.floats(32), pl.Float32),
    column("f64", "float8", pl.Float64, D.floats(64), pl.Float64),
    *(column(f"dec_{p}_{s}", f"numeric({p},{s})", pl.Decimal(p, s), D.decimals(p, s), pl.Decimal(p, s))
      for p, s in D.DECIMALS),
    # unconstrained numeric: query() takes the widest scale seen
    column("num", "numeric", pl.Decimal(38, 10), D.decimals(38, 10), pl.Decimal(38, 10)),
    column("txt", "text", pl.String, D.texts(nul=False), pl.String),
    column("vc", "varchar(200)", pl.String, D.texts(nul=False, long=200), pl.String),
    column("cat", "text", pl.Categorical, D.choices(LABELS), pl.String),
    column("enum", "text", pl.Enum(LABELS), D.choices(LABELS), pl.String),
    column("uid", "uuid", pl.String, D.guids(), pl.String, expect_query=D.canonical_guid,
           expect_ref=D.canonical_guid, ref=D.guid_text),
    column("bin", "bytea", pl.Binary, D.binaries(), pl.Binary),
    column("flag", "bool", pl.Boolean, D.choices([True, False]), pl.Boolean),
    column("day", "date", pl.Date, D.dates(), pl.Date),
    column("ts", "timestamp", pl.Datetime("us"), D.datetimes(*D.FULL_RANGE), pl.Datetime("us")),
    column("ts_ms", "timestamp", pl.Datetime("ms"), D.datetimes(*D.FULL_RANGE, step_us=1000),
           pl.Datetime("us")),
    column("ts_ns", "timestamp", pl.Datetime("ns"), D.datetimes(*D.NS_RANGE), pl.Datetime("us")),
    column("tsz", "timestamptz", pl.Datetime("us", "UTC"), D.datetimes(*D.FULL_RANGE, aware=True),
           pl.Datetime("us", "UTC")),
    column("tsz_ny", "timestamptz", pl.Datetime("us", "America/New_York"),
           D.datetimes(*D.ZONED_RANGE, aware=True), pl.Datetime("us", "UTC")),
    column("tod", "time", pl.Time, D.times(), pl.Time),
    column("nothing", "int4", pl.Null, D.choices([None]), pl.Int32),
]


@pytest.mark.parametrize("copy_format", ["binary", "text"])
@pytest.mark.parametrize("seed", D.SEEDS)
async def test_write_frame_matches_psycopg(seed: int, copy_format: str, apg: Any, admin: Any) -> None:
    """Every column above has a binary COPY form, so write_frame sends them
    in COPY's binary format; a List column (an array literal, text only)
    beside them sends the same values in the text format."""
    frame = D.make_frame(COLUMNS, seed, ROWS)
    D.assert_covered(frame, COLUMNS)
    await apg.execute(POOL_ID, D.create_table_sql("diff", COLUMNS))
    rows = D.layout(frame, seed)
    if copy_format == "text":
        await apg.execute(POOL_ID, "ALTER TABLE diff ADD COLUMN text_only int8[]")
        rows = rows.with_columns(text_only=pl.lit([1], dtype=pl.List(pl.Int64)))
    assert await apg.write_frame(POOL_ID, rows, "diff") == ROWS
    reports = {}
    for copy in (True, False):
        back = await apg.query(POOL_ID, "SELECT * FROM diff ORDER BY id", copy=copy)
        reports[f"query(copy={copy})"] = D.check_query(frame, back, COLUMNS)
    names = ", ".join(f'"{c.name}"' for c in COLUMNS)
    # binary results: float4 as the exact float32, timestamptz as aware UTC
    rows = admin.cursor(binary=True).execute(f"SELECT id, {names} FROM diff ORDER BY id").fetchall()
    reports["psycopg"] = D.check_reference(frame, rows, COLUMNS)
    for name, report in reports.items():
        assert report.counts == {}, f"{name} differs:\n{report}"


# ---- dates and timestamps outside Python's years ------------------------------------
#
# PostgreSQL holds dates from 4714-11-24 BC to 5874897-12-31 and timestamps
# from 4714-11-24 BC to 294276 AD (Arrow's microseconds end at 294247-01-10).
# psycopg cannot make Python objects of them, so it reads their text here.

DAY_US = 86_400_000_000
PG_MIN_DAY = -2_440_588  # 4714-11-24 BC
PG_MAX_DAY = 2_145_042_905  # 5874897-12-31
YEAR_1_DAY = -719_162  # 0001-01-01
INT64_MAX = 2**63 - 1


def civil_from_days(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of days since 1970-01-01; year 0 is 1 BC."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, doy - (153 * mp + 2) // 5 + 1


def pg_date_text(days: int) -> str:
    y, m, d = civil_from_days(days)
    return f"{y:04d}-{m:02d}-{d:02d}" if y > 0 else f"{1 - y:04d}-{m:02d}-{d:02d} BC"


def pg_timestamp_text(us: int, tz: bool) -> str:
    days, of_day = divmod(us, DAY_US)
    date, bc = pg_date_text(days).removesuffix(" BC"), civil_from_days(days)[0] <= 0
    secs, frac = divmod(of_day, 1_000_000)
    text = f"{date} {secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    text += f".{frac:06d}".rstrip("0") if frac else ""
    return text + ("+00" if tz else "") + (" BC" if bc else "")


def wide_frame(seed: int, first_day: int, last_day: int, rows: int = 300) -> pl.DataFrame:
    """Dates, timestamps and aware timestamps between two days (as far as
    Arrow's microseconds reach), their extremes first, some NULL."""
    rng = random.Random(seed)
    first_us, last_us = first_day * DAY_US, min(last_day * DAY_US + DAY_US - 1, INT64_MAX)
    nulls = {rng.randrange(2, rows) for _ in range(rows // 10)}
    days: list[int | None] = [first_day, last_day]
    us: list[int | None] = [first_us, last_us]
    for i in range(2, rows):
        days.append(None if i in nulls else rng.randint(first_day, last_day))
        us.append(None if i in nulls else rng.randint(first_us, last_us))
    return pl.DataFrame({
        "id": range(rows),
        "d": pl.Series(days, dtype=pl.Int32).cast(pl.Date),
        "ts": pl.Series(us, dtype=pl.Int64).cast(pl.Datetime("us")),
        "tz": pl.Series(us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
    })


async def check_wide(pool: Any, admin: Any, frame: pl.DataFrame) -> D.Report:
    """Writes the frame, then compares query()'s values (as integers) and
    psycopg's text of each cell with the frame's."""
    await pool.execute(POOL_ID, "CREATE TABLE wide (id int8 PRIMARY KEY, d date, ts timestamp, tz timestamptz)")
    report = D.Report()
    try:
        await pool.write_frame(POOL_ID, frame, "wide")
    except Error as exc:  # a difference of the whole table
        report.add("write_frame", -1, f"{frame.height} rows written", exc)
        return report
    days = frame["d"].to_physical().to_list()
    us = frame["ts"].to_physical().to_list()
    for copy in (True, False):
        back = await pool.query(POOL_ID, "SELECT * FROM wide ORDER BY id", copy=copy)
        for name, expected in (("d", days), ("ts", us), ("tz", us)):
            D.compare(report, f"{name} (query copy={copy})", expected, back[name].to_physical().to_list())
    texts = {
        "d": [None if v is None else pg_date_text(v) for v in days],
        "ts": [None if v is None else pg_timestamp_text(v, tz=False) for v in us],
        "tz": [None if v is None else pg_timestamp_text(v, tz=True) for v in us],
    }
    rows = admin.execute("SELECT d::text, ts::text, tz::text FROM wide ORDER BY id").fetchall()
    for k, (name, expected) in enumerate(texts.items()):
        D.compare(report, f"{name} (psycopg text)", expected, [r[k] for r in rows])
    return report


@pytest.mark.parametrize("seed", D.SEEDS)
async def test_write_frame_years_beyond_python(seed: int, apg: Any, admin: Any) -> None:
    """Year 1 to the last day PostgreSQL (dates) or Arrow (timestamps) holds."""
    report = await check_wide(apg, admin, wide_frame(seed, YEAR_1_DAY, PG_MAX_DAY))
    assert report.counts == {}, str(report)


async def test_write_frame_bc_dates(apg: Any, admin: Any) -> None:
    """4714-11-24 BC to 0000-12-31 (1 BC): PostgreSQL holds them, query()
    reads them, and write_frame sends them in PostgreSQL's own form
    ('0001-12-31 BC': its input takes no ISO year 0 or below)."""
    report = await check_wide(apg, admin, wide_frame(1, PG_MIN_DAY, YEAR_1_DAY - 1))
    assert report.counts == {}, str(report)
