"""Partitioned reads on SQLite (query and stream, both APIs): the rows equal
the unpartitioned read's whatever the data looks like, and bad input is
refused before any partition runs. PostgreSQL and MSSQL: pg/ and mssql/."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import DatabasePool, DataError, ProgrammingError, SyncDatabasePool

from conftest import assert_healthy, wait_idle, wait_idle_sync

SELECT = "SELECT * FROM t"


def same_rows(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Equal as multisets of rows (partitions come back in any order)."""
    assert a.schema == b.schema
    assert a.height == b.height
    assert a.sort(pl.all(), nulls_last=True).equals(b.sort(pl.all(), nulls_last=True))


async def requests(pool: Any) -> int:
    return int(pool.stats("db")["requests"])


async def check(pool: Any, sql: str, params: Any = None, *, partitions: tuple[int, ...] = (2, 3, 4),
                **options: Any) -> list[int]:
    """query() and stream() partitioned N ways equal the plain query;
    returns how many statements each query() ran (probe, MIN/MAX, partitions)."""
    whole = await pool.query("db", sql, params)
    ran = []
    for n in partitions:
        before = await requests(pool)
        same_rows(await pool.query("db", sql, params, partitions=n, **options), whole)
        ran.append(await requests(pool) - before)
        batches = [b async for b in pool.stream("db", sql, params, partitions=n, batch_rows=7,
                                                **options)]
        assert all(0 < b.height <= 7 for b in batches)
        # SQLite: an expression NULL in a whole batch is Null there (docs/sqlite.md)
        same_rows(pl.concat(batches, how="vertical_relaxed") if batches else whole.clear(), whole)
    await wait_idle(pool, "db")
    return ran


