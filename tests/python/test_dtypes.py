"""Result dtypes and values, checked against Python's sqlite3 module reading
the same file; the Arrow data checked by pyarrow; parameters of every
supported Python type."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from db_pool import DatabasePool, SyncDatabasePool, _native

from conftest import assert_healthy, sqlite_url

UTC = dt.timezone.utc

COLUMNS = {
    "i": "INTEGER",
    "r": "REAL",
    "s": "TEXT",
    "b": "BLOB",
    "bo": "BOOLEAN",
    "d": "DATE",
    "dtm": "DATETIME",
    "ts": "TIMESTAMP",
    "tm": "TIME",
    "dec": "DECIMAL(10,2)",
    "num": "NUMERIC(38,10)",
}

DTYPES: dict[str, Any] = {
    "i": pl.Int64,
    "r": pl.Float64,
    "s": pl.String,
    "b": pl.Binary,
    "bo": pl.Boolean,
    "d": pl.Date,
    "dtm": pl.Datetime("us"),
    "ts": pl.Datetime("us"),
    "tm": pl.Time,
    "dec": pl.Decimal(10, 2),
    "num": pl.Decimal(38, 10),
}

ARROW_TYPES = {
    "i": pa.int64(),
    "r": pa.float64(),
    "bo": pa.bool_(),
    "d": pa.date32(),
    "dtm": pa.timestamp("us"),
    "ts": pa.timestamp("us"),
    "tm": pa.time64("us"),
    "dec": pa.decimal128(10, 2),
    "num": pa.decimal128(38, 10),
}

LONG_TEXT = "long text value, longer than twelve bytes: " + "x" * 300 + " \u00e9\u4e2d\U0001f600"

# One row per tuple, in COLUMNS order. Values are what the test inserts; the
# expected read-back is the same except aware datetimes (naive UTC).
ROWS: list[tuple[Any, ...]] = [
    (
        2**63 - 1,
        1.5,
        "short",  # < 12 bytes: inline in a string view
        b"\x00a\x00",
        True,
        dt.date(1, 1, 1),
        dt.datetime(1, 1, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.time(23, 59, 59, 999999),
        Decimal("12345678.99"),
        Decimal("9223372036854775807"),
    ),
    (
        -(2**63),
        -1.7976931348623157e308,
        LONG_TEXT,
        bytes(range(256)) * 3,
        False,
        dt.date(9999, 12, 31),
        dt.datetime(2024, 2, 29, 12, 30, 0, 1),
        dt.datetime(2020, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.time(0, 0),
        Decimal("-99999999.99"),
        Decimal("-9223372036854775808"),
    ),
    (None,) * len(COLUMNS),
    (
        0,
        5e-324,
        "",
        b"",
        None,
        dt.date(1970, 1, 1),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
        dt.datetime(1970, 1, 1),
        dt.time(12, 0, 0, 1),
        Decimal("0"),
        Decimal("0.5"),
    ),
    (
        1,
        float("inf"),
        "exactly12byt",  # 12 bytes: the longest inline string view
        b"twelve bytes",
        True,
        dt.date(2000, 2, 29),
        dt.datetime(2000, 1, 1, 0, 0, 0, 500000),
        dt.datetime(1, 1, 1, 0, 0, 0, 1),
        dt.time(1, 2, 3),
        Decimal("-0.01"),
        Decimal("-0.25"),
    ),
    (
        -1,
        float("-inf"),
        "thirteen byte",  # 13 bytes: the shortest out-of-line view
        b"\x00" * 13,
        False,
        dt.date(1600, 3, 1),
        dt.datetime(2021, 6, 15, 8, 0),
        dt.datetime(2021, 6, 15, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=-9, minutes=-30))),
        dt.time(23, 59),
        Decimal("0.1"),
        Decimal("1234567.125"),
    ),
    (
        42,
        0.1,
        "\U0001d11e\U0001f600\U0010fffd nul:\x00 end",  # beyond the BMP, a NUL
        b"\xff\xfe\x00\x01",
        None,
        None,
        None,
        None,
        None,
        Decimal("99999999.99"),
        Decimal("123456789012345"),
    ),
]


def expected_value(col: str, value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def from_sqlite3(decl: str, value: Any) -> Any:
    """Converts what Python's sqlite3 reads into the value db_pool should give."""
    if value is None:
        return None
    if decl == "INTEGER":
        assert isinstance(value, int)
        return value
    if decl == "REAL":
        assert isinstance(value, float)
        return value
    if decl == "TEXT":
        assert isinstance(value, str)
        return value
    if decl == "BLOB":
        assert isinstance(value, bytes)
        return value
    if decl == "BOOLEAN":
        assert value in (0, 1)
        return bool(value)
    if decl == "DATE":
        return dt.date.fromisoformat(value)
    if decl in ("DATETIME", "TIMESTAMP"):
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed
    if decl == "TIME":
        return dt.time.fromisoformat(value)
    if decl.startswith(("DECIMAL", "NUMERIC")):
        scale = int(decl.rstrip(")").split(",")[1])
        exact = Decimal(value) if isinstance(value, (int, str)) else Decimal(repr(value))
        with decimal.localcontext(prec=60):
            return exact.quantize(Decimal(1).scaleb(-scale))
    raise AssertionError(decl)


