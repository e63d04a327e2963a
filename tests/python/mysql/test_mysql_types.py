"""Every MySQL type with NULLs and extremes, read by db_pool and by PyMySQL
(an independent client) and compared cell by cell; then the same frame
written back with write_frame and read again: 0 differences both ways."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import pymysql
import pytest

from db_pool import DataError, SyncDatabasePool
from mysql_server import MysqlServer

# (column DDL, the Polars type db_pool reads it as, values: extremes and NULL)
COLUMNS: list[tuple[str, str, Any, list[Any]]] = [
    ("ti", "TINYINT", pl.Int8, [-128, 127, None]),
    ("tu", "TINYINT UNSIGNED", pl.UInt8, [0, 255, None]),
    ("si", "SMALLINT", pl.Int16, [-32768, 32767, None]),
    ("su", "SMALLINT UNSIGNED", pl.UInt16, [0, 65535, None]),
    ("mi", "MEDIUMINT", pl.Int32, [-8388608, 8388607, None]),
    ("ii", "INT", pl.Int32, [-2147483648, 2147483647, None]),
    ("iu", "INT UNSIGNED", pl.UInt32, [0, 4294967295, None]),
    ("bi", "BIGINT", pl.Int64, [-9223372036854775808, 9223372036854775807, None]),
    ("bu", "BIGINT UNSIGNED", pl.UInt64, [0, 18446744073709551615, None]),
    ("bo", "TINYINT(1)", pl.Boolean, [True, False, None]),
    ("de", "DECIMAL(38,10)", pl.Decimal(38, 10),
     [Decimal("-9999999999999999999999999999.9999999999"),
      Decimal("1234567890123456789012345678.0000000001"), None]),
    ("d0", "DECIMAL(5,0)", pl.Decimal(5, 0), [Decimal("-99999"), Decimal("0"), None]),
    ("fl", "FLOAT", pl.Float32, [-3.4028234663852886e38, 1.1754943508222875e-38, None]),
    ("db", "DOUBLE", pl.Float64, [-1.7976931348623157e308, 5e-324, None]),
    ("ch", "CHAR(4)", pl.String, ["", "héé", None]),
    ("vc", "VARCHAR(300) CHARACTER SET utf8mb4", pl.String, ["emoji \U0001F600", "x" * 300, None]),
    ("tx", "LONGTEXT", pl.String, ["tab\tnew\nline\\", "y" * 70000, None]),
    ("bn", "BINARY(3)", pl.Binary, [b"\x00\x01\x02", b"abc", None]),
    ("vb", "VARBINARY(10)", pl.Binary, [b"", b"\xff\x00\t\n", None]),
    ("bl", "LONGBLOB", pl.Binary, [bytes(range(256)) * 300, b"\x00", None]),
    ("da", "DATE", pl.Date, [dt.date(1000, 1, 1), dt.date(9999, 12, 31), None]),
    ("dtm", "DATETIME(6)", pl.Datetime("us"),
     [dt.datetime(1000, 1, 1, 0, 0, 0), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), None]),
    ("ts", "TIMESTAMP(6) NULL", pl.Datetime("us", "UTC"),
     [dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc),
      dt.datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=dt.timezone.utc), None]),
    ("tm", "TIME(6)", pl.Duration("us"),
     [-dt.timedelta(hours=838, minutes=59, seconds=59, microseconds=999999),
      dt.timedelta(hours=838, minutes=59, seconds=59), None]),
    ("yr", "YEAR", pl.Int16, [1901, 2155, None]),
    ("bt", "BIT(64)", pl.UInt64, [0, 18446744073709551615, None]),
    ("js", "JSON", pl.String, ['{"a": [1, 2]}', "[]", None]),
    ("en", "ENUM('x','yy')", pl.String, ["x", "yy", None]),
    ("st", "SET('a','b')", pl.String, ["a,b", "", None]),
]


def _pymysql_value(ddl: str, v: Any) -> Any:
    """PyMySQL's value in db_pool's terms (it gives BIT as bytes, TIMESTAMP
    naive in the session's zone, JSON and SET as text, TINYINT(1) as int)."""
    if v is None:
        return None
    if ddl.startswith("BIT"):
        return int.from_bytes(v, "big")
    if ddl.startswith("TIMESTAMP"):
        return v.replace(tzinfo=dt.timezone.utc)
    if ddl == "TINYINT(1)":
        return bool(v)
    if ddl.startswith("SET") and isinstance(v, set):
        return ",".join(sorted(v))
    return v


@pytest.fixture
def typed_table(mysql_server: MysqlServer, table_name: str) -> str:
    ddl = ", ".join(f"{name} {sql}" for name, sql, _, _ in COLUMNS)
    rows = list(zip(*(values for _, _, _, values in COLUMNS)))
    conn = pymysql.connect(**mysql_server.connect_kwargs(), init_command="SET time_zone='+00:00'")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table_name} (id INT PRIMARY KEY, {ddl})")
            marks = ", ".join(["%s"] * (len(COLUMNS) + 1))
            for i, row in enumerate(rows):
                values = [v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v
                          for v in row]
                cur.execute(f"INSERT INTO {table_name} VALUES ({marks})", [i, *values])
        conn.commit()
    finally:
        conn.close()
    return table_name


