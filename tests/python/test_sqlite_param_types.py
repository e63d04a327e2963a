"""SQLite parameters of every type of the documented table (docs/sqlite.md,
"Parameter types"): the ones SQLite can hold are stored as the documented
storage class; durations and arrays, which it has no type for, are a
ProgrammingError naming the parameter and saying what to pass instead."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from db_pool import DataError, ProgrammingError

from conftest import assert_healthy

U = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")


class Color(enum.Enum):
    RED = "red"


# value, SQLite's typeof() of the stored value, the value read back
STORED: list[tuple[Any, str, Any]] = [
    (U, "text", str(U)),
    ({"a": [1, 2], "é": None}, "text", '{"a": [1, 2], "é": null}'),
    (ipaddress.ip_address("10.0.0.1"), "text", "10.0.0.1"),
    (ipaddress.ip_network("10.0.0.0/8"), "text", "10.0.0.0/8"),
    (Color.RED, "text", "red"),
    (np.int64(-5), "integer", -5),
    (np.float32(0.5), "real", 0.5),
    (np.bool_(True), "integer", 1),
    (bytearray(b"a\x00"), "blob", b"a\x00"),
    (memoryview(b"xy"), "blob", b"xy"),
    (Decimal("1E+30"), "text", "1E+30"),  # Decimal is kept as its exact text
]


@pytest.mark.parametrize("value,storage,want", STORED, ids=[f"{type(v[0]).__name__}-{i}" for i, v in enumerate(STORED)])
async def test_parameter_is_stored_as_documented(mem: Any, value: Any, storage: str, want: Any) -> None:
    df = await mem.query("db", "SELECT ? AS v, typeof(?) AS t", [value, value])
    assert df.row(0) == (want, storage)


@pytest.mark.parametrize("value,storage,want", STORED, ids=[f"{type(v[0]).__name__}-{i}" for i, v in enumerate(STORED)])
async def test_stream_parameters_outlive_the_cursor_open(mem: Any, value: Any, storage: str,
                                                         want: Any) -> None:
    """stream() steps its statement in later requests than the one that
    bound the values: text and bytes must still be there (they were read
    from freed memory)."""
    await mem.execute("db", "CREATE TABLE s (k INTEGER, v)")
    await mem.execute_many("db", "INSERT INTO s VALUES (?, ?)", [(k, value) for k in range(50)])
    sql = "SELECT k, ? AS v, typeof(?) AS t FROM s WHERE v = ?"
    batches = [b async for b in mem.stream("db", sql, [value, value, value], batch_rows=7)]
    assert sum(b.height for b in batches) == 50
    for b in batches:
        assert b.select("v", "t").unique().rows() == [(want, storage)]


async def test_json_parameter_works_with_sqlite_json_functions(mem: Any) -> None:
    df = await mem.query("db", "SELECT json_extract(?, '$.a[1]') AS v", [{"a": [1, 2]}])
    assert df.item() == 2


@pytest.mark.parametrize("value,message", [
    (dt.timedelta(seconds=5), "no type for a duration"),
    ([1, 2], "no type for an array"),
    ((1, 2), "no type for an array"),
    ("\ud800", "surrogates"),
    ({"x": float("inf")}, "JSON"),
    (object(), "'object'"),
])
async def test_values_sqlite_cannot_hold_are_refused(mem: Any, value: Any, message: str) -> None:
    with pytest.raises((ProgrammingError, DataError), match=message) as info:
        await mem.query("db", "SELECT ? AS a, ? AS v", ["ok", value])
    assert "parameter 2" in str(info.value)
    await assert_healthy(mem, "db")