def create_sql(table: str = "t") -> str:
    cols = ", ".join(f"{name} {decl}" for name, decl in COLUMNS.items())
    return f"CREATE TABLE {table} (pos INTEGER PRIMARY KEY, {cols})"


def insert_sql(table: str = "t") -> str:
    marks = ", ".join("?" for _ in range(len(COLUMNS) + 1))
    return f"INSERT INTO {table} VALUES ({marks})"


@pytest.fixture
def filled(spool: SyncDatabasePool, db_path: Path) -> SyncDatabasePool:
    spool.create_pool("f", url=sqlite_url(db_path), max_size=2)
    spool.execute("f", create_sql())
    n = spool.execute_many("f", insert_sql(), [(pos, *row) for pos, row in enumerate(ROWS)])
    assert n == len(ROWS)
    return spool


def test_dtypes_by_declared_type(filled: SyncDatabasePool) -> None:
    df = filled.query("f", "SELECT * FROM t ORDER BY pos")
    assert df.schema == pl.Schema({"pos": pl.Int64, **DTYPES})
    # a column of NULLs keeps its declared dtype
    nulls = filled.query("f", "SELECT * FROM t WHERE i IS NULL")
    assert nulls.height == 1
    assert nulls.schema == df.schema
    assert nulls.null_count().row(0)[1:] == (1,) * len(COLUMNS)
    # so does an empty result
    assert filled.query("f", "SELECT * FROM t WHERE 0").schema == df.schema


def test_values_match_python_values(filled: SyncDatabasePool) -> None:
    df = filled.query("f", "SELECT * FROM t ORDER BY pos")
    for pos, row in enumerate(ROWS):
        got = df.row(pos, named=True)
        for (col, _), value in zip(COLUMNS.items(), row):
            want = expected_value(col, value)
            assert got[col] == want, (pos, col, got[col], want)
            if want is not None:
                assert type(got[col]) is type(want), (pos, col)


def test_values_match_sqlite3_cell_by_cell(filled: SyncDatabasePool, db_path: Path) -> None:
    df = filled.query("f", "SELECT * FROM t ORDER BY pos")
    with contextlib.closing(sqlite3.connect(db_path)) as con:
        raw = con.execute("SELECT * FROM t ORDER BY pos").fetchall()
    assert len(raw) == df.height == len(ROWS)
    decls = ["INTEGER", *COLUMNS.values()]
    names = ["pos", *COLUMNS]
    for r, raw_row in enumerate(raw):
        got = df.row(r)
        for c, (decl, name) in enumerate(zip(decls, names)):
            want = from_sqlite3(decl, raw_row[c])
            assert got[c] == want, (r, name, raw_row[c], got[c], want)


