"""Parameters ($1..$n) of every Python type the library binds, through a
typed INSERT and back through SELECT (both read paths), and as typed
expressions."""

from __future__ import annotations

import datetime as dt
import math
import struct
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import DataError, ProgrammingError

from .conftest import POOL_ID, assert_healthy

UTC = dt.timezone.utc
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
WEST = dt.timezone(-dt.timedelta(hours=9, minutes=15))

TABLE = """
CREATE TABLE p (
    id int4 PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
    n numeric, n12 numeric(12,2), s text, vc varchar(20), by bytea, d date, t time,
    ts timestamp, tstz timestamptz, j jsonb, u uuid
)"""
COLS = ["id", "b", "i2", "i4", "i8", "f4", "f8", "n", "n12", "s", "vc", "by", "d", "t",
        "ts", "tstz", "j", "u"]
INSERT = f"INSERT INTO p ({', '.join(COLS)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(COLS)))})"

ROWS: list[list[Any]] = [
    [0] + [None] * (len(COLS) - 1),
    [1, True, 1, 2, 3, 1.5, 0.25, Decimal("1.5"), Decimal("12.34"), "héllo 😀 𝄞", "x",
     b"\x00\x01\x00", dt.date(2024, 2, 29), dt.time(13, 45, 56, 789012),
     dt.datetime(2024, 2, 29, 13, 45, 56, 789012),
     dt.datetime(2024, 2, 29, 13, 45, 56, 789012, tzinfo=IST), '{"a": [1, 2]}',
     "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
    [2, False, -32768, -(2**31), -(2**63), float("-inf"), float("nan"),
     Decimal("-12345678901234567890.123456"), Decimal("-9999999999.99"), "", "", b"",
     dt.date(1, 1, 1), dt.time(0, 0), dt.datetime(1, 1, 1),
     dt.datetime(1, 1, 1, 12, 0, tzinfo=UTC), "[]", "00000000-0000-0000-0000-000000000000"],
    [3, True, 32767, 2**31 - 1, 2**63 - 1, float("inf"), 1.7976931348623157e308,
     Decimal("1E-12"), Decimal("9999999999.99"), "x" * 70_000, "ünïcödé😀",
     bytes(range(256)) * 100, dt.date(9999, 12, 31), dt.time(23, 59, 59, 999999),
     dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
     dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), '{"k": "😀"}',
     "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"],
    [4, None, 0, 0, 0, -0.0, 5e-324, Decimal("0"), Decimal("0.00"), "NULL", None, None,
     dt.date(1970, 1, 1), dt.time(0, 0, 0, 1), dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
     dt.datetime(2000, 1, 1, 0, 0, tzinfo=WEST), None, None],
    [5, True, -1, -1, -1, 3.4028234663852886e38, -2.2250738585072014e-308,
     Decimal("100000000000000000000"), Decimal("0.01"), "tab\there\nnewline 'quote' \"dq\" \\",
     "a" * 20, b"\xff" * 3, dt.date(2000, 2, 29), dt.time(12), dt.datetime(2000, 1, 1),
     dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC), "null", None],
]


def f32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


def expected_row(row: list[Any]) -> list[Any]:
    """What reading the row back must give."""
    out = list(row)
    i = COLS.index
    if out[i("f4")] is not None:
        out[i("f4")] = f32(out[i("f4")])
    if out[i("tstz")] is not None:
        out[i("tstz")] = out[i("tstz")].astimezone(UTC)
    if out[i("u")] is not None:
        out[i("u")] = out[i("u")].lower()
    if out[i("j")] is not None:  # jsonb's canonical text
        out[i("j")] = {'{"a": [1, 2]}': '{"a": [1, 2]}', "[]": "[]", '{"k": "😀"}': '{"k": "😀"}',
                       "null": "null"}[out[i("j")]]
    return out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if a is None or b is None:
        return a is b
    return type(a) is type(b) and a == b


def assert_rows(df: pl.DataFrame, rows: list[list[Any]]) -> None:
    assert df.columns == COLS
    problems = []
    for got, want in zip(df.rows(), (expected_row(r) for r in rows)):
        for col, g, w in zip(COLS, got, want):
            if not same(g, w):
                problems.append(f"id {got[0]} {col}: got {str(g)[:80]!r}, want {str(w)[:80]!r}")
    assert df.height == len(rows)
    assert not problems, "\n".join(problems)


