"""Every Python parameter type of the documented table (docs/postgresql.md,
"Parameter types") binds to its natural PostgreSQL type: as a bare `$1`
(which the server alone would read as text), into a typed column, and in
execute_many; what cannot be bound is a ProgrammingError naming the
parameter, never a TypeError."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest

from db_pool import DataError, ProgrammingError

from .conftest import POOL_ID, assert_healthy

U = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")


class Color(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


# value, the Polars dtype of `SELECT $1`, the value read back
BARE: list[tuple[Any, pl.DataType, Any]] = [
    (7, pl.Int64(), 7),
    (1.5, pl.Float64(), 1.5),
    (True, pl.Boolean(), True),
    (Decimal("1.25"), pl.Decimal(38, 2), Decimal("1.25")),
    (Decimal("1E+30"), pl.Decimal(38, 0), Decimal(10**30)),
    (b"\x00a", pl.Binary(), b"\x00a"),
    (bytearray(b"ab"), pl.Binary(), b"ab"),
    (dt.date(2020, 1, 2), pl.Date(), dt.date(2020, 1, 2)),
    (dt.time(1, 2, 3, 4), pl.Time(), dt.time(1, 2, 3, 4)),
    (dt.datetime(2020, 1, 2, 3, 4, 5, 6), pl.Datetime("us"), dt.datetime(2020, 1, 2, 3, 4, 5, 6)),
    (dt.timedelta(days=1, microseconds=5), pl.Duration("us"), dt.timedelta(days=1, microseconds=5)),
    (dt.timedelta(days=-3, seconds=7), pl.Duration("us"), dt.timedelta(days=-3, seconds=7)),
    (U, pl.String(), str(U)),  # uuid reads as its text
    ({"a": [1, 2], "é": None}, pl.String(), '{"a": [1, 2], "é": null}'),  # jsonb's text
    (ipaddress.ip_address("10.0.0.1"), pl.String(), "10.0.0.1"),
    (ipaddress.ip_network("10.0.0.0/8"), pl.String(), "10.0.0.0/8"),
    (ipaddress.ip_address("::1"), pl.String(), "::1"),
    (Color.RED, pl.String(), "red"),
    (Size.BIG, pl.Int64(), 3),
    (np.int32(-5), pl.Int64(), -5),
    (np.float64(0.25), pl.Float64(), 0.25),
    (np.bool_(True), pl.Boolean(), True),
    ([1, 2, None], pl.List(pl.Int64), [1, 2, None]),
    ((1.5, -2.0), pl.List(pl.Float64), [1.5, -2.0]),
    ([1, 2.5], pl.List(pl.Float64), [1.0, 2.5]),
    (["a", 'q"uote\\', None, ""], pl.List(pl.String), ["a", 'q"uote\\', None, ""]),
    ([], pl.List(pl.String), []),
    ([dt.date(2020, 1, 1)], pl.List(pl.Date), [dt.date(2020, 1, 1)]),
    ([b"\x00\xff"], pl.List(pl.Binary), [b"\x00\xff"]),
    ([True, None], pl.List(pl.Boolean), [True, None]),
    ([Decimal("1.5")], pl.List(pl.Decimal(38, 1)), [Decimal("1.5")]),
    (np.array([1, 2], dtype=np.int16), pl.List(pl.Int64), [1, 2]),
]


@pytest.mark.parametrize("value,dtype,want", BARE, ids=[f"{type(v[0]).__name__}-{i}" for i, v in enumerate(BARE)])
async def test_bare_parameter_has_the_type_of_its_value(pg: Any, value: Any, dtype: Any, want: Any) -> None:
    df = await pg.query(POOL_ID, "SELECT $1 AS v", [value])
    assert df.schema["v"] == dtype
    assert df["v"].to_list() == [want]


async def test_typed_columns_take_the_new_types(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE nt (id int PRIMARY KEY, u uuid, j jsonb, js json, ip inet, net cidr, "
                  "iv interval, ai int4[], at text[], e text)")
    rows = [
        [1, U, {"k": [1, "x"]}, {"k": 1}, ipaddress.ip_address("192.168.1.5"),
         ipaddress.ip_network("10.1.0.0/16"), dt.timedelta(hours=-5, microseconds=1), [1, None, 3],
         ["a b", "c,d", "{e}"], Color.RED],
        [2, None, None, None, None, None, None, None, None, None],
    ]
    sql = "INSERT INTO nt VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    assert await pg.execute(POOL_ID, sql, rows[0]) == 1
    assert await pg.execute_many(POOL_ID, sql, [[10 + r[0]] + r[1:] for r in rows]) == 2
    with admin.cursor() as cur:
        cur.execute("SELECT u, j, js::text, host(ip), net::text, iv, ai, at, e FROM nt ORDER BY id")
        got = cur.fetchall()
    first = (U, {"k": [1, "x"]}, '{"k": 1}', "192.168.1.5", "10.1.0.0/16",
             dt.timedelta(hours=-5, microseconds=1), [1, None, 3], ["a b", "c,d", "{e}"], "red")
    assert got == [first, first, (None,) * 9]  # ids 1, 11, 12
    df = await pg.query(POOL_ID, "SELECT id FROM nt WHERE u = $1 AND ai = $2 ORDER BY id", [U, [1, None, 3]])
    assert df["id"].to_list() == [1, 11]
    df = await pg.query(POOL_ID, "SELECT id FROM nt WHERE id = ANY($1) ORDER BY id", [(12, 11, 5)])
    assert df["id"].to_list() == [11, 12]
    await assert_healthy(pg)


async def test_one_sql_text_with_values_of_different_types(pg: Any) -> None:
    """Each set of value types gets its own prepared form; none is reused
    for values it does not fit."""
    for value, want in [("x", "x"), (7, 7), ("y", "y"), (2.5, 2.5), (None, None), (8, 8)]:
        assert (await pg.query(POOL_ID, "SELECT $1 AS v", [value])).item() == want


@pytest.mark.parametrize("value,message", [
    ([1, "a"], "one type"),
    ([[1], "a"], "one type"),
    ({"x": float("nan")}, "JSON"),
    ({"x": object()}, "not JSON serializable"),
    (object(), "'object'"),
    ("\ud800", "surrogates"),
    ([object()], "'object'"),
    (np.datetime64("2020-01-01T00:00:00.000000001"), "microseconds"),
    ([Decimal("NaN")], "NaN"),
    (dt.timedelta.max, "64-bit"),
])
async def test_values_that_cannot_be_bound_name_the_parameter(pg: Any, value: Any, message: str) -> None:
    with pytest.raises((ProgrammingError, DataError), match=message) as info:
        await pg.query(POOL_ID, "SELECT $1::text AS a, $2 AS v", ["ok", value])
    assert "parameter 2" in str(info.value)
    await assert_healthy(pg)
