"""write_frame: a Polars DataFrame into a table through db-lib's bulk copy
(a staging temp table, then one INSERT ... SELECT), all or nothing, with
the values the server stores compared exactly."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import DataError, IntegrityError, ProgrammingError

from .conftest import POOL_ID, assert_healthy

UTC = dt.timezone.utc

# (column, SQL type, values written, values read back)
COLUMNS: list[tuple[str, str, list[Any], list[Any]]] = [
    ("i8", "TINYINT", [0, 255, None], [0, 255, None]),
    ("i16", "SMALLINT", [-32768, 32767, None], [-32768, 32767, None]),
    ("i32", "INT", [-(2**31), 2**31 - 1, None], [-(2**31), 2**31 - 1, None]),
    ("i64", "BIGINT", [-(2**63), 2**63 - 1, None], [-(2**63), 2**63 - 1, None]),
    ("flag", "BIT", [True, False, None], [True, False, None]),
    ("f32", "REAL", [0.5, -3.25, None], [0.5, -3.25, None]),
    ("f64", "FLOAT", [0.1, -1e308, None], [0.1, -1e308, None]),
    ("dec", "DECIMAL(20,4)", [Decimal("-1234567890123456.1234"), Decimal("0.5000"), None],
     [Decimal("-1234567890123456.1234"), Decimal("0.5000"), None]),
    ("cash", "MONEY", [Decimal("-922337203685477.5808"), Decimal("1.2300"), None],
     [Decimal("-922337203685477.5808"), Decimal("1.2300"), None]),
    ("day", "DATE", [dt.date(1, 1, 1), dt.date(9999, 12, 31), None], [dt.date(1, 1, 1), dt.date(9999, 12, 31), None]),
    ("tod", "TIME(6)", [dt.time(0), dt.time(23, 59, 59, 999999), None],
     [dt.time(0), dt.time(23, 59, 59, 999999), None]),
    ("ts", "DATETIME2(6)", [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), None],
     [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), None]),
    ("old", "DATETIME", [dt.datetime(2020, 1, 2, 3, 4, 5, 10000), dt.datetime(1753, 1, 1), None],
     [dt.datetime(2020, 1, 2, 3, 4, 5, 10000), dt.datetime(1753, 1, 1), None]),
    ("tz", "DATETIMEOFFSET(6)", [dt.datetime(2020, 6, 1, 17, 30, tzinfo=UTC), None, dt.datetime(1, 1, 1, tzinfo=UTC)],
     [dt.datetime(2020, 6, 1, 17, 30, tzinfo=UTC), None, dt.datetime(1, 1, 1, tzinfo=UTC)]),
    ("guid", "UNIQUEIDENTIFIER",
     ["6F9619FF-8B86-D011-B42D-00C04FC964FF", None, "{00000000-0000-0000-0000-000000000001}"],
     ["6f9619ff-8b86-d011-b42d-00c04fc964ff", None, "00000000-0000-0000-0000-000000000001"]),
    ("nv", "NVARCHAR(20)", ["héllo 😀", "", None], ["héllo 😀", "", None]),
    ("v", "VARCHAR(20)", ["plain", "", "café"], ["plain", "", "café"]),
    ("nvmax", "NVARCHAR(MAX)", ["€" * 50_000, None, ""], ["€" * 50_000, None, ""]),
    ("bin", "VARBINARY(10)", [b"\x00\x01", b"", None], [b"\x00\x01", b"", None]),
    ("binmax", "VARBINARY(MAX)", [bytes(range(256)) * 4000, None, b"\xff"], [bytes(range(256)) * 4000, None, b"\xff"]),
]


def frame(columns: list[tuple[str, str, list[Any], list[Any]]]) -> pl.DataFrame:
    data: dict[str, Any] = {"id": [1, 2, 3]}
    for name, _sql, written, _read in columns:
        data[name] = written
    schema: dict[str, Any] = {"dec": pl.Decimal(20, 4), "cash": pl.Decimal(19, 4), "f32": pl.Float32}
    return pl.DataFrame(data, schema_overrides={k: v for k, v in schema.items() if k in data})


async def make_table(ms: Any, table: str, columns: list[tuple[str, str, list[Any], list[Any]]]) -> None:
    cols = ", ".join(f"{name} {sql} NULL" for name, sql, _, _ in columns)
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT NOT NULL PRIMARY KEY, {cols}, extra INT NULL)")


async def test_every_type(ms: Any, table: str) -> None:
    await make_table(ms, table, COLUMNS)
    assert await ms.write_frame(POOL_ID, frame(COLUMNS), table) == 3
    df = await ms.query(POOL_ID, f"SELECT * FROM {table} ORDER BY id")
    for name, sql, _written, expected in COLUMNS:
        assert df[name].to_list() == expected, (name, sql)
    assert df["extra"].to_list() == [None, None, None]  # columns the frame lacks
    await assert_healthy(ms)


async def test_many_rows(ams: Any, table: str) -> None:
    n = 30_000
    await ams.execute(POOL_ID, f"CREATE TABLE {table} (id INT NOT NULL, name NVARCHAR(30), amount DECIMAL(12,2))")
    df = pl.DataFrame({"id": range(n), "name": [f"name {i}" for i in range(n)],
                       "amount": [Decimal(i) / 4 for i in range(n)]},
                      schema_overrides={"amount": pl.Decimal(12, 2)})
    start = time.monotonic()
    assert await ams.write_frame(POOL_ID, df, table) == n
    elapsed = time.monotonic() - start
    got = await ams.query(POOL_ID, f"SELECT COUNT(*) AS n, SUM(id) AS s, MAX(name) AS m FROM {table}")
    assert got.row(0)[:2] == (n, n * (n - 1) // 2)
    assert elapsed < 20


async def test_all_or_nothing(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT NOT NULL PRIMARY KEY, name NVARCHAR(5))")
    await ms.write_frame(POOL_ID, pl.DataFrame({"id": [1], "name": ["a"]}), table)
    with pytest.raises(IntegrityError) as ei:
        await ms.write_frame(POOL_ID, pl.DataFrame({"id": [2, 3, 1], "name": ["b", "c", "dup"]}), table)
    assert "no row was written" in str(ei.value)
    with pytest.raises(DataError):
        await ms.write_frame(POOL_ID, pl.DataFrame({"id": [4, 5], "name": ["d", "toolong"]}), table)
    df = await ms.query(POOL_ID, f"SELECT id FROM {table}")
    assert df["id"].to_list() == [1]
    await assert_healthy(ms)


@pytest.mark.parametrize(
    ("sql_type", "values", "dtype", "match"),
    [
        ("DECIMAL(5,2)", [Decimal("1.234")], pl.Decimal(10, 3), "decimal type exactly"),
        ("TINYINT", [256], pl.Int64, "integer range"),
        ("INT", ["x"], pl.String, "not an integer"),
        ("DATE", [dt.datetime(2020, 1, 1, 12)], pl.Datetime("us"), "time of day"),
        ("DATETIME2(3)", [dt.datetime(2020, 1, 1, 0, 0, 0, 1234)], pl.Datetime("us"), "fraction digits"),
        ("REAL", [0.1], pl.Float64, "precision"),
        ("UNIQUEIDENTIFIER", ["not-a-guid"], pl.String, "GUID"),
    ],
)
async def test_values_the_column_cannot_hold(ms: Any, table: str, sql_type: str, values: list[Any], dtype: Any,
                                             match: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (v {sql_type} NULL)")
    with pytest.raises(DataError, match=match) as ei:
        await ms.write_frame(POOL_ID, pl.DataFrame({"v": values}, schema={"v": dtype}), table)
    assert "'v'" in str(ei.value)
    assert (await ms.query(POOL_ID, f"SELECT COUNT(*) AS n FROM {table}"))["n"].to_list() == [0]
    await assert_healthy(ms)


async def test_unknown_column_and_table(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (a INT)")
    with pytest.raises(ProgrammingError, match="'b' is not a column"):
        await ms.write_frame(POOL_ID, pl.DataFrame({"a": [1], "b": [2]}), table)
    with pytest.raises(ProgrammingError) as ei:
        await ms.write_frame(POOL_ID, pl.DataFrame({"a": [1]}), "no_such_table_here")
    assert ei.value.code == 208
    await assert_healthy(ms)


async def test_quoted_names_and_empty_frame(ms: Any) -> None:
    name = "odd name]x"
    await ms.execute(POOL_ID, f"CREATE TABLE [odd name]]x] ([a b] INT, [c]]d] NVARCHAR(5))")
    try:
        assert await ms.write_frame(POOL_ID, pl.DataFrame({"a b": [1], "c]d": ["z"]}), name) == 1
        assert await ms.write_frame(POOL_ID, pl.DataFrame({"a b": []}, schema={"a b": pl.Int32}), name) == 0
        df = await ms.query(POOL_ID, "SELECT [a b], [c]]d] FROM [odd name]]x]")
        assert df.rows() == [(1, "z")]
    finally:
        await ms.execute(POOL_ID, "DROP TABLE [odd name]]x]")
