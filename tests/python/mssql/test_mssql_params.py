"""Parameters: every Python type bound through sp_executesql (never pasted
into the SQL), by position (@P1, @P2, ...) and by name (@name), stored in
typed columns and read back exactly."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import DataError, ProgrammingError

from .conftest import POOL_ID, Target, assert_healthy

UTC = dt.timezone.utc
BIG_TEXT = "".join(chr(0x20 + (i * 7919) % 0x5F) for i in range(100_000)) + "😀é"
BIG_BYTES = bytes((i * 31 + 7) % 256 for i in range(1_000_000)) + b"\x00"

# (column type, Python value, expected back)
VALUES: list[tuple[str, Any, Any]] = [
    ("BIT", True, True),
    ("BIT", False, False),
    ("BIGINT", -(2**63), -(2**63)),
    ("BIGINT", 2**63 - 1, 2**63 - 1),
    ("INT", 42, 42),
    ("FLOAT", 0.1, 0.1),
    ("FLOAT", -1.7976931348623157e308, -1.7976931348623157e308),
    ("NVARCHAR(MAX)", "héllo 😀 'quoted' -- not a comment", "héllo 😀 'quoted' -- not a comment"),
    ("NVARCHAR(MAX)", "", ""),
    ("NVARCHAR(MAX)", BIG_TEXT, BIG_TEXT),
    ("VARBINARY(MAX)", b"\x00\x01\xff", b"\x00\x01\xff"),
    ("VARBINARY(MAX)", b"", b""),
    ("VARBINARY(MAX)", BIG_BYTES, BIG_BYTES),
    ("DECIMAL(38,10)", Decimal("-1234567890123456789012345678.0123456789"),
     Decimal("-1234567890123456789012345678.0123456789")),
    ("DECIMAL(10,2)", Decimal("1.5E+3"), Decimal("1500.00")),
    ("DECIMAL(10,5)", Decimal("0.00001"), Decimal("0.00001")),
    ("DATE", dt.date(1, 1, 1), dt.date(1, 1, 1)),
    ("DATE", dt.date(9999, 12, 31), dt.date(9999, 12, 31)),
    ("TIME(7)", dt.time(23, 59, 59, 999999), dt.time(23, 59, 59, 999999)),
    ("DATETIME2(7)", dt.datetime(1, 1, 1), dt.datetime(1, 1, 1)),
    ("DATETIME2(7)", dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
    ("DATETIME2(7)", dt.datetime(1969, 12, 31, 23, 59, 59, 1), dt.datetime(1969, 12, 31, 23, 59, 59, 1)),
    ("DATETIMEOFFSET(7)", dt.datetime(2020, 6, 1, 12, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
     dt.datetime(2020, 6, 1, 17, 30, 0, 5, tzinfo=UTC)),
    ("INT", None, None),
    ("NVARCHAR(10)", None, None),
    ("DATE", None, None),
]


@pytest.mark.parametrize(("sql_type", "value", "expected"), VALUES,
                         ids=[f"{t}-{type(v).__name__}-{i}" for i, (t, v, _) in enumerate(VALUES)])
async def test_round_trip_through_a_typed_column(ams: Any, table: str, sql_type: str, value: Any,
                                                 expected: Any) -> None:
    await ams.execute(POOL_ID, f"CREATE TABLE {table} (id INT, v {sql_type})")
    assert await ams.execute(POOL_ID, f"INSERT INTO {table} (id, v) VALUES (@P1, @P2)", [1, value]) == 1
    df = await ams.query(POOL_ID, f"SELECT v FROM {table} WHERE id = @P1", [1])
    assert df["v"].to_list() == [expected]


async def test_select_parameters_directly(ms: Any) -> None:
    df = await ms.query(POOL_ID, "SELECT @P1 AS i, @P2 AS f, @P3 AS s, @P4 AS b, @P5 AS t, @P6 AS n, @P7 AS d",
                        [7, 2.5, "x", b"\x01", True, None, Decimal("-12.50")])
    row = df.row(0)
    assert row == (7, 2.5, "x", b"\x01", True, None, Decimal("-12.50"))
    assert df.schema["i"] == pl.Int64 and df.schema["f"] == pl.Float64 and df.schema["t"] == pl.Boolean
    assert df.schema["d"] == pl.Decimal(4, 2)


async def test_temporal_parameters(ms: Any) -> None:
    df = await ms.query(POOL_ID, "SELECT @P1 AS t, @P2 AS ts, @P3 AS tz",
                        [dt.time(1, 2, 3, 4), dt.datetime(2020, 1, 2, 3, 4, 5, 6),
                         dt.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=UTC)])
    assert df.row(0) == (dt.time(1, 2, 3, 4), dt.datetime(2020, 1, 2, 3, 4, 5, 6),
                         dt.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=UTC))


async def test_values_are_never_sql(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (s NVARCHAR(100))")
    evil = f"'); DROP TABLE {table}; --"
    await ms.execute(POOL_ID, f"INSERT INTO {table} VALUES (@P1)", [evil])
    df = await ms.query(POOL_ID, f"SELECT s FROM {table} WHERE s = @P1", [evil])
    assert df["s"].to_list() == [evil]


async def test_named_parameters(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT, name NVARCHAR(20))")
    await ms.execute(POOL_ID, f"INSERT INTO {table} VALUES (@id, @name)", {"id": 1, "name": "Ada"})
    await ms.execute(POOL_ID, f"UPDATE {table} SET name = @name WHERE id = @id", {"name": "", "id": 1})
    df = await ms.query(POOL_ID, f"SELECT id, name FROM {table} WHERE id = @id", {"id": 1})
    assert df.to_dict(as_series=False) == {"id": [1], "name": [""]}
    with pytest.raises(ProgrammingError, match="identifier"):
        await ms.query(POOL_ID, "SELECT @x AS x", {"x y": 1})


async def test_statement_with_empty_values_keeps_line_numbers(ms: Any) -> None:
    """'' and b'' go as NULL plus an assignment on the same line: errors
    still point at the user's line."""
    with pytest.raises(ProgrammingError) as ei:
        await ms.query(POOL_ID, "SELECT @P1 AS a,\n @P2 AS b FROM nowhere_at_all", ["", b""])
    assert ei.value.code == 208


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (math.nan, "NaN"),
        (math.inf, "infinite"),
        (Decimal("1E+40"), "decimal"),
        (Decimal("1E-39"), "decimal"),
    ],
)
async def test_values_sql_server_cannot_take(ms: Any, value: Any, match: str) -> None:
    with pytest.raises(DataError, match=match):
        await ms.query(POOL_ID, "SELECT @P1 AS v", [value])
    await assert_healthy(ms)


async def test_none_in_a_binary_column_of_execute_many(ms: Any, table: str) -> None:
    """NULLs in a position where other rows bind bytes go as varbinary
    (SQL Server will not convert an nvarchar NULL to varbinary)."""
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT, b VARBINARY(10))")
    n = await ms.execute_many(POOL_ID, f"INSERT INTO {table} VALUES (@P1, @P2)", [[1, None], [2, b"\x01"]])
    assert n == 2
    df = await ms.query(POOL_ID, f"SELECT b FROM {table} ORDER BY id")
    assert df["b"].to_list() == [None, b"\x01"]


async def test_long_statement(ms: Any) -> None:
    sql = "SELECT @P1 AS v" + " " * 9000 + "-- " + "é" * 3000
    df = await ms.query(POOL_ID, sql, [5])
    assert df["v"].to_list() == [5]


def test_sync_api_parameters(sms: Any, server: Target) -> None:
    df = sms.query(POOL_ID, "SELECT @P1 AS a, @P2 AS b", [1, "two"])
    assert df.row(0) == (1, "two")