def test_aware_datetime_is_stored_as_utc_text(filled: SyncDatabasePool, db_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(db_path)) as con:
        stored = con.execute("SELECT ts, typeof(ts) FROM t WHERE pos = 1").fetchone()
    assert stored == ("2019-12-31 23:00:00+00:00", "text")
    with contextlib.closing(sqlite3.connect(db_path)) as con:
        stored = con.execute("SELECT ts FROM t WHERE pos = 5").fetchone()
    assert stored == ("2021-06-15 17:30:00+00:00",)
    naive = filled.query("f", "SELECT dtm FROM t WHERE pos = 1").item()
    assert naive == dt.datetime(2024, 2, 29, 12, 30, 0, 1)


def _native_result(pool: SyncDatabasePool | DatabasePool, pool_id: str, sql: str) -> Any:
    mgr = pool._manager()
    req = mgr.submit(pool_id, _native.OP_QUERY, sql, None, engine="sqlite")
    assert req.wait(10)
    return req.result()


def test_arrow_stream_validates(filled: SyncDatabasePool) -> None:
    sql = "SELECT * FROM t ORDER BY pos"
    table = pa.table(_native_result(filled, "f", sql))
    table.validate(full=True)
    assert table.num_rows == len(ROWS)
    for col, typ in ARROW_TYPES.items():
        assert table.schema.field(col).type == typ, col
    assert pa.types.is_string_view(table.schema.field("s").type) or pa.types.is_string(
        table.schema.field("s").type
    ) or pa.types.is_large_string(table.schema.field("s").type)
    assert table.column("s").to_pylist() == [expected_value("s", r[2]) for r in ROWS]
    assert table.column("b").to_pylist() == [expected_value("b", r[3]) for r in ROWS]
    assert table.column("num").to_pylist() == [r[10] for r in ROWS]

    reader = pa.RecordBatchReader.from_stream(_native_result(filled, "f", sql))
    assert reader.schema == table.schema
    n = 0
    for batch in reader:
        batch.validate(full=True)
        n += batch.num_rows
    assert n == len(ROWS)

    # a result object is consumed by its first reader
    obj = _native_result(filled, "f", sql)
    pa.table(obj)
    with pytest.raises(RuntimeError, match="consumed"):
        pa.table(obj)
    assert filled.stats("f")["in_use"] == 0


def test_arrow_many_strings_and_blobs_validate(spool: SyncDatabasePool) -> None:
    spool.create_pool("m", url="sqlite:///:memory:")
    spool.execute("m", "CREATE TABLE v (i INTEGER, s TEXT, b BLOB)")
    rows = [
        (i, ("s%d-" % i) * (i % 17), bytes([i % 256]) * (i % 29))
        for i in range(60_000)
    ]
    spool.execute_many("m", "INSERT INTO v VALUES (?, ?, ?)", rows)
    table = pa.table(_native_result(spool, "m", "SELECT s, b FROM v ORDER BY i"))
    table.validate(full=True)
    assert table.column("s").to_pylist() == [r[1] for r in rows]
    assert table.column("b").to_pylist() == [r[2] for r in rows]
    df = spool.query("m", "SELECT s, b FROM v ORDER BY i")
    assert df["s"].to_list() == [r[1] for r in rows]
    assert df["b"].to_list() == [r[2] for r in rows]


async def test_arrow_from_async_pool(apool: DatabasePool) -> None:
    await apool.create_pool("m", url="sqlite:///:memory:")
    table = pa.table(_native_result(apool, "m", "SELECT 1 AS a, 'x' AS b, 2.5 AS c, X'00' AS d"))
    table.validate(full=True)
    assert table.to_pylist() == [{"a": 1, "b": "x", "c": 2.5, "d": b"\x00"}]
    await assert_healthy(apool, "m")


# ---- parameters of every supported type -----------------------------------------------

