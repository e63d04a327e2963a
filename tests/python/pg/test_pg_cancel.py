"""Cancelling running statements and streams (the server-side backend must
stop, not just the client), and the prepared-statement cache."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from db_pool import DatabasePool, QueryCancelled, SyncDatabasePool

from .conftest import (
    POOL_ID,
    active_queries,
    assert_healthy,
    pool_kwargs,
    wait_idle,
    wait_no_active,
)

SLEEP = "pg_sleep(10)"

BIG_SERIES = 10_000_000
# generate_series in the select list streams (in FROM it is materialised first)
BIG_SQL = f"SELECT generate_series(1, {BIG_SERIES}) AS g, 'some text to make rows wider' AS t"


@pytest.mark.parametrize(
    "how",
    ["query-copy", "query-params", "query-no-copy", "execute", "execute-params"],
)
async def test_wait_for_cancels_the_server_statement(apg: DatabasePool, admin: Any, how: str) -> None:
    calls = {
        "query-copy": lambda: apg.query(POOL_ID, f"SELECT {SLEEP} AS s"),
        "query-params": lambda: apg.query(POOL_ID, "SELECT pg_sleep($1) AS s", [10]),
        "query-no-copy": lambda: apg.query(POOL_ID, f"SELECT {SLEEP} AS s", copy=False),
        "execute": lambda: apg.execute(POOL_ID, f"SELECT {SLEEP}"),
        "execute-params": lambda: apg.execute(POOL_ID, "SELECT pg_sleep($1)", [10]),
    }
    before = apg.stats(POOL_ID)["cancelled"]
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(calls[how](), 0.3)
    assert time.monotonic() - start < 2
    await wait_no_active(admin, "pg_sleep", timeout=2)
    assert time.monotonic() - start < 2
    stats = await wait_idle(apg, timeout=2)
    assert stats["cancelled"] > before
    assert stats["in_use"] == 0
    await assert_healthy(apg)


async def test_task_cancel_inside_a_transaction(apg: DatabasePool, admin: Any) -> None:
    admin.execute("CREATE TABLE c (a int4)")

    async def work() -> None:
        async with apg.transaction(POOL_ID) as tx:
            await tx.execute("INSERT INTO c VALUES (1)")
            await tx.query(f"SELECT {SLEEP} AS s")

    task = asyncio.ensure_future(work())
    await asyncio.sleep(0.3)
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_no_active(admin, "pg_sleep", timeout=2)
    await wait_idle(apg, timeout=2)
    assert time.monotonic() - start < 2
    assert admin.execute("SELECT count(*) FROM c").fetchone() == (0,)
    await assert_healthy(apg)


async def test_many_cancelled_statements(apg: DatabasePool, admin: Any) -> None:
    """More statements than connections: running ones interrupted, waiting
    ones dropped, nothing left on the server."""
    tasks = [asyncio.ensure_future(apg.query(POOL_ID, "SELECT pg_sleep($1) AS s", [10]))
             for _ in range(8)]
    await asyncio.sleep(0.3)
    assert apg.stats(POOL_ID)["in_use"] == 4
    for t in tasks:
        t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    await wait_no_active(admin, "pg_sleep", timeout=3)
    await wait_idle(apg, timeout=3)
    await assert_healthy(apg)


async def test_cancel_does_not_hit_the_next_statement(
    apg: DatabasePool, pg_server: Any, schema: str
) -> None:
    """The cancel request is sent on a side connection; a late one must not
    cancel whatever runs next on the same backend (one connection here)."""
    await apg.create_pool("one", **pool_kwargs(pg_server, schema), max_size=1)
    for i in range(20):
        # cancels that land while the statement runs, and ones that race its end
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(apg.query("one", "SELECT pg_sleep(0.05) AS s"), 0.02 + i * 0.003)
        df = await apg.query("one", "SELECT pg_sleep(0.02) AS s, 1 AS one")
        assert df["one"].to_list() == [1]
    await assert_healthy(apg, "one")


# ---- streams ----------------------------------------------------------------------------


@pytest.mark.parametrize("copy", ["auto", False])
async def test_leaving_a_big_stream_early(apg: DatabasePool, admin: Any, copy: Any) -> None:
    start = time.monotonic()
    seen = 0
    stream = apg.stream(POOL_ID, BIG_SQL, batch_rows=10_000, copy=copy)
    async for batch in stream:
        seen += batch.height
        if seen >= 30_000:
            break
    await stream.aclose()
    assert seen == 30_000
    await wait_no_active(admin, "generate_series", timeout=2)
    await wait_idle(apg, timeout=2)
    assert time.monotonic() - start < 3
    await assert_healthy(apg)


@pytest.mark.parametrize("copy", ["auto", False])
async def test_wait_for_on_a_big_stream(apg: DatabasePool, admin: Any, copy: Any) -> None:
    rows = 0

    async def consume() -> None:
        nonlocal rows
        async for batch in apg.stream(POOL_ID, BIG_SQL, batch_rows=50_000, copy=copy):
            rows += batch.height

    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(consume(), 0.5)
    assert 0 < rows < BIG_SERIES
    await wait_no_active(admin, "generate_series", timeout=2)
    await wait_idle(apg, timeout=2)
    assert time.monotonic() - start < 3
    await assert_healthy(apg)


def test_sync_stream_closed_early(spg: SyncDatabasePool, admin: Any) -> None:
    start = time.monotonic()
    it = spg.stream(POOL_ID, BIG_SQL, batch_rows=10_000)
    first = next(it)
    assert first.height == 10_000
    assert first["g"][0] == 1
    it.close()
    assert spg.stats(POOL_ID)["in_use"] == 0
    deadline = time.monotonic() + 2
    while active_queries(admin, "generate_series") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not active_queries(admin, "generate_series")
    assert time.monotonic() - start < 3
    assert spg.query(POOL_ID, "SELECT 1 AS one").item() == 1


async def test_wait_for_on_a_big_query(apg: DatabasePool, admin: Any) -> None:
    """query() of 10M rows cancelled while rows are arriving: the worker must
    notice the cancel while it decodes, not only when the socket is idle."""
    for copy in ("auto", False):
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(apg.query(POOL_ID, BIG_SQL, copy=copy), 0.5)
        await wait_idle(apg, timeout=3)
        await wait_no_active(admin, "generate_series", timeout=1)
        assert time.monotonic() - start < 3.5, copy
    await assert_healthy(apg)


async def test_cancel_before_it_runs(apg: DatabasePool) -> None:
    """A request cancelled while it waits for a connection never runs."""
    blockers = [asyncio.ensure_future(apg.query(POOL_ID, "SELECT pg_sleep(0.5) AS s"))
                for _ in range(4)]
    await asyncio.sleep(0.1)
    waiting = asyncio.ensure_future(apg.execute(POOL_ID, "SELECT 1"))
    await asyncio.sleep(0.05)
    assert apg.stats(POOL_ID)["waiting"] == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.gather(*blockers)
    await assert_healthy(apg)


async def test_query_cancelled_error_class(apg: DatabasePool, pg_server: Any, schema: str) -> None:
    """pg_cancel_backend from elsewhere: QueryCancelled with 57014."""
    await apg.create_pool("one", **pool_kwargs(pg_server, schema), max_size=1)
    pid = (await apg.query("one", "SELECT pg_backend_pid() AS p")).item()
    task = asyncio.ensure_future(apg.query("one", f"SELECT {SLEEP} AS s"))
    await asyncio.sleep(0.3)
    assert (await apg.query(POOL_ID, "SELECT pg_cancel_backend($1) AS ok", [pid])).item() is True
    with pytest.raises(QueryCancelled) as info:
        await task
    assert info.value.sqlstate == "57014"
    assert info.value.category == "cancelled"
    await assert_healthy(apg, "one")


# ---- the statement cache ----------------------------------------------------------------


STATEMENTS = [
    ("SELECT $1::int4 + 1 AS v", lambda i: i + 1),
    ("SELECT $1::int4 * 2 AS v", lambda i: i * 2),
    ("SELECT $1::int4 - 3 AS v", lambda i: i - 3),
    ("SELECT ($1::int4)::text AS v", lambda i: str(i)),
    ("SELECT $1::int4 % 5 AS v", lambda i: i % 5),
]


async def _prepared(pool: Any, pool_id: str) -> list[str]:
    df = await pool.query(pool_id, "SELECT name FROM pg_prepared_statements ORDER BY name")
    return df["name"].to_list()


@pytest.mark.parametrize("size", [0, 1, 2, 100])
async def test_statement_cache_sizes(api: Any, pg_server: Any, schema: str, size: int) -> None:
    await api.create_pool("c", **pool_kwargs(pg_server, schema), max_size=1,
                          statement_cache_size=size)
    for round_ in range(4):
        for k, (sql, want) in enumerate(STATEMENTS):
            i = round_ * 10 + k
            assert (await api.query("c", sql, [i])).item() == want(i)
            assert (await api.query("c", sql.replace("$1::int4", str(i)))).item() == want(i)
        names = await _prepared(api, "c")
        # never more statements on the server than the cache holds
        assert len(names) <= size, names
        assert all(n.startswith("dbp_") for n in names)
    # execute and execute_many share the cache
    assert await api.execute("c", "SELECT $1::int4", [1]) == 1
    assert await api.execute_many("c", "SELECT $1::int4", [[1], [2]]) >= 0
    assert len(await _prepared(api, "c")) <= size
    await assert_healthy(api, "c")


async def test_cancel_while_decoding_does_not_cancel_the_next_statement(
    apg: DatabasePool, admin: Any, pg_server: Any, schema: str
) -> None:
    await apg.create_pool("one", **pool_kwargs(pg_server, schema), max_size=1)
    pid = (await apg.query("one", "SELECT pg_backend_pid() AS p")).item()
    sql = "SELECT g, g::text AS t, g::float8 AS f FROM generate_series(1, 1000000) g"
    for delay in (0.02, 0.05, 0.1, 0.05):
        task = asyncio.ensure_future(apg.query("one", sql, copy=False))
        # the server has sent every row once its backend is idle again; the
        # worker is then still reading and decoding them
        deadline = time.monotonic() + 10
        seen_active = False
        while not task.done() and time.monotonic() < deadline:
            row = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            seen_active = seen_active or row[0] == "active"
            if seen_active and row[0] == "idle":
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await wait_idle(apg, "one", timeout=5)
        # another caller's statement on the same (only) connection
        df = await apg.query("one", "SELECT pg_sleep(0.05) AS s, 1 AS one")
        assert df["one"].to_list() == [1]


@pytest.mark.parametrize("reset", ["DISCARD ALL", "DEALLOCATE ALL"])
async def test_statement_cache_after_discard_all(api: Any, pg_server: Any, schema: str,
                                                 reset: str) -> None:
    await api.create_pool("c", **pool_kwargs(pg_server, schema), max_size=1)
    assert (await api.query("c", "SELECT $1::int4 AS a", [1])).item() == 1
    await api.execute("c", reset)
    for i in range(3):
        assert (await api.query("c", "SELECT $1::int4 AS a", [i])).item() == i
