"""PostgreSQL types -> Polars: every supported type, NULLs and extremes,
compared cell by cell with what psycopg reads from the same rows, through
every read path (COPY, extended protocol with and without parameters,
streams of both kinds), plus the documented DataErrors."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any, Callable

import polars as pl
import pytest

from db_pool import DataError

from .conftest import POOL_ID, assert_healthy, pg_url, pool_kwargs, wait_idle

psycopg = pytest.importorskip("psycopg")

# A session time zone far from UTC (+12:45 / +13:45): timestamptz and timetz
# must not depend on it.
ODD_TIMEZONE = "Pacific/Chatham"

BIG_TEXT = "".join(chr(0x20 + (i * 7919) % 0x5F) for i in range(100_000)) + "😀"
BIG_BYTEA = bytes((i * 31 + 7) % 256 for i in range(100_000)) + b"\x00\x00"

# (column, SQL type, polars dtype or None when it depends on the data,
#  how psycopg reads the expected value: an SQL expression of {c})
COLUMNS: list[tuple[str, str, Any, str]] = [
    ("c_bool", "bool", pl.Boolean, "{c}"),
    ("c_int2", "int2", pl.Int16, "{c}"),
    ("c_int4", "int4", pl.Int32, "{c}"),
    ("c_int8", "int8", pl.Int64, "{c}"),
    ("c_float4", "float4", pl.Float32, "{c}"),
    ("c_float8", "float8", pl.Float64, "{c}"),
    ("c_num12", "numeric(12,2)", pl.Decimal(12, 2), "{c}"),
    ("c_num", "numeric", None, "{c}"),  # Decimal(38, most fraction digits of any value)
    ("c_text", "text", pl.String, "{c}"),
    ("c_varchar", "varchar(10)", pl.String, "{c}"),
    ("c_bpchar", "char(5)", pl.String, "{c}"),
    ("c_name", "name", pl.String, "{c}"),
    ("c_bytea", "bytea", pl.Binary, "{c}"),
    ("c_date", "date", pl.Date, "{c}"),
    ("c_time", "time", pl.Time, "{c}"),
    ("c_timetz", "timetz", pl.Time, "{c}"),
    ("c_ts", "timestamp", pl.Datetime("us"), "{c}"),
    ("c_tstz", "timestamptz", pl.Datetime("us", "UTC"), "{c}"),
    ("c_interval", "interval", pl.Duration("us"), "{c}"),
    ("c_uuid", "uuid", pl.String, "{c}"),
    ("c_json", "json", pl.String, "{c}::text"),  # json keeps its text as entered
    ("c_jsonb", "jsonb", pl.String, "{c}::text"),  # jsonb's canonical text
    # as psql prints them: the output function (format %s), not ::text (which
    # adds /32 to host addresses)
    ("c_inet", "inet", pl.String, "CASE WHEN {c} IS NOT NULL THEN format('%s', {c}) END"),
    ("c_cidr", "cidr", pl.String, "CASE WHEN {c} IS NOT NULL THEN format('%s', {c}) END"),
    ("c_macaddr", "macaddr", pl.String, "CASE WHEN {c} IS NOT NULL THEN format('%s', {c}) END"),
    ("c_enum", "mood", pl.String, "{c}::text"),
    ("c_oid", "oid", pl.UInt32, "{c}"),
    ("c_money", "money", pl.Decimal(19, 2), "{c}::numeric"),
    ("c_int4arr", "int4[]", pl.List(pl.Int32), "{c}"),
    ("c_textarr", "text[]", pl.List(pl.String), "{c}"),
]
NAMES = [c[0] for c in COLUMNS]

# Row values as SQL literals, one dict per row; missing columns are NULL.
ROWS: list[dict[str, str]] = [
    {},  # every column NULL
    {  # ordinary values
        "c_bool": "true", "c_int2": "12", "c_int4": "1234", "c_int8": "1234567890123",
        "c_float4": "3.14", "c_float8": "2.718281828459045", "c_num12": "1234.56",
        "c_num": "1.50", "c_text": "'hello'", "c_varchar": "'varchar'", "c_bpchar": "'ab'",
        "c_name": "'pg_name'", "c_bytea": "'\\x00010203'::bytea", "c_date": "'2024-02-29'",
        "c_time": "'13:45:56.789012'", "c_timetz": "'12:00:00+02'",
        "c_ts": "'2024-02-29 13:45:56.789012'", "c_tstz": "'2024-02-29 13:45:56.789012+05:30'",
        "c_interval": "'1 day 02:03:04.5'", "c_uuid": "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        "c_json": """'{"b": [1, 2.5, "x"], "a": {"c": null}, "a": 1}'""",
        "c_jsonb": """'{"b": [1, 2.5, "x"], "a": {"c": null}}'""",
        "c_inet": "'192.168.1.5'", "c_cidr": "'10.0.0.0/8'", "c_macaddr": "'08:00:2b:01:02:03'",
        "c_enum": "'happy'", "c_oid": "12345", "c_money": "'1234.56'",
        "c_int4arr": "'{1,2,3}'", "c_textarr": "'{a,b,c}'",
    },
    {  # minimums
        "c_bool": "false", "c_int2": "-32768", "c_int4": "-2147483648",
        "c_int8": "-9223372036854775808", "c_float4": "'-3.4028235e38'",
        "c_float8": "'-1.7976931348623157e308'", "c_num12": "-9999999999.99",
        "c_num": "-12345678901234567890.123456", "c_text": "''", "c_varchar": "''",
        "c_bpchar": "''", "c_name": "''", "c_bytea": "''::bytea", "c_date": "'0001-01-01'",
        "c_time": "'00:00:00'", "c_timetz": "'00:00:00+14'", "c_ts": "'0001-01-01 00:00:00'",
        "c_tstz": "'0001-01-01 00:00:00+00'", "c_interval": "'-1000000 days -00:00:00.000001'",
        "c_uuid": "'00000000-0000-0000-0000-000000000000'", "c_json": "'{}'",
        "c_jsonb": "'[]'", "c_inet": "'0.0.0.0'", "c_cidr": "'0.0.0.0/0'",
        "c_macaddr": "'00:00:00:00:00:00'", "c_enum": "'sad'", "c_oid": "0",
        "c_money": "'-92233720368547758.08'", "c_int4arr": "'{}'", "c_textarr": "'{}'",
    },
    {  # maximums
        "c_bool": "true", "c_int2": "32767", "c_int4": "2147483647",
        "c_int8": "9223372036854775807", "c_float4": "'3.4028235e38'",
        "c_float8": "'1.7976931348623157e308'", "c_num12": "9999999999.99",
        "c_num": "0.000000000001", "c_text": "'x'", "c_varchar": "'ünïcödé😀ab'",
        "c_bpchar": "'é😀'", "c_name": "'" + "n" * 63 + "'", "c_bytea": "'\\x00ff00'::bytea",
        "c_date": "'9999-12-31'", "c_time": "'23:59:59.999999'",
        "c_timetz": "'23:59:59.999999-12'", "c_ts": "'9999-12-31 23:59:59.999999'",
        "c_tstz": "'9999-12-31 23:59:59.999999+00'",
        "c_interval": "'1000000 days 23:59:59.999999'",
        "c_uuid": "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
        "c_json": """'{"a":{"b":{"c":[1,{"d":[true,false,null,"😀"]}]}}}'""",
        "c_jsonb": """'{"a":{"b":{"c":[1,{"d":[true,false,null,"😀 \\u00e9"]}]}}}'""",
        "c_inet": "'2001:db8::ff00:42:8329'", "c_cidr": "'2001:db8::/32'",
        "c_macaddr": "'ff:ff:ff:ff:ff:ff'", "c_enum": "'ünïcödé 😀'", "c_oid": "4294967295",
        "c_money": "'92233720368547758.07'", "c_int4arr": "'{1,NULL,-2147483648,2147483647}'",
        "c_textarr": """'{"",NULL,"a,b","😀","quo\\"te","NULL"}'""",
    },
    {  # special values
        "c_float4": "'NaN'", "c_float8": "'-Infinity'", "c_num12": "0", "c_num": "0",
        "c_text": "'😀 𝄞 汉字 ünïcödé'", "c_date": "'1970-01-01'", "c_time": "'12:00:00'",
        "c_timetz": "'05:30:00+05:30'", "c_ts": "'1969-12-31 23:59:59.999999'",
        "c_tstz": "'1969-12-31 23:59:59.999999+00'", "c_interval": "'0'",
        "c_inet": "'::ffff:1.2.3.4'", "c_cidr": "'192.168.100.128/25'",
        "c_int4arr": "'{NULL}'", "c_textarr": "'{NULL,NULL}'",
        "c_jsonb": """'{"k": "v", "k": "dup", "n": 1.50}'""",
    },
    {  # big values, other specials
        "c_float4": "'Infinity'", "c_float8": "'NaN'", "c_num": "100000000000000000000",
        "c_text": "$big${BIG_TEXT}$big$", "c_bytea": "'\\x{BIG_BYTEA}'::bytea",
        "c_inet": "'192.168.1.5/24'", "c_cidr": "'::/0'",
        "c_interval": "'-3 days 04:00:00'", "c_time": "'00:00:00.000001'",
        "c_timetz": "'23:00:00-05'",
    },
    {  # the float signs of zero and the smallest subnormals
        "c_float4": "'-0'", "c_float8": "'5e-324'", "c_text": "'NULL'",
        "c_int4arr": "'[0:2]={7,8,9}'",  # the lower bound is not kept
    },
]


def _literal(value: str) -> str:
    return value.replace("{BIG_TEXT}", BIG_TEXT).replace("{BIG_BYTEA}", BIG_BYTEA.hex())


def _create_types_table(admin: Any) -> None:
    admin.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'ünïcödé 😀')")
    cols = ", ".join(f"{name} {sqltype}" for name, sqltype, _, _ in COLUMNS)
    admin.execute(f"CREATE TABLE types (id int4 PRIMARY KEY, {cols})")
    for i, row in enumerate(ROWS):
        values = [_literal(row[n]) if n in row else "NULL" for n in NAMES]
        admin.execute(f"INSERT INTO types VALUES ({i}, {', '.join(values)})")


@pytest.fixture
def types_table(admin: Any) -> dict[str, list[Any]]:
    """Creates the table `types`; returns psycopg's (binary) values by column."""
    _create_types_table(admin)
    select = ", ".join(expr.format(c=name) + f" AS {name}" for name, _, _, expr in COLUMNS)
    with admin.cursor(binary=True) as cur:
        cur.execute(f"SELECT id, {select} FROM types ORDER BY id")
        rows = cur.fetchall()
    expected: dict[str, list[Any]] = {"id": [r[0] for r in rows]}
    for i, name in enumerate(NAMES, start=1):
        expected[name] = [_normalize_expected(name, r[i]) for r in rows]
    return expected