async def fill(pool: Any, rows: list[tuple[Any, ...]]) -> None:
    await pool.execute("db", "CREATE TABLE t (id INTEGER, d DATE, ts DATETIME, tz TIMESTAMPTZ, "
                             "f REAL, n DECIMAL(10,2), s TEXT)")
    await pool.execute_many("db", "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def row(i: int | None, day: int = 0) -> tuple[Any, ...]:
    """A row keyed by i; its other columns follow i (NULL where i is NULL)."""
    if i is None:
        return (None, None, None, None, None, None, "null")
    base = dt.datetime(2024, 1, 1) + dt.timedelta(days=day or i, seconds=i, microseconds=i)
    return (i, base.date(), base, base.replace(tzinfo=dt.timezone.utc), i / 4,
            Decimal(i) / 4, f"r{i}")


@pytest.mark.parametrize("column", ["id", "d", "ts", "tz", "f", "n"])
async def test_each_kind_of_column_with_nulls(mem: Any, column: str) -> None:
    await fill(mem, [row(i) for i in range(1, 60)] + [row(None)] * 5)
    ran = await check(mem, SELECT, partition_on=column)
    assert ran == [4, 5, 6]  # the probe, MIN/MAX, then one statement per partition


async def test_skewed_values(mem: Any) -> None:
    # almost every row in the first range, a few far away
    await fill(mem, [row(i % 3) for i in range(200)] + [row(10**6), row(10**6 + 1), row(None)])
    await check(mem, SELECT, partition_on="id", partitions=(2, 4, 8))
    await check(mem, SELECT, partition_on="f", partitions=(2, 4))


async def test_empty_ranges_and_more_partitions_than_rows(mem: Any) -> None:
    await fill(mem, [row(1), row(2), row(100), row(None)])  # the middle ranges are empty
    await check(mem, SELECT, partition_on="id", partitions=(3, 10, 50))
    await check(mem, SELECT, partition_on="d", partitions=(3, 10, 50))


async def test_fewer_distinct_values_than_partitions_runs_fewer_statements(mem: Any) -> None:
    await fill(mem, [row(i) for i in (5, 6, 6, 7)])
    assert await check(mem, SELECT, partition_on="id", partitions=(8,)) == [2 + 3]


async def test_empty_result_and_all_null_column(mem: Any) -> None:
    await fill(mem, [])
    # an empty result: the plain statement, once
    assert await check(mem, SELECT, partition_on="id", partitions=(4,)) == [3]
    await mem.execute_many("db", "INSERT INTO t (s) VALUES (?)", [("a",), ("b",)])
    assert await check(mem, SELECT, partition_on="id", partitions=(4,)) == [3]
    assert (await mem.query("db", SELECT, partition_on="id", partitions=4)).height == 2


async def test_one_partition_is_the_plain_query(mem: Any) -> None:
    await fill(mem, [row(i) for i in range(10)])
    assert await check(mem, SELECT, partition_on="id", partitions=(1,)) == [2]  # probe + query


async def test_partition_range_is_a_hint_that_drops_no_row(mem: Any) -> None:
    await fill(mem, [row(i) for i in range(1, 101)] + [row(None)])
    for r in [(40, 60), (0, 1000), (50, 50), (-10, -5)]:
        await check(mem, SELECT, partition_on="id", partitions=(2, 4), partition_range=r)
    await check(mem, SELECT, partition_on="f", partition_range=(3, 7.5))
    await check(mem, SELECT, partition_on="n", partition_range=(Decimal("1.5"), 2))
    await check(mem, SELECT, partition_on="d",
                partition_range=(dt.date(2024, 2, 1), dt.date(2024, 2, 10)))
    await check(mem, SELECT, partition_on="ts",
                partition_range=(dt.datetime(2024, 2, 1), dt.datetime(2024, 2, 2)))
    utc = dt.timezone.utc
    await check(mem, SELECT, partition_on="tz", partition_range=(
        dt.datetime(2024, 2, 1, tzinfo=utc), dt.datetime(2024, 2, 2, 12, tzinfo=utc)))
    before = await requests(mem)
    await mem.query("db", SELECT, partition_on="id", partitions=4, partition_range=(1, 100))
    assert await requests(mem) - before == 1 + 4  # no MIN/MAX look-up


async def test_positional_and_named_parameters(mem: Any) -> None:
    await fill(mem, [row(i) for i in range(1, 80)] + [row(None)])
    await check(mem, "SELECT * FROM t WHERE id > ? OR s = ?", [10, "null"], partition_on="id")
    await check(mem, "SELECT * FROM t WHERE id > :low OR s = :name", {"low": 10, "name": "null"},
                partition_on="d")
    await check(mem, "SELECT * FROM t WHERE id BETWEEN ?2 AND ?1", [50, 20], partition_on="ts")


async def test_statement_forms(mem: Any) -> None:
    await fill(mem, [row(i) for i in range(1, 40)])
    await check(mem, "SELECT id, s FROM t;  \n", partition_on="id")
    await check(mem, "SELECT id, s FROM t -- the ids", partition_on="id")
    await check(mem, "WITH x AS (SELECT id * 2 AS k, s FROM t) SELECT * FROM x", partition_on="k")
    # an expression column without a declared type: MIN/MAX's values decide
    await check(mem, "SELECT id + 0.5 AS k, s FROM t", partition_on="k")


async def test_expression_columns_null_in_some_partition(mem: Any) -> None:
    """A SQLite expression has no declared type: a partition where it is
    NULL in every row reads it as Null, the others as Int64."""
    await fill(mem, [row(i) for i in range(1, 40)])
    await check(mem, "SELECT id, CASE WHEN id > 30 THEN id * 2 END AS late FROM t",
                partition_on="id", partitions=(2, 4))


async def test_nan_or_infinity_needs_a_range(mem: Any) -> None:
    await fill(mem, [row(i) for i in range(1, 20)])
    await mem.execute("db", "INSERT INTO t (id, f) VALUES (100, ?), (101, ?)",
                      [math.inf, -math.inf])
    with pytest.raises(DataError, match="partition_range"):
        await mem.query("db", SELECT, partition_on="f", partitions=2)
    await check(mem, SELECT, partition_on="f", partition_range=(0, 5))


async def test_rechunk(mem: Any) -> None:
    await fill(mem, [row(i) for i in range(1, 100)])
    chunked = await mem.query("db", SELECT, partition_on="id", partitions=3)
    assert chunked.n_chunks("all") == [3] * chunked.width  # each partition's frame kept
    whole = await mem.query("db", SELECT, partition_on="id", partitions=3, rechunk=True)
    assert whole.n_chunks("all") == [1] * whole.width
    same_rows(whole, chunked)


async def test_a_failing_partition_raises_its_error_and_leaks_nothing(mem: Any) -> None:
    await fill(mem, [row(i) for i in range(1, 100)])
    # a value the INTEGER column cannot hold exactly: only the last range reads it
    await mem.execute("db", "INSERT INTO t (id, s) VALUES (500, 'bad')")
    await mem.execute("db", "UPDATE t SET n = 'not a number' WHERE id = 500")
    with pytest.raises(DataError):
        await mem.query("db", SELECT)
    for n in (2, 4):
        with pytest.raises(DataError):
            await mem.query("db", SELECT, partition_on="id", partitions=n)
        with pytest.raises(DataError):
            async for _ in mem.stream("db", SELECT, partition_on="id", partitions=n):
                pass
    await wait_idle(mem, "db")
    await assert_healthy(mem, "db")


BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"partitions": 4}, "need partition_on"),
    ({"partition_range": (1, 2)}, "need partition_on"),
    ({"partition_on": "id"}, "needs partitions"),
    ({"partition_on": "id", "partitions": 0}, "at least 1"),
    ({"partition_on": "id", "partitions": -2}, "at least 1"),
    ({"partition_on": "id", "partitions": 2.0}, "integer"),
    ({"partition_on": "id", "partitions": True}, "integer"),
    ({"partition_on": "id", "partitions": "4"}, "integer"),
    ({"partition_on": "", "partitions": 2}, "column name"),
    ({"partition_on": 3, "partitions": 2}, "column name"),
    ({"partition_on": "id", "partitions": 2, "partition_range": (5, 1)}, "above"),
    ({"partition_on": "id", "partitions": 2, "partition_range": (1, 2, 3)}, "pair"),
    ({"partition_on": "id", "partitions": 2, "partition_range": 7}, "pair"),
    ({"partition_on": "id", "partitions": 2, "partition_range": ("a", "b")}, "numbers"),
    ({"partition_on": "id", "partitions": 2, "partition_range": (None, 5)}, "numbers"),
    ({"partition_on": "id", "partitions": 2, "partition_range": (True, 5)}, "numbers"),
    ({"partition_on": "id", "partitions": 2, "partition_range": (1, dt.date(2024, 1, 1))},
     "numbers"),
    ({"partition_on": "f", "partitions": 2, "partition_range": (0.0, math.nan)}, "finite"),
    ({"partition_on": "f", "partitions": 2, "partition_range": (0.0, math.inf)}, "finite"),
    ({"partition_on": "ts", "partitions": 2, "partition_range": (
        dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc))}, "naive"),
]


