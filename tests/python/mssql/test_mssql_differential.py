"""Differential test, MSSQL (issue 12): random frames of every dtype
write_frame takes, bulk-copied into a table of every SQL type it loads,
then read back with query() and with pytds (python-tds, an independent
pure-Python TDS client), compared cell by cell with what was written
(generators in tests/python/differential.py).

Against the TDS test server both clients read what the server stores on
sqlite; with DB_POOL_TEST_MSSQL_DSN the same test runs against SQL Server."""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

import differential as D
from differential import column

from .conftest import POOL_ID, Target

pytds = pytest.importorskip("pytds")

ROWS = 1500  # fewer than elsewhere: the TDS test server is a Python process


def money(lo: int, hi: int) -> tuple[D.Gen, list[Decimal]]:
    """Decimals of 4 fraction digits whose unscaled value is in [lo, hi]."""
    gen, extremes = D.ints(lo, hi)
    return (lambda rng: D.scaled(gen(rng), 4)), [D.scaled(v, 4) for v in extremes]


# SQL Server's (and the test server's) limits shape some values:
# - float and real hold no NaN or infinity (db-pool refuses them with DataError).
# - -0.0: the test server keeps float/real in sqlite REAL columns, which give
#   back 0.0 for -0.0 (pytds reads 0.0 as well).
# - UInt64 above 2**63-1: bigint cannot hold it (db-pool refuses it).
# - varchar: characters outside the column's code page become '?', as an
#   INSERT would do; ASCII only here. nvarchar(n) counts UTF-16 units, so an
#   astral character counts twice: at most n/2 characters. nchar(n) pads to
#   n UTF-16 units on SQL Server but to n characters on the test server:
#   no astral characters there.
# - datetime rounds to 1/300 s and smalldatetime to the minute, as SQL Server
#   does: only values they hold exactly (10 ms steps, whole minutes) are written.
# - dates and times: years 1 to 9999 (both SQL Server's range and Python's).
LABELS = ["red", "green", "", "blue \U0001f600", "it's", "[bracket]"]
ASCII = string.printable
BMP = "".join(c for c in D.TEXT_ALPHABET if ord(c) < 0x10000)
DATETIME_RANGE = (dt.datetime(1753, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 990000))
SMALLDATETIME_RANGE = (dt.datetime(1900, 1, 1), dt.datetime(2079, 6, 6, 23, 59))


