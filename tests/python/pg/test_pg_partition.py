"""Partitioned reads on PostgreSQL: every kind of partition column, through
COPY and the extended protocol, equal the unpartitioned read; the
partitions run at once; a failing partition, a deadline or a cancelled
task stops the others on the server and leaves the pool whole."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import DatabasePool, DataError, ProgrammingError, QueryTimeout, SyncDatabasePool

from .conftest import POOL_ID, active_queries, assert_healthy, wait_idle, wait_no_active

COLUMNS = ("id int4, big int8, n numeric(12,2), f float8, r real, d date, ts timestamp, "
           "tz timestamptz, s text, b bool, u uuid, iv interval")


def same_rows(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.schema == b.schema
    assert a.height == b.height
    assert a.sort(pl.all(), nulls_last=True).equals(b.sort(pl.all(), nulls_last=True))


async def check(pool: Any, sql: str, params: Any = None, *, partitions: tuple[int, ...] = (2, 4),
                **options: Any) -> list[int]:
    """query() and stream() partitioned N ways equal the plain query (with
    COPY and without); returns how many statements each query() ran."""
    ran = []
    for copy in ("auto", False):
        whole = await pool.query(POOL_ID, sql, params, copy=copy)
        for n in partitions:
            before = pool.stats(POOL_ID)["requests"]
            same_rows(await pool.query(POOL_ID, sql, params, partitions=n, copy=copy, **options),
                      whole)
            ran.append(pool.stats(POOL_ID)["requests"] - before)
            batches = [b async for b in pool.stream(POOL_ID, sql, params, partitions=n,
                                                    batch_rows=97, copy=copy, **options)]
            assert all(0 < b.height <= 97 for b in batches)
            same_rows(pl.concat(batches) if batches else whole.clear(), whole)
    await wait_idle(pool)
    return ran


@pytest.fixture
def table(admin: Any) -> str:
    """t: 3000 rows, most keys in a narrow band (skewed), a gap with no
    rows, far outliers, and NULLs in every column."""
    admin.execute(f"CREATE TABLE t ({COLUMNS})")
    admin.execute(
        "INSERT INTO t SELECT k, k::int8 * 1000003, k / 4.0, k / 3.0, k / 8.0, "
        "date '2020-01-01' + k, timestamp '2020-01-01' + k * interval '1 hour 1 microsecond', "
        "timestamptz '2020-01-01 00:00+00' + k * interval '37 minutes', 'r' || k, k % 2 = 0, "
        "md5(k::text)::uuid, k * interval '1 second' "
        "FROM (SELECT CASE WHEN g <= 2500 THEN g % 50 WHEN g <= 2990 THEN 1000 + g "
        "ELSE 100000 + g END AS k FROM generate_series(1, 3000) g) s")
    admin.execute("INSERT INTO t (s) SELECT 'null' FROM generate_series(1, 7)")
    return "t"


@pytest.mark.parametrize("column", ["id", "big", "n", "f", "r", "d", "ts", "tz"])
async def test_each_kind_of_column(pg: Any, table: str, column: str) -> None:
    ran = await check(pg, "SELECT * FROM t", partition_on=column)
    assert ran == [4, 6, 4, 6]  # probe, MIN/MAX, then the partitions


async def test_more_partitions_than_rows_and_empty_ranges(pg: Any, admin: Any) -> None:
    admin.execute(f"CREATE TABLE t ({COLUMNS})")
    admin.execute("INSERT INTO t (id, d, s) VALUES (1, '2024-01-01', 'a'), "
                  "(1000, '2024-12-31', 'b'), (NULL, NULL, 'c')")
    await check(pg, "SELECT * FROM t", partition_on="id", partitions=(3, 16))
    await check(pg, "SELECT * FROM t", partition_on="d", partitions=(3, 16))


async def test_empty_result_and_all_null_column(pg: Any, table: str) -> None:
    assert await check(pg, "SELECT * FROM t WHERE false", partition_on="id",
                       partitions=(4,)) == [3, 3]
    assert await check(pg, "SELECT * FROM t WHERE id IS NULL", partition_on="id",
                       partitions=(4,)) == [3, 3]


async def test_parameters_and_statement_forms(pg: Any, table: str) -> None:
    await check(pg, "SELECT * FROM t WHERE id > $1 OR s = $2", [40, "null"], partition_on="d")
    await check(pg, "WITH x AS (SELECT id * 2 AS k, s FROM t) SELECT * FROM x;",
                partition_on="k")
    await check(pg, "SELECT id, s FROM t -- a comment", partition_on="id")
    await check(pg, "SELECT id + 0.5 AS k, s FROM t", partition_on="k")


async def test_partition_range_is_a_hint_that_drops_no_row(pg: Any, table: str) -> None:
    await check(pg, "SELECT * FROM t", partition_on="id", partition_range=(10, 20))
    await check(pg, "SELECT * FROM t", partition_on="n", partition_range=(Decimal("2.5"), 5))
    await check(pg, "SELECT * FROM t", partition_on="d",
                partition_range=(dt.date(2020, 1, 10), dt.date(2020, 1, 20)))
    utc = dt.timezone.utc
    await check(pg, "SELECT * FROM t", partition_on="tz",
                partition_range=(dt.datetime(2020, 1, 1, tzinfo=utc),
                                 dt.datetime(2020, 1, 1, 12, tzinfo=utc)))


async def test_rechunk(pg: Any) -> None:
    sql = "SELECT g AS id, g::text AS s FROM generate_series(1, 1000) g"
    chunked = await pg.query(POOL_ID, sql, partition_on="id", partitions=4)
    assert set(chunked.n_chunks("all")) == {4}  # each partition's frame, not copied
    whole = await pg.query(POOL_ID, sql, partition_on="id", partitions=4, rechunk=True)
    assert set(whole.n_chunks("all")) == {1}
    same_rows(whole, chunked)


@pytest.mark.parametrize("column,message", [
    ("s", "is String"), ("b", "is Boolean"), ("u", "is String"), ("iv", "is Duration"),
    ("nope", "not a column"), ("ID", "not a column"),
])
async def test_columns_that_cannot_be_split_are_refused(pg: Any, table: str, column: str,
                                                        message: str) -> None:
    before = pg.stats(POOL_ID)["requests"]
    with pytest.raises(ProgrammingError, match=message):
        await pg.query(POOL_ID, "SELECT * FROM t", partition_on=column, partitions=4)
    assert pg.stats(POOL_ID)["requests"] - before == 1  # the probe, no partition
    await assert_healthy(pg)


async def test_nan_needs_a_range(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE t (f float8)")
    admin.execute("INSERT INTO t SELECT g FROM generate_series(1, 100) g")
    admin.execute("INSERT INTO t VALUES ('NaN'), ('Infinity'), ('-Infinity'), (NULL)")
    with pytest.raises(DataError, match="partition_range"):
        await pg.query(POOL_ID, "SELECT * FROM t", partition_on="f", partitions=3)
    await check(pg, "SELECT * FROM t", partition_on="f", partition_range=(1, 100))


# ---- concurrency, deadlines, failures ----------------------------------------------------

# One row per key 1..4; each row takes a second: partition k reads key k.
SLOW = "SELECT k, pg_sleep({})::text AS z FROM generate_series(1, 4) k"


async def test_partitions_run_at_once(pg: Any) -> None:
    start = time.monotonic()
    df = await pg.query(POOL_ID, SLOW.format(1), partition_on="k", partitions=4,
                        partition_range=(1, 4))
    elapsed = time.monotonic() - start
    assert sorted(df["k"]) == [1, 2, 3, 4]
    assert elapsed < 2.5, elapsed  # one after the other: 4 s
    await assert_healthy(pg)


async def test_timeout_bounds_the_whole_call(pg: Any, admin: Any) -> None:
    start = time.monotonic()
    with pytest.raises(QueryTimeout):
        await pg.query(POOL_ID, SLOW.format(5), partition_on="k", partitions=4,
                       partition_range=(1, 4), timeout=0.5)
    assert time.monotonic() - start < 2.0
    await wait_no_active(admin, "dbp_part")
    await wait_idle(pg)
    await assert_healthy(pg)


async def test_a_failing_partition_stops_the_others(pg: Any, admin: Any) -> None:
    sql = ("SELECT k, CASE WHEN k = 3 THEN (1 / (k - 3))::text ELSE pg_sleep(5)::text END "
           "AS z FROM generate_series(1, 4) k")
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        await pg.query(POOL_ID, sql, partition_on="k", partitions=4, partition_range=(1, 4))
    assert info.value.sqlstate == "22012"
    assert time.monotonic() - start < 3.0
    await wait_no_active(admin, "dbp_part")
    with pytest.raises(DataError):
        async for _ in pg.stream(POOL_ID, sql, partition_on="k", partitions=4,
                                 partition_range=(1, 4)):
            pass
    await wait_no_active(admin, "dbp_part")
    await wait_idle(pg)
    await assert_healthy(pg)


async def test_cancelling_the_task_cancels_every_partition(apg: DatabasePool, admin: Any) -> None:
    task = asyncio.ensure_future(apg.query(POOL_ID, SLOW.format(30), partition_on="k",
                                           partitions=4, partition_range=(1, 4)))
    deadline = time.monotonic() + 5
    while len(active_queries(admin, "dbp_part")) < 4:
        assert time.monotonic() < deadline, "the four partitions never ran at once"
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_no_active(admin, "dbp_part")
    await wait_idle(apg)
    await assert_healthy(apg)


async def test_more_partitions_than_connections_wait_their_turn(pg: Any) -> None:
    # max_size=4: six one-second partitions take two rounds
    start = time.monotonic()
    df = await pg.query(POOL_ID, SLOW.format(1).replace("4)", "6)"), partition_on="k",
                        partitions=6, partition_range=(1, 6))
    assert sorted(df["k"]) == [1, 2, 3, 4, 5, 6]
    assert 1.9 < time.monotonic() - start < 4.5
    await assert_healthy(pg)


async def test_async_stream_interleaves_and_closes_early(apg: DatabasePool, table: str) -> None:
    stream = apg.stream(POOL_ID, "SELECT * FROM t", partition_on="id", partitions=4,
                        batch_rows=50)
    seen = 0
    async for batch in stream:
        seen += batch.height
        if seen >= 200:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_idle(apg)
    await assert_healthy(apg)


def test_sync_stream_interleaves_and_closes_early(spg: SyncDatabasePool, admin: Any) -> None:
    admin.execute("CREATE TABLE t (k int4, z text)")
    admin.execute("INSERT INTO t SELECT g, repeat('x', 10) FROM generate_series(1, 4000) g")
    stream = spg.stream(POOL_ID, "SELECT * FROM t", partition_on="k", partitions=4,
                        batch_rows=100)
    firsts = []
    for batch in stream:
        firsts.append(batch["k"][0] // 1000)
        if len(firsts) == 12:
            break
    stream.close()  # type: ignore[attr-defined]
    assert len(set(firsts)) > 1, firsts  # batches of several partitions, not one after the other
    deadline = time.monotonic() + 5
    while spg.stats(POOL_ID)["in_use"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert spg.query(POOL_ID, "SELECT count(*) AS n FROM t").item() == 4000