def _normalize_expected(name: str, value: Any) -> Any:
    """psycopg's value as our decoders are specified to give it."""
    if value is None:
        return None
    if name == "c_timetz":  # normalised to UTC, wrapping around midnight
        offset = value.utcoffset() or dt.timedelta(0)
        us = (value.hour * 3600 + value.minute * 60 + value.second) * 10**6 + value.microsecond
        us = (us - offset // dt.timedelta(microseconds=1)) % (86400 * 10**6)
        return (dt.datetime.min + dt.timedelta(microseconds=us)).time()
    if name == "c_uuid":
        return str(value)
    if name == "c_money":
        return Decimal(value)
    return value


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN, -0.0 differs from 0.0 and lists compare deeply."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    return type(a) is type(b) and a == b if a is not None and b is not None else a is b


def _show(v: Any) -> str:
    r = repr(v)
    return r if len(r) < 200 else r[:200] + f"... ({len(r)} chars)"


def assert_cells(df: pl.DataFrame, expected: dict[str, list[Any]]) -> None:
    """Every cell of df equals psycopg's value; reports all differing cells."""
    assert df.columns == ["id", *NAMES]
    assert df["id"].to_list() == expected["id"]
    problems = []
    for name in NAMES:
        got = df[name].to_list()
        for row, (g, e) in enumerate(zip(got, expected[name])):
            if not same(g, e):
                problems.append(f"{name} row {row}: got {_show(g)}, expected {_show(e)}")
    assert not problems, "\n".join(problems)


def expected_dtypes(expected: dict[str, list[Any]]) -> dict[str, Any]:
    """The dtype of every column; unconstrained numeric takes the most
    fraction digits any of its values needs (trailing zeros do not count)."""
    scale = max(
        (max(-v.normalize().as_tuple().exponent, 0) for v in expected["c_num"] if v is not None),
        default=0,
    )
    dtypes = {"id": pl.Int32}
    for name, _, dtype, _ in COLUMNS:
        dtypes[name] = pl.Decimal(38, scale) if dtype is None else dtype
    return dtypes


def assert_dtypes(df: pl.DataFrame, expected: dict[str, list[Any]], *, batch: bool = False) -> None:
    want = expected_dtypes(expected)
    got = dict(df.schema)
    if batch:  # a stream batch sees only its own numeric values
        assert isinstance(got.pop("c_num"), pl.Decimal)
        want.pop("c_num")
    assert got == want


# ---- the read paths -------------------------------------------------------------------

SELECT_ALL = "SELECT * FROM types ORDER BY id"
SELECT_PARAM = "SELECT * FROM types WHERE id >= $1 ORDER BY id"


async def _collect(pool: Any, sql: str, params: Any, batch_rows: int,
                   copy: Any = "auto") -> list[pl.DataFrame]:
    stream = pool.stream(POOL_ID, sql, params, batch_rows=batch_rows, copy=copy)
    return [b async for b in stream]


# path -> (how to read the table, batch_rows of a stream or 0)
PATHS: dict[str, tuple[Callable[[Any], Any], int]] = {
    "copy": (lambda p: p.query(POOL_ID, SELECT_ALL), 0),
    "copy-forced": (lambda p: p.query(POOL_ID, SELECT_ALL, copy=True), 0),
    "params": (lambda p: p.query(POOL_ID, SELECT_PARAM, [0]), 0),
    "no-copy": (lambda p: p.query(POOL_ID, SELECT_ALL, copy=False), 0),
    "stream-copy": (lambda p: _collect(p, SELECT_ALL, None, 2), 2),
    "stream-params": (lambda p: _collect(p, SELECT_PARAM, [0], 2), 2),
    "stream-no-copy": (lambda p: _collect(p, SELECT_ALL, None, 3, copy=False), 3),
}


@pytest.fixture
async def tz_pg(pg: Any, pg_server: Any, schema: str) -> Any:
    """``pg`` with its pool "pg" recreated (the same way) in an odd session time zone."""
    await pg.close_pool(POOL_ID)
    if getattr(pg, "is_sync", False):
        await pg.create_pool(POOL_ID, url=pg_url(pg_server, schema, timezone=ODD_TIMEZONE))
    else:
        await pg.create_pool(POOL_ID, **pool_kwargs(pg_server, schema, timezone=ODD_TIMEZONE))
    df = await pg.query(POOL_ID, "SELECT current_setting('TimeZone') AS tz")
    assert df.item() == ODD_TIMEZONE
    return pg


@pytest.mark.parametrize("path", list(PATHS))
async def test_type_matrix(tz_pg: Any, types_table: dict[str, list[Any]], path: str) -> None:
    read, batch_rows = PATHS[path]
    result = await read(tz_pg)
    if batch_rows:  # a stream: check each batch, then the whole
        sizes = [b.height for b in result]
        assert sizes == [min(batch_rows, len(ROWS) - i) for i in range(0, len(ROWS), batch_rows)]
        for batch in result:
            assert_dtypes(batch, types_table, batch=True)
        widest = expected_dtypes(types_table)["c_num"]
        df = pl.concat([b.with_columns(pl.col("c_num").cast(widest)) for b in result])
    else:
        df = result
        assert_dtypes(df, types_table)
    assert df.height == len(ROWS)
    assert_cells(df, types_table)
    await assert_healthy(tz_pg)


async def test_expected_values_are_what_the_spec_says(types_table: dict[str, list[Any]]) -> None:
    """A few spot checks that the psycopg side really holds the extremes."""
    assert types_table["c_int8"][2] == -(2**63)
    assert types_table["c_int8"][3] == 2**63 - 1
    assert types_table["c_date"][2] == dt.date(1, 1, 1)
    assert types_table["c_ts"][3] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert types_table["c_text"][5] == BIG_TEXT
    assert types_table["c_bytea"][5] == BIG_BYTEA
    assert types_table["c_bpchar"][1] == "ab   "
    assert types_table["c_timetz"][1] == dt.time(10, 0)
    assert types_table["c_timetz"][2] == dt.time(10, 0)  # 00:00+14 is 10:00 UTC the day before
    assert types_table["c_inet"][1] == "192.168.1.5"
    assert types_table["c_int4arr"][3] == [1, None, -(2**31), 2**31 - 1]
    assert types_table["c_int4arr"][6] == [7, 8, 9]
    assert types_table["c_money"][3] == Decimal("92233720368547758.07")


async def test_single_values_and_nulls_per_type(pg: Any) -> None:
    """Each type alone, a value then NULL: the plan does not depend on other columns."""
    cases = [
        ("true", [True, None]), ("1::int2", [1, None]), ("1::oid", [1, None]),
        ("'x'::name", ["x", None]), ("'a'::\"char\"", ["a", None]),
        ("'{}'::int4[]", [[], None]), ("'{\"\"}'::text[]", [[""], None]),
        ("'1 day'::interval", [dt.timedelta(days=1), None]),
        ("'12:00-03'::timetz", [dt.time(15, 0), None]),
        ("'08:00:2b:01:02:03:04:05'::macaddr8", ["08:00:2b:01:02:03:04:05", None]),
        ("'<a>x</a>'::xml", ["<a>x</a>", None]),
    ]
    for expr, want in cases:
        for params in (None, [1]):
            sql = f"SELECT v FROM (VALUES ({expr}), (NULL)) AS t(v)"
            if params:
                sql += " WHERE $1::int4 = 1"
            df = await pg.query(POOL_ID, sql, params)
            assert df["v"].to_list() == want, (expr, params)


async def test_all_null_column_keeps_its_type(pg: Any) -> None:
    df = await pg.query(POOL_ID, "SELECT NULL::int8 AS a, NULL::text AS b, NULL::date AS c")
    assert df.schema == pl.Schema({"a": pl.Int64, "b": pl.String, "c": pl.Date})
    assert df.row(0) == (None, None, None)
    df = await pg.query(POOL_ID, "SELECT a FROM (SELECT 1::int2 AS a) t WHERE false")
    assert df.height == 0 and df.schema == pl.Schema({"a": pl.Int16})
    df = await pg.query(POOL_ID, "SELECT a FROM (SELECT 1::int2 AS a) t WHERE $1", [False])
    assert df.height == 0 and df.schema == pl.Schema({"a": pl.Int16})


async def test_domain_over_builtin_is_planned_as_its_base(pg: Any, admin: Any) -> None:
    admin.execute("CREATE DOMAIN posint AS int8 CHECK (VALUE > 0)")
    admin.execute("CREATE DOMAIN short_text AS varchar(5)")
    admin.execute("CREATE TABLE d (a posint, b short_text)")
    admin.execute("INSERT INTO d VALUES (5, 'abc'), (NULL, NULL)")
    for params in (None, [0]):
        sql = "SELECT a, b FROM d" + (" WHERE coalesce(a, 1) > $1" if params else "")
        df = await pg.query(POOL_ID, sql, params)
        assert df.schema == pl.Schema({"a": pl.Int64, "b": pl.String})
        assert df.rows() == [(5, "abc"), (None, None)]


async def test_unconstrained_numeric_scale_is_the_widest_value(pg: Any) -> None:
    sql = "SELECT v::numeric AS v FROM (VALUES ('1.5'), ('-2.125'), ('3'), (NULL)) t(v)"
    df = await pg.query(POOL_ID, sql)
    assert df.schema["v"] == pl.Decimal(38, 3)
    assert df["v"].to_list() == [Decimal("1.500"), Decimal("-2.125"), Decimal("3.000"), None]
    # 38 digits exactly fit
    big = "9" * 26 + "." + "9" * 12
    df = await pg.query(POOL_ID, f"SELECT '{big}'::numeric AS v")
    assert df["v"].to_list() == [Decimal(big)]


# ---- documented DataErrors -------------------------------------------------------------

DATA_ERRORS = {
    "infinity-date": ("'infinity'::date", "infinite date"),
    "-infinity-date": ("'-infinity'::date", "infinite date"),
    "infinity-timestamp": ("'infinity'::timestamp", "infinite timestamp"),
    "-infinity-timestamptz": ("'-infinity'::timestamptz", "infinite timestamp"),
    "interval-months": ("'1 month 2 days'::interval", "month"),
    "interval-years": ("'-3 years'::interval", "month"),
    "numeric-nan": ("'NaN'::numeric", "NaN"),
    "2d-array": ("'{{1,2},{3,4}}'::int4[]", "dimensional"),
    "numeric-too-wide": ("1e40::numeric", "38 digits"),
    "numeric-too-wide-together": (None, "digits"),
    "time-24h": ("'24:00:00'::time", "24:00:00"),
}


@pytest.mark.parametrize("case", list(DATA_ERRORS))
async def test_documented_data_errors(pg: Any, case: str) -> None:
    expr, message = DATA_ERRORS[case]
    if expr is None:  # each value fits alone, not both at the widest scale
        sql = "SELECT v::numeric AS v FROM (VALUES ('1' || repeat('0', 30)), ('0.' || repeat('0', 9) || '1')) t(v)"
    else:
        # the bad value in the middle of good rows of the same type
        sql = (
            f"SELECT g, CASE WHEN g = 50 THEN {expr} ELSE NULL END AS v "
            "FROM generate_series(1, 100) g"
        )
    variants: list[tuple[str, Any, Any]] = [
        ("copy", sql, None),
        ("params", f"SELECT * FROM ({sql}) s WHERE $1::int4 = 1", [1]),
        ("no-copy", sql, "nocopy"),
    ]
    for label, text, params in variants:
        with pytest.raises(DataError, match=message) as info:
            if params == "nocopy":
                await pg.query(POOL_ID, text, copy=False)
            else:
                await pg.query(POOL_ID, text, params)
        err = info.value
        assert err.engine == "postgresql", label
        assert err.category == "data", label
        stats = await wait_idle(pg)
        assert stats["in_use"] == 0
        await assert_healthy(pg)
    # and through a stream
    with pytest.raises(DataError, match=message):
        async for _ in pg.stream(POOL_ID, sql, batch_rows=10):
            pass
    await assert_healthy(pg)


async def test_unknown_types_come_as_binary(pg: Any) -> None:
    """Types without a decoder (composites, geometric types) come as their
    binary bytes, not as an error."""
    df = await pg.query(POOL_ID, "SELECT ROW(1, 'x') AS r, point(1, 2) AS p")
    assert df.schema == pl.Schema({"r": pl.Binary, "p": pl.Binary})
    assert df["p"].to_list() == [bytes.fromhex("3ff0000000000000" "4000000000000000")]
    await assert_healthy(pg)


async def test_enum_array_is_a_list_of_labels(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TYPE color AS ENUM ('red', 'green')")
    df = await pg.query(POOL_ID, "SELECT ARRAY['red', 'green', NULL]::color[] AS a")
    assert df.schema == pl.Schema({"a": pl.List(pl.String)})
    assert df["a"].to_list() == [["red", "green", None]]