def test_every_type_matches_pymysql_cell_by_cell(mysql_server: MysqlServer, mysql_dsn: str,
                                                 typed_table: str) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("my", url=mysql_dsn)
        df = pool.query("my", f"SELECT * FROM {typed_table} ORDER BY id")
    conn = pymysql.connect(**mysql_server.connect_kwargs(), init_command="SET time_zone='+00:00'")
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {typed_table} ORDER BY id")
            theirs = cur.fetchall()
    finally:
        conn.close()
    differences = []
    for c, (name, ddl, dtype, values) in enumerate(COLUMNS, start=1):
        assert df.schema[name] == dtype, name
        ours = df[name].to_list()
        for r, row in enumerate(theirs):
            expected = _pymysql_value(ddl, row[c])
            if ddl == "FLOAT" and ours[r] is not None:  # PyMySQL reads the server's %g text
                expected = float(f"{expected:.6g}") == float(f"{ours[r]:.6g}") and ours[r]
            if ours[r] != expected or ours[r] != values[r]:
                differences.append((name, r, ours[r], expected, values[r]))
    assert differences == []


def test_write_frame_round_trip_is_exact(mysql_dsn: str, typed_table: str) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("my", url=mysql_dsn)
        df = pool.query("my", f"SELECT * FROM {typed_table} ORDER BY id")
        pool.execute("my", f"DELETE FROM {typed_table}")
        assert pool.write_frame("my", df, typed_table) == len(df)
        back = pool.query("my", f"SELECT * FROM {typed_table} ORDER BY id")
    assert back.schema == df.schema
    assert back.to_dicts() == df.to_dicts()


def test_create_true_makes_columns_that_read_back_the_same(mysql_dsn: str, table_name: str
                                                           ) -> None:
    frame = pl.DataFrame({
        "i8": pl.Series([-128, None], dtype=pl.Int8),
        "u64": pl.Series([18446744073709551615, None], dtype=pl.UInt64),
        "f": [0.1, None], "s": ["a\x00b", None], "b": [b"\x00\\", None],
        "d": pl.Series([Decimal("-1.50"), None], dtype=pl.Decimal(12, 2)),
        "day": [dt.date(2024, 2, 29), None],
        "naive": [dt.datetime(2024, 1, 1, 12, 0, 0, 1), None],
        "utc": pl.Series([dt.datetime(2024, 1, 1, 12)], dtype=pl.Datetime("us")).dt
        .replace_time_zone("UTC").extend_constant(None, 1),
        "dur": [dt.timedelta(days=-3, microseconds=7), None],
        "flag": [True, None],
    })
    with SyncDatabasePool() as pool:
        pool.create_pool("my", url=mysql_dsn)
        assert pool.write_frame("my", frame, table_name, create=True) == 2
        back = pool.query("my", f"SELECT * FROM {table_name}")
    assert back.to_dicts() == frame.to_dicts()


def test_zero_dates_follow_the_chosen_policy(mysql_server: MysqlServer, mysql_dsn: str,
                                             table_name: str) -> None:
    mysql_server.sql(f"SET SESSION sql_mode = ''; CREATE TABLE {table_name} (d DATE, t DATETIME); "
                     f"INSERT INTO {table_name} VALUES ('0000-00-00', '2021-02-31 00:00:00')",
                     database=mysql_server.database)
    with SyncDatabasePool() as pool:
        pool.create_pool("strict", url=mysql_dsn)
        with pytest.raises(DataError, match="zero_dates='null'"):
            pool.query("strict", f"SELECT d FROM {table_name}")
        pool.create_pool("lenient", url=mysql_dsn + "?zero_dates=null")
        df = pool.query("lenient", f"SELECT d, t FROM {table_name}")
        assert df.to_dicts() == [{"d": None, "t": None}]
        assert pool.query("strict", "SELECT 1 AS one")["one"][0] == 1  # the pool is intact


def test_tinyint1_as_integer_when_asked(mysql_dsn: str, table_name: str) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("ints", url=mysql_dsn + "?tinyint1_bool=0")
        pool.create_pool("bools", url=mysql_dsn)
        pool.execute("ints", f"CREATE TABLE {table_name} (f TINYINT(1))")
        pool.execute("ints", f"INSERT INTO {table_name} VALUES (5), (0), (NULL)")
        assert pool.query("ints", f"SELECT f FROM {table_name}")["f"].to_list() == [5, 0, None]
        with pytest.raises(DataError, match="holds 5"):  # never squashed to True
            pool.query("bools", f"SELECT f FROM {table_name}")
        assert pool.query("bools", f"SELECT f FROM {table_name} WHERE f < 2 OR f IS NULL")[
            "f"].to_list() == [False, None]


def test_sum_of_bigint_is_an_exact_decimal(mysql_dsn: str) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("my", url=mysql_dsn)
        df = pool.query("my", "SELECT SUM(seq) AS s FROM seq_1_to_1000000")
        assert df["s"][0] == Decimal(500000500000)
        with pytest.raises(DataError, match="fit"):
            pool.query("my", "SELECT CAST(REPEAT('9', 40) AS DECIMAL(40,0)) AS big")