PARAMS = [
    pytest.param(None, pl.Null, None, id="None"),
    pytest.param(True, pl.Int64, 1, id="bool-true"),
    pytest.param(False, pl.Int64, 0, id="bool-false"),
    pytest.param(2**63 - 1, pl.Int64, 2**63 - 1, id="int-max"),
    pytest.param(-(2**63), pl.Int64, -(2**63), id="int-min"),
    pytest.param(0.1, pl.Float64, 0.1, id="float"),
    pytest.param(float("inf"), pl.Float64, float("inf"), id="float-inf"),
    pytest.param("h\u00e9llo \U0001f600", pl.String, "h\u00e9llo \U0001f600", id="str"),
    pytest.param("", pl.String, "", id="str-empty"),
    pytest.param(b"\x00\x01\xff", pl.Binary, b"\x00\x01\xff", id="bytes"),
    pytest.param(bytearray(b"\x00ba"), pl.Binary, b"\x00ba", id="bytearray"),
    pytest.param(memoryview(b"xx\x00yy")[1:4], pl.Binary, b"x\x00y", id="memoryview"),
    pytest.param(Decimal("-12.340"), pl.String, "-12.340", id="decimal"),
    pytest.param(dt.date(2024, 2, 29), pl.String, "2024-02-29", id="date"),
    pytest.param(dt.time(7, 8, 9, 10), pl.String, "07:08:09.000010", id="time"),
    pytest.param(dt.datetime(2024, 1, 2, 3, 4, 5, 6), pl.String, "2024-01-02 03:04:05.000006", id="datetime"),
    pytest.param(
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        pl.String,
        "2024-01-01 21:34:05+00:00",
        id="datetime-aware",
    ),
]


@pytest.mark.parametrize(("value", "dtype", "expected"), PARAMS)
async def test_parameter_as_untyped_expression(mem: Any, value: Any, dtype: Any, expected: Any) -> None:
    df = await mem.query("db", "SELECT ? AS v", [value])
    assert df.schema == pl.Schema({"v": dtype})
    assert df.item() == expected
    df = await mem.query("db", "SELECT :v AS v", {"v": value})
    assert df.item() == expected


async def test_parameters_round_trip_through_typed_columns(mem: Any) -> None:
    await mem.execute("db", create_sql())
    row = (
        7,
        -3,
        2.25,
        "text \U0001f600",
        memoryview(b"\x00blob"),
        True,
        dt.date(2023, 12, 31),
        dt.datetime(2023, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2024, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        dt.time(13, 14, 15, 16),
        Decimal("1.1"),
        Decimal("-0.0625"),
    )
    assert await mem.execute("db", insert_sql(), row) == 1
    named = {"pos": 8, **{name: value for name, value in zip(COLUMNS, row[1:])}}
    named["b"] = bytearray(b"\x00blob")
    placeholders = ", ".join(f":{name}" for name in named)
    assert await mem.execute("db", f"INSERT INTO t VALUES ({placeholders})", named) == 1
    df = await mem.query("db", "SELECT * FROM t ORDER BY pos")
    assert df.schema == pl.Schema({"pos": pl.Int64, **DTYPES})
    want = {
        "i": -3,
        "r": 2.25,
        "s": "text \U0001f600",
        "b": b"\x00blob",
        "bo": True,
        "d": dt.date(2023, 12, 31),
        "dtm": dt.datetime(2023, 12, 31, 23, 59, 59, 999999),
        "ts": dt.datetime(2023, 12, 31, 23, 30),
        "tm": dt.time(13, 14, 15, 16),
        "dec": Decimal("1.10"),
        "num": Decimal("-0.0625000000"),
    }
    for pos, got in zip((7, 8), df.iter_rows(named=True)):
        assert got == {"pos": pos, **want}
    assert str(df["dec"][0]) == "1.10"


async def test_named_parameters(mem: Any) -> None:
    df = await mem.query("db", "SELECT :a AS a, :b AS b, :a + :b AS c, $d AS d, @e AS e",
                         {"b": 2, "a": 40, "d": "dollar", "e": None})
    assert df.row(0) == (40, 2, 42, "dollar", None)
    await assert_healthy(mem, "db")