async def test_typed_insert_and_select_round_trip(pg: Any, admin: Any) -> None:
    admin.execute(TABLE)
    for row in ROWS:
        assert await pg.execute(POOL_ID, INSERT, row) == 1
    select = f"SELECT {', '.join(COLS)} FROM p ORDER BY id"
    assert_rows(await pg.query(POOL_ID, select), ROWS)  # COPY
    assert_rows(await pg.query(POOL_ID, select, copy=False), ROWS)
    assert_rows(await pg.query(POOL_ID, select.replace("ORDER", "WHERE id >= $1 ORDER"), [0]), ROWS)
    # psycopg reads what we wrote the same way
    with admin.cursor(binary=True) as cur:
        cur.execute("SELECT i8, n, by, d, ts, tstz FROM p WHERE id = 3")
        assert cur.fetchone() == (2**63 - 1, Decimal("1E-12"), bytes(range(256)) * 100,
                                  dt.date(9999, 12, 31),
                                  dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
                                  dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    await assert_healthy(pg)


async def test_execute_many_with_every_type(pg: Any, admin: Any) -> None:
    admin.execute(TABLE)
    assert await pg.execute_many(POOL_ID, INSERT, ROWS) == len(ROWS)
    assert_rows(await pg.query(POOL_ID, f"SELECT {', '.join(COLS)} FROM p ORDER BY id"), ROWS)


CASTS: list[tuple[str, Any, Any]] = [
    ("bool", True, True),
    ("int8", -(2**63), -(2**63)),
    ("int2", 7, 7),
    ("float8", float("nan"), float("nan")),
    ("float8", float("inf"), float("inf")),
    ("float8", 0.1, 0.1),
    ("float8", 7, 7.0),  # an int to a float parameter
    ("numeric", Decimal("-0.000000000000000000000000000000000001"),
     Decimal("-0.000000000000000000000000000000000001")),
    ("numeric", Decimal("1E+3"), Decimal("1000")),
    ("numeric", 12345678901234567, Decimal(12345678901234567)),
    ("text", "😀\u200b\u00e9", "😀\u200b\u00e9"),
    ("bytea", b"\x00" * 5, b"\x00" * 5),
    ("bytea", bytearray(b"ab\x00"), b"ab\x00"),
    ("bytea", memoryview(b"xyz"), b"xyz"),
    ("date", dt.date(2000, 1, 1), dt.date(2000, 1, 1)),
    ("time", dt.time(1, 2, 3, 4), dt.time(1, 2, 3, 4)),
    ("timestamp", dt.datetime(2020, 5, 6, 7, 8, 9, 10), dt.datetime(2020, 5, 6, 7, 8, 9, 10)),
    # an aware datetime to a naive timestamp is converted to UTC (README)
    ("timestamp", dt.datetime(2020, 5, 6, 12, 0, tzinfo=IST), dt.datetime(2020, 5, 6, 6, 30)),
    ("timestamptz", dt.datetime(2020, 5, 6, 12, 0, tzinfo=WEST),
     dt.datetime(2020, 5, 6, 21, 15, tzinfo=UTC)),
    ("text", None, None),
]


@pytest.mark.parametrize("sqltype,value,want", CASTS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASTS)])
async def test_parameter_as_typed_expression(pg: Any, sqltype: str, value: Any, want: Any) -> None:
    df = await pg.query(POOL_ID, f"SELECT $1::{sqltype} AS v, $2::int4 AS w", [value, 5])
    got = df["v"].to_list()[0]
    assert same(got, want), (got, want)
    assert df["w"].to_list() == [5]


async def test_the_same_statement_with_different_values(pg: Any) -> None:
    """The cached prepared statement is re-bound each time."""
    for i in range(20):
        df = await pg.query(POOL_ID, "SELECT $1::int8 * 2 AS v, $2::text AS s", [i, str(i)])
        assert df.row(0) == (2 * i, str(i))


async def test_untyped_parameter_takes_the_type_of_its_value(pg: Any) -> None:
    """$1 without a cast or context is text to the server; a str stays text,
    any other value declares its own type (tests/python/pg/test_pg_param_types.py)."""
    df = await pg.query(POOL_ID, "SELECT $1 AS v", ["abc"])
    assert df.schema == pl.Schema({"v": pl.String})
    assert df.item() == "abc"
    df = await pg.query(POOL_ID, "SELECT $1 AS v", [7])
    assert df.schema == pl.Schema({"v": pl.Int64})
    assert df.item() == 7


async def test_binding_errors_are_raised_before_running(pg: Any) -> None:
    with pytest.raises(DataError, match="64-bit"):
        await pg.query(POOL_ID, "SELECT $1::numeric AS v", [2**64])
    with pytest.raises(DataError, match="NaN"):
        await pg.query(POOL_ID, "SELECT $1::numeric AS v", [Decimal("NaN")])
    with pytest.raises(ProgrammingError, match="time zone"):
        await pg.query(POOL_ID, "SELECT $1::time AS v", [dt.time(1, tzinfo=UTC)])
    with pytest.raises(ProgrammingError, match="'object'"):
        await pg.query(POOL_ID, "SELECT $1::text AS v", [object()])
    with pytest.raises(ProgrammingError, match="positional"):
        await pg.query(POOL_ID, "SELECT $1::text AS v", {"a": 1})
    await assert_healthy(pg)


@pytest.mark.parametrize("sqltype,lo,hi", [("int2", -(2**15), 2**15 - 1),
                                            ("int4", -(2**31), 2**31 - 1)])
async def test_integer_parameter_at_and_past_its_type_range(
    pg: Any, sqltype: str, lo: int, hi: int
) -> None:
    """Integers within the parameter's type go in binary; one past its edge
    goes as text, and the server refuses it with its own error."""
    df = await pg.query(POOL_ID, f"SELECT $1::{sqltype} AS a, $2::{sqltype} AS b", [lo, hi])
    assert df.row(0) == (lo, hi)
    for bad in (lo - 1, hi + 1):
        with pytest.raises(DataError) as info:
            await pg.query(POOL_ID, f"SELECT $1::{sqltype} AS a", [bad])
        assert info.value.sqlstate == "22003"
    await assert_healthy(pg)


async def test_float_parameter_into_numeric_is_the_shortest_decimal(pg: Any) -> None:
    df = await pg.query(POOL_ID, "SELECT $1::numeric AS n, $2::text AS t", [0.1, 0.3])
    assert df.row(0) == (Decimal("0.1"), "0.3")


async def test_str_parameter_with_nul_is_refused(pg: Any) -> None:
    with pytest.raises(DataError):
        await pg.query(POOL_ID, "SELECT $1::text AS v", ["a\x00b"])
