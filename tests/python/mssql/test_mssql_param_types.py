"""MSSQL parameters of the documented table (docs/mssql.md, "Parameter
types") beyond the basic ones: a UUID binds as uniqueidentifier, JSON
documents and IP addresses as nvarchar, Enums and numpy scalars as their
values; durations and arrays, which SQL Server has no type for, are a
ProgrammingError naming the parameter."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import uuid
from typing import Any

import numpy as np
import polars as pl
import pytest

from db_pool import ProgrammingError

from .conftest import POOL_ID, assert_healthy

U = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")


class Color(enum.Enum):
    RED = "red"


async def test_uuid_binds_as_uniqueidentifier(ms: Any, table: str) -> None:
    await ms.execute(POOL_ID, f"CREATE TABLE {table} (id INT, u UNIQUEIDENTIFIER)")
    await ms.execute_many(POOL_ID, f"INSERT INTO {table} VALUES (@P1, @P2)", [[1, U], [2, None]])
    df = await ms.query(POOL_ID, f"SELECT id, u FROM {table} WHERE u = @P1", [U])
    assert df.rows() == [(1, str(U))]
    df = await ms.query(POOL_ID, "SELECT @P1 AS u", [U])
    assert df.item().lower() == str(U)


@pytest.mark.parametrize("value,dtype,want", [
    ({"a": [1, 2], "é": None}, pl.String(), '{"a": [1, 2], "é": null}'),
    (ipaddress.ip_address("10.0.0.1"), pl.String(), "10.0.0.1"),
    (ipaddress.ip_network("fe80::/10"), pl.String(), "fe80::/10"),
    (Color.RED, pl.String(), "red"),
    (np.int16(-5), pl.Int64(), -5),
    (np.float64(0.25), pl.Float64(), 0.25),
    (bytearray(b"a\x00"), pl.Binary(), b"a\x00"),
])
async def test_value_binds_as_documented(ms: Any, value: Any, dtype: Any, want: Any) -> None:
    df = await ms.query(POOL_ID, "SELECT @P1 AS v", [value])
    assert df.schema["v"] == dtype
    assert df.item() == want


@pytest.mark.parametrize("value,message", [
    (dt.timedelta(seconds=5), "no type for a duration"),
    ([1, 2], "no type for an array"),
    ("\ud800", "surrogates"),
    (object(), "'object'"),
])
async def test_values_sql_server_has_no_type_for(ms: Any, value: Any, message: str) -> None:
    with pytest.raises(ProgrammingError, match=message) as info:
        await ms.query(POOL_ID, "SELECT @P1 AS a, @P2 AS v", ["ok", value])
    assert "parameter 2" in str(info.value)
    await assert_healthy(ms)