@pytest.mark.parametrize("options,message", BAD_OPTIONS)
async def test_bad_options_are_refused_before_anything_runs(mem: Any, options: dict[str, Any],
                                                            message: str) -> None:
    await fill(mem, [row(i) for i in range(1, 10)])
    before = await requests(mem)
    with pytest.raises(ProgrammingError, match=message):
        await mem.query("db", SELECT, **options)
    with pytest.raises(ProgrammingError, match=message):
        async for _ in mem.stream("db", SELECT, **options):
            pass
    assert await requests(mem) == before


BAD_COLUMNS: list[tuple[dict[str, Any], str]] = [
    ({"partition_on": "nope"}, "not a column of the query's result"),
    ({"partition_on": "ID"}, "not a column"),  # the result's name, exactly
    ({"partition_on": "s"}, "is String"),
    ({"partition_on": "b"}, "is Boolean"),
    ({"partition_on": "e"}, "is String"),
    ({"partition_on": "id", "partition_range": (dt.date(2024, 1, 1), dt.date(2024, 2, 1))},
     "is an integer column"),
    ({"partition_on": "id", "partition_range": (1.5, 3)}, "is an integer column"),
    ({"partition_on": "d", "partition_range": (1, 3)}, "is a date column"),
    ({"partition_on": "d", "partition_range": (dt.datetime(2024, 1, 1),
                                               dt.datetime(2024, 1, 2))}, "is a date column"),
    ({"partition_on": "ts", "partition_range": (dt.date(2024, 1, 1), dt.date(2024, 1, 2))},
     "is a datetime column"),
    ({"partition_on": "tz", "partition_range": (dt.datetime(2024, 1, 1),
                                                dt.datetime(2024, 1, 2))}, "aware"),
]


@pytest.mark.parametrize("options,message", BAD_COLUMNS)
async def test_bad_columns_are_refused_before_any_partition_runs(
        mem: Any, options: dict[str, Any], message: str) -> None:
    await fill(mem, [row(i) for i in range(1, 10)])
    await mem.execute("db", "ALTER TABLE t ADD COLUMN b BOOLEAN")
    await mem.execute("db", "UPDATE t SET b = id > 3")
    # e: an expression without a declared type; its MIN/MAX's values decide
    sql = "SELECT t.*, 'x' || id AS e FROM t"
    before = await requests(mem)
    with pytest.raises(ProgrammingError, match=message):
        await mem.query("db", sql, partitions=3, **options)
    assert await requests(mem) - before <= 2  # the look-ups, no partition
    await wait_idle(mem, "db")


async def test_refused_inside_a_transaction(mem: Any) -> None:
    await fill(mem, [row(1)])
    async with mem.transaction("db") as tx:
        with pytest.raises(ProgrammingError, match="transaction"):
            await tx.query(SELECT, partition_on="id", partitions=2)
        assert (await tx.query(SELECT)).height == 1


async def test_async_stream_closed_early_returns_every_connection(apool: DatabasePool) -> None:
    await apool.create_pool("db", url="sqlite:///:memory:", max_size=4)
    await fill(apool, [row(i) for i in range(1, 500)])
    stream = apool.stream("db", SELECT, partition_on="id", partitions=4, batch_rows=10)
    async for batch in stream:
        assert batch.height == 10
        break
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_idle(apool, "db")
    await assert_healthy(apool, "db")


def test_sync_stream_closed_early_returns_every_connection(spool: SyncDatabasePool) -> None:
    spool.create_pool("db", url="sqlite:///:memory:", max_size=4)
    spool.execute("db", "CREATE TABLE t (id INTEGER)")
    spool.execute_many("db", "INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    stream = spool.stream("db", SELECT, partition_on="id", partitions=4, batch_rows=10)
    for batch in stream:
        assert batch.height == 10
        assert spool.stats("db")["in_use"] == 4  # every partition's cursor is open
        break
    stream.close()  # type: ignore[attr-defined]
    wait_idle_sync(spool, "db")
    assert spool.query("db", "SELECT count(*) AS n FROM t").item() == 500


async def test_more_partitions_than_connections_queue(api: Any) -> None:
    await api.create_pool("db", url="sqlite:///:memory:", max_size=2)
    await fill(api, [row(i) for i in range(1, 200)])
    await check(api, SELECT, partition_on="id", partitions=(6,))
    await check(api, SELECT, partition_on="d", partitions=(5,))