def padded(width: int) -> Any:
    """char(n)/nchar(n)/binary(n) give back n characters (UTF-16 units) or bytes."""

    def pad(value: Any) -> Any:
        if isinstance(value, bytes):
            return value + bytes(width - len(value))
        return value + " " * (width - len(value.encode("utf-16-le")) // 2)

    return pad


COLUMNS: list[D.Col] = [
    column("i8", "smallint", pl.Int8, D.ints(-(2**7), 2**7 - 1), pl.Int16),
    column("i16", "smallint", pl.Int16, D.ints(-(2**15), 2**15 - 1), pl.Int16),
    column("i32", "int", pl.Int32, D.ints(-(2**31), 2**31 - 1), pl.Int32),
    column("i64", "bigint", pl.Int64, D.ints(-(2**63), 2**63 - 1), pl.Int64),
    column("u8", "tinyint", pl.UInt8, D.ints(0, 2**8 - 1), pl.UInt8),
    column("u16", "int", pl.UInt16, D.ints(0, 2**16 - 1), pl.Int32),
    column("u32", "bigint", pl.UInt32, D.ints(0, 2**32 - 1), pl.Int64),
    column("u64", "bigint", pl.UInt64, D.ints(0, 2**63 - 1), pl.Int64),
    column("f32", "real", pl.Float32, D.floats(32, nan=False, infinities=False, negative_zero=False),
           pl.Float32),
    column("f64", "float", pl.Float64, D.floats(64, nan=False, infinities=False, negative_zero=False),
           pl.Float64),
    *(column(f"dec_{p}_{s}", f"decimal({p},{s})", pl.Decimal(p, s), D.decimals(p, s), pl.Decimal(p, s))
      for p, s in D.DECIMALS),
    column("cash", "money", pl.Decimal(19, 4), money(-(2**63), 2**63 - 1), pl.Decimal(19, 4)),
    column("small_cash", "smallmoney", pl.Decimal(10, 4), money(-(2**31), 2**31 - 1), pl.Decimal(10, 4)),
    column("txt", "nvarchar(max)", pl.String, D.texts(), pl.String),
    column("nv", "nvarchar(100)", pl.String, D.texts(long=50), pl.String),
    column("vc", "varchar(100)", pl.String, D.texts(ASCII, nul=False, long=100), pl.String),
    column("ch", "char(20)", pl.String, D.texts(ASCII, nul=False, long=20), pl.String,
           expect_query=padded(20), expect_ref=padded(20)),
    column("nch", "nchar(20)", pl.String, D.texts(BMP, long=20), pl.String,
           expect_query=padded(20), expect_ref=padded(20)),
    column("cat", "nvarchar(50)", pl.Categorical, D.choices(LABELS), pl.String),
    column("enum", "nvarchar(50)", pl.Enum(LABELS), D.choices(LABELS), pl.String),
    column("guid", "uniqueidentifier", pl.String, D.guids(), pl.String, expect_query=D.canonical_guid,
           expect_ref=D.canonical_guid, ref=D.guid_text),
    column("bin", "varbinary(max)", pl.Binary, D.binaries(), pl.Binary),
    column("vb", "varbinary(100)", pl.Binary, D.binaries(long=100), pl.Binary),
    column("fb", "binary(16)", pl.Binary, D.binaries(long=16), pl.Binary,
           expect_query=padded(16), expect_ref=padded(16)),
    column("flag", "bit", pl.Boolean, D.choices([True, False]), pl.Boolean),
    column("day", "date", pl.Date, D.dates(), pl.Date),
    column("ts", "datetime2(6)", pl.Datetime("us"), D.datetimes(*D.FULL_RANGE), pl.Datetime("us")),
    column("ts7", "datetime2(7)", pl.Datetime("us"), D.datetimes(*D.FULL_RANGE), pl.Datetime("us")),
    column("ts_ms", "datetime2(3)", pl.Datetime("ms"), D.datetimes(*D.FULL_RANGE, step_us=1000),
           pl.Datetime("us")),
    column("ts_ns", "datetime2(7)", pl.Datetime("ns"), D.datetimes(*D.NS_RANGE), pl.Datetime("us")),
    column("tsz", "datetimeoffset(7)", pl.Datetime("us", "UTC"), D.datetimes(*D.FULL_RANGE, aware=True),
           pl.Datetime("us", "UTC")),
    column("tsz_ny", "datetimeoffset(6)", pl.Datetime("us", "America/New_York"),
           D.datetimes(*D.ZONED_RANGE, aware=True), pl.Datetime("us", "UTC")),
    column("old", "datetime", pl.Datetime("ms"), D.datetimes(*DATETIME_RANGE, step_us=10_000),
           pl.Datetime("us")),
    column("small", "smalldatetime", pl.Datetime("us"), D.datetimes(*SMALLDATETIME_RANGE, step_us=60_000_000),
           pl.Datetime("us")),
    column("tod", "time(7)", pl.Time, D.times(), pl.Time),
    column("nothing", "int", pl.Null, D.choices([None]), pl.Int32),
]


def pytds_rows(server: Target, sql: str) -> list[Any]:
    with pytds.connect(server.host, port=server.port, user=server.user, password=server.password,
                       database=server.database, autocommit=True, login_timeout=5) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())


@pytest.mark.parametrize("seed", D.SEEDS)
async def test_write_frame_matches_pytds(seed: int, ams: Any, server: Target, table: str) -> None:
    frame = D.make_frame(COLUMNS, seed, ROWS)
    D.assert_covered(frame, COLUMNS)
    await ams.execute(POOL_ID, D.create_table_sql(table, COLUMNS, quote="[]"))
    assert await ams.write_frame(POOL_ID, D.layout(frame, seed), table) == ROWS
    back = await ams.query(POOL_ID, f"SELECT * FROM {table} ORDER BY id")
    query_report = D.check_query(frame, back, COLUMNS)
    names = ", ".join(f"[{c.name}]" for c in COLUMNS)
    rows = pytds_rows(server, f"SELECT id, {names} FROM {table} ORDER BY id")
    reference_report = D.check_reference(frame, rows, COLUMNS)
    assert query_report.counts == {}, f"query() differs:\n{query_report}"
    assert reference_report.counts == {}, f"pytds differs:\n{reference_report}"
