"""Partitioned reads on MSSQL (the TDS test server, or a real SQL Server
from DB_POOL_TEST_MSSQL_DSN): every kind of partition column equals the
unpartitioned read, with positional and named parameters; bad columns are
refused before any partition runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import ProgrammingError

from .conftest import POOL_ID, assert_healthy, wait_idle

UTC = dt.timezone.utc


def same_rows(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.schema == b.schema
    assert a.height == b.height
    assert a.sort(pl.all(), nulls_last=True).equals(b.sort(pl.all(), nulls_last=True))


async def check(pool: Any, sql: str, params: Any = None, *, partitions: tuple[int, ...] = (2, 3),
                **options: Any) -> list[int]:
    whole = await pool.query(POOL_ID, sql, params)
    ran = []
    for n in partitions:
        before = pool.stats(POOL_ID)["requests"]
        same_rows(await pool.query(POOL_ID, sql, params, partitions=n, **options), whole)
        ran.append(pool.stats(POOL_ID)["requests"] - before)
        batches = [b async for b in pool.stream(POOL_ID, sql, params, partitions=n,
                                                batch_rows=9, **options)]
        assert all(0 < b.height <= 9 for b in batches)
        same_rows(pl.concat(batches) if batches else whole.clear(), whole)
    await wait_idle(pool)
    return ran


def row(k: int | None) -> tuple[Any, ...]:
    if k is None:
        return (None,) * 9 + ("null",)
    t = dt.datetime(2020, 1, 1) + dt.timedelta(hours=k, microseconds=k)
    return (k, k * 1_000_003, Decimal(k) / 4, k / 3, k / 8, t.date(), t, t.replace(tzinfo=UTC),
            k % 2 == 0, f"r{k}")


async def fill(pool: Any, table: str, keys: list[int | None]) -> None:
    await pool.execute(POOL_ID, f"CREATE TABLE {table} (id int, big bigint, n decimal(12,2), "
                                "f float, r real, d date, ts datetime2(7), tz datetimeoffset(7), "
                                "b bit, s nvarchar(20))")
    await pool.execute_many(POOL_ID, f"INSERT INTO {table} VALUES (@P1, @P2, @P3, @P4, @P5, @P6, "
                                     "@P7, @P8, @P9, @P10)", [row(k) for k in keys])


# skewed: most keys in a narrow band, a gap, outliers, NULLs
KEYS: list[int | None] = [k % 20 for k in range(150)] + list(range(500, 530)) + [9000, None, None]


@pytest.mark.parametrize("column", ["id", "big", "n", "f", "r", "d", "ts", "tz"])
async def test_each_kind_of_column(ms: Any, table: str, column: str) -> None:
    await fill(ms, table, KEYS)
    ran = await check(ms, f"SELECT * FROM {table}", partition_on=column)
    assert ran == [4, 5]


async def test_positional_and_named_parameters(ms: Any, table: str) -> None:
    await fill(ms, table, KEYS)
    await check(ms, f"SELECT * FROM {table} WHERE id > @P1 OR s = @P2", [5, "null"],
                partition_on="id")
    await check(ms, f"SELECT * FROM {table} WHERE id > @low OR s = @name",
                {"low": 5, "name": "null"}, partition_on="d")


async def test_partition_range_more_partitions_than_rows_and_empty(ms: Any, table: str) -> None:
    await fill(ms, table, [1, 2, 1000, None])
    sql = f"SELECT * FROM {table}"
    await check(ms, sql, partition_on="id", partitions=(4, 12))
    await check(ms, sql, partition_on="id", partition_range=(2, 3))
    await check(ms, sql, partition_on="ts", partition_range=(dt.datetime(2020, 1, 1, 1),
                                                              dt.datetime(2020, 1, 1, 3)))
    await check(ms, sql, partition_on="tz", partition_range=(
        dt.datetime(2020, 1, 1, 1, tzinfo=UTC), dt.datetime(2020, 1, 2, tzinfo=UTC)))
    await check(ms, sql, partition_on="d", partition_range=(dt.date(2020, 1, 1),
                                                             dt.date(2020, 3, 1)))
    assert await check(ms, sql + " WHERE 1 = 0", partition_on="id", partitions=(4,)) == [3]
    assert await check(ms, sql + " WHERE id IS NULL", partition_on="id", partitions=(4,)) == [3]


@pytest.mark.parametrize("column,message", [
    ("s", "is String"), ("b", "is Boolean"), ("nope", "not a column"),
])
async def test_columns_that_cannot_be_split_are_refused(ms: Any, table: str, column: str,
                                                        message: str) -> None:
    await fill(ms, table, KEYS)
    before = ms.stats(POOL_ID)["requests"]
    with pytest.raises(ProgrammingError, match=message):
        await ms.query(POOL_ID, f"SELECT * FROM {table}", partition_on=column, partitions=4)
    assert ms.stats(POOL_ID)["requests"] - before == 1
    await assert_healthy(ms)


async def test_refused_inside_a_transaction(ms: Any, table: str) -> None:
    await fill(ms, table, [1])
    async with ms.transaction(POOL_ID) as tx:
        with pytest.raises(ProgrammingError, match="transaction"):
            await tx.query(f"SELECT * FROM {table}", partition_on="id", partitions=2)
    await assert_healthy(ms)
