"""SQL Server types -> Polars: every type of the table in docs/mssql.md,
with NULLs and the extremes of each range, read from a table filled with
T-SQL literals (so the decoders are checked apart from parameter binding),
plus the rules for values Arrow cannot hold exactly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import DataError

from .conftest import POOL_ID, assert_healthy

UTC = dt.timezone.utc

# (column, declared type, polars dtype, [(T-SQL literal, expected Python value), ...])
MATRIX: list[tuple[str, str, Any, list[tuple[str, Any]]]] = [
    ("c_tinyint", "TINYINT", pl.UInt8, [("0", 0), ("255", 255)]),
    ("c_smallint", "SMALLINT", pl.Int16, [("-32768", -32768), ("32767", 32767)]),
    ("c_int", "INT", pl.Int32, [("-2147483648", -2147483648), ("2147483647", 2147483647)]),
    ("c_bigint", "BIGINT", pl.Int64,
     [("-9223372036854775808", -9223372036854775808), ("9223372036854775807", 9223372036854775807)]),
    ("c_bit", "BIT", pl.Boolean, [("0", False), ("1", True)]),
    ("c_decimal", "DECIMAL(38,10)", pl.Decimal(38, 10),
     [("'-9999999999999999999999999999.9999999999'", Decimal("-9999999999999999999999999999.9999999999")),
      ("'1234567890123456789012345678.0123456789'", Decimal("1234567890123456789012345678.0123456789"))]),
    ("c_numeric", "NUMERIC(5,2)", pl.Decimal(5, 2), [("'-999.99'", Decimal("-999.99")), ("'0.01'", Decimal("0.01"))]),
    ("c_money", "MONEY", pl.Decimal(19, 4),
     [("'-922337203685477.5808'", Decimal("-922337203685477.5808")),
      ("'922337203685477.5807'", Decimal("922337203685477.5807"))]),
    ("c_smallmoney", "SMALLMONEY", pl.Decimal(10, 4),
     [("'-214748.3648'", Decimal("-214748.3648")), ("'214748.3647'", Decimal("214748.3647"))]),
    ("c_real", "REAL", pl.Float32, [("-0.25", -0.25), ("3.5", 3.5)]),
    ("c_float", "FLOAT", pl.Float64,
     [("1.7976931348623157e308", 1.7976931348623157e308), ("-2.2250738585072014e-308", -2.2250738585072014e-308)]),
    ("c_date", "DATE", pl.Date, [("'0001-01-01'", dt.date(1, 1, 1)), ("'9999-12-31'", dt.date(9999, 12, 31))]),
    ("c_time", "TIME(7)", pl.Time, [("'00:00:00'", dt.time(0)), ("'23:59:59.999999'", dt.time(23, 59, 59, 999999))]),
    # datetime counts 1/300 s: .997 is 299/300 s, the nearest microsecond is .996667
    ("c_datetime", "DATETIME", pl.Datetime("us"),
     [("'1753-01-01 00:00:00'", dt.datetime(1753, 1, 1)),
      ("'9999-12-31 23:59:59.997'", dt.datetime(9999, 12, 31, 23, 59, 59, 996667))]),
    ("c_smalldatetime", "SMALLDATETIME", pl.Datetime("us"),
     [("'1900-01-01 00:00'", dt.datetime(1900, 1, 1)), ("'2079-06-06 23:59'", dt.datetime(2079, 6, 6, 23, 59))]),
    ("c_datetime2", "DATETIME2(7)", pl.Datetime("us"),
     [("'0001-01-01 00:00:00'", dt.datetime(1, 1, 1)),
      ("'9999-12-31 23:59:59.999999'", dt.datetime(9999, 12, 31, 23, 59, 59, 999999))]),
    ("c_dto", "DATETIMEOFFSET(7)", pl.Datetime("us", "UTC"),
     [("'2020-06-01 12:00:00.123456 -05:30'", dt.datetime(2020, 6, 1, 17, 30, 0, 123456, tzinfo=UTC)),
      ("'9999-12-31 23:59:59.999999 +00:00'", dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))]),
    ("c_guid", "UNIQUEIDENTIFIER", pl.String,
     [("'6F9619FF-8B86-D011-B42D-00C04FC964FF'", "6f9619ff-8b86-d011-b42d-00c04fc964ff"),
      ("'00000000-0000-0000-0000-000000000001'", "00000000-0000-0000-0000-000000000001")]),
    ("c_char", "CHAR(5)", pl.String, [("'ab'", "ab   "), ("''", "     ")]),
    ("c_varchar", "VARCHAR(10)", pl.String, [("'héllo'", "héllo"), ("''", "")]),
    ("c_nchar", "NCHAR(3)", pl.String, [("N'日本'", "日本 "), ("N'abc'", "abc")]),
    ("c_nvarchar", "NVARCHAR(50)", pl.String, [("N'😀 emoji ∑'", "😀 emoji ∑"), ("N''", "")]),
    ("c_nvarchar_max", "NVARCHAR(MAX)", pl.String,
     [("REPLICATE(CAST(N'€' AS NVARCHAR(MAX)), 9000)", "€" * 9000), ("N'x'", "x")]),
    ("c_varchar_max", "VARCHAR(MAX)", pl.String,
     [("REPLICATE(CAST('a' AS VARCHAR(MAX)), 10000)", "a" * 10000), ("'b'", "b")]),
    ("c_text", "TEXT", pl.String, [("'old text'", "old text"), ("''", "")]),
    ("c_ntext", "NTEXT", pl.String, [("N'old ñ text'", "old ñ text"), ("N'z'", "z")]),
    ("c_binary", "BINARY(4)", pl.Binary, [("0x0102", b"\x01\x02\x00\x00"), ("0xFFFFFFFF", b"\xff" * 4)]),
    ("c_varbinary", "VARBINARY(10)", pl.Binary, [("0x", b""), ("0x00FF00", b"\x00\xff\x00")]),
    ("c_varbinary_max", "VARBINARY(MAX)", pl.Binary, [("0x" + "AB" * 10000, b"\xab" * 10000), ("0x01", b"\x01")]),
    ("c_image", "IMAGE", pl.Binary, [("0xDEADBEEF", b"\xde\xad\xbe\xef"), ("0x00", b"\x00")]),
    ("c_xml", "XML", pl.String, [("'<a b=\"1\"/>'", '<a b="1"/>'), ("'<r>ü</r>'", "<r>ü</r>")]),
]


@pytest.fixture
async def filled(ms: Any, table: str) -> str:
    cols = ", ".join(f"{name} {sql_type} NULL" for name, sql_type, _, _ in MATRIX)
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT NOT NULL PRIMARY KEY, {cols})")
    names = ", ".join(name for name, _, _, _ in MATRIX)
    for row in range(2):
        literals = ", ".join(values[row][0] for _, _, _, values in MATRIX)
        await ms.execute(POOL_ID, f"INSERT INTO {table} (id, {names}) VALUES ({row}, {literals})")
    await ms.execute(POOL_ID, f"INSERT INTO {table} (id) VALUES (2)")  # all NULL
    return table


async def test_type_matrix(ms: Any, filled: str) -> None:
    df = await ms.query(POOL_ID, f"SELECT * FROM {filled} ORDER BY id")
    assert df.height == 3
    for name, sql_type, dtype, values in MATRIX:
        assert df.schema[name] == dtype, (name, sql_type, df.schema[name])
        got = df[name].to_list()
        assert got == [values[0][1], values[1][1], None], (name, sql_type)
    await assert_healthy(ms)


async def test_type_matrix_streamed_and_through_rpc(ms: Any, filled: str) -> None:
    """The same rows through sp_executesql (a parameter) and in streamed batches."""
    whole = await ms.query(POOL_ID, f"SELECT * FROM {filled} ORDER BY id")
    rpc = await ms.query(POOL_ID, f"SELECT * FROM {filled} WHERE id >= @P1 ORDER BY id", [0])
    assert rpc.equals(whole)
    parts = [b async for b in ms.stream(POOL_ID, f"SELECT * FROM {filled} ORDER BY id", batch_rows=1)]
    assert [p.height for p in parts] == [1, 1, 1]
    assert pl.concat(parts).equals(whole)


@pytest.mark.parametrize(
    ("sql_type", "literal"),
    [
        ("DATETIME2(7)", "'2020-01-02 03:04:05.1234567'"),
        ("DATETIME2(7)", "'9999-12-31 23:59:59.9999999'"),
        ("TIME(7)", "'23:59:59.9999999'"),
        ("DATETIMEOFFSET(7)", "'2020-01-02 03:04:05.1234567 +01:00'"),
    ],
)
async def test_hundred_nanosecond_digit_is_a_data_error(ms: Any, table: str, sql_type: str, literal: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (v {sql_type})")
    await ms.execute(POOL_ID, f"INSERT INTO {table} VALUES ({literal})")
    with pytest.raises(DataError) as ei:
        await ms.query(POOL_ID, f"SELECT v AS precise FROM {table}")
    msg = str(ei.value)
    assert "'precise'" in msg and "100-nanosecond" in msg and "(6)" in msg
    assert ei.value.sqlstate == "22008"
    await assert_healthy(ms)


async def test_cast_to_six_digits_reads_the_value(ms: Any) -> None:
    df = await ms.query(POOL_ID, "SELECT CAST(CAST('2020-01-02 03:04:05.1234567' AS DATETIME2(7)) AS DATETIME2(6))"
                                 " AS v,"
                                 " CAST('2020-01-02 03:04:05.1234560' AS DATETIME2(7)) AS w")
    assert df["v"].to_list() == [dt.datetime(2020, 1, 2, 3, 4, 5, 123457)]
    assert df["w"].to_list() == [dt.datetime(2020, 1, 2, 3, 4, 5, 123456)]


async def test_expressions_and_casts(ms: Any) -> None:
    df = await ms.query(POOL_ID, "SELECT CAST(NULL AS INT) AS n, CAST(12.5 AS DECIMAL(4,1)) AS d, "
                                 "CAST(0x41 AS VARBINARY(5)) AS b, CAST(1 AS BIT) AS t, NEWID() AS g")
    assert df.schema["n"] == pl.Int32 and df["n"].to_list() == [None]
    assert df["d"].to_list() == [Decimal("12.5")]
    assert df["b"].to_list() == [b"A"] and df["t"].to_list() == [True]
    guid = df["g"].to_list()[0]
    assert len(guid) == 36 and guid == guid.lower()
