"""The server going away: restarted while the pool is idle, stopped in the
middle of a statement, down when a statement arrives. Errors must be clean
OperationalErrors and the pool must recover once the server is back.
(Skipped against an external server from DB_POOL_TEST_PG_DSN.)"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from db_pool import DatabasePool, OperationalError, SyncDatabasePool

from .conftest import POOL_ID, assert_healthy, pool_kwargs, wait_idle


@pytest.fixture
def server(private_server: Any) -> Any:
    return private_server


async def test_restart_while_idle_with_validation(api: Any, server: Any, schema: str) -> None:
    """validate_after=0 pings every connection before use, so an idle
    connection broken by a restart is replaced without the caller noticing."""
    await api.create_pool(POOL_ID, **pool_kwargs(server, schema), min_size=2, max_size=2,
                          validate_after=0)
    await asyncio.gather(*(api.query(POOL_ID, "SELECT pg_sleep(0.05) AS s") for _ in range(2)))
    pids = set()
    server.restart("fast")
    for _ in range(4):
        pids.add((await api.query(POOL_ID, "SELECT pg_backend_pid() AS p")).item())
    stats = api.stats(POOL_ID)
    assert stats["validation_failures"] >= 1, stats
    assert stats["in_use"] == 0
    await assert_healthy(api)


async def test_restart_while_idle_default_validation(api: Any, server: Any, schema: str) -> None:
    """With the default validate_after (5 s) a connection idle for less is not
    pinged, yet a restart costs no error: the server's goodbye is seen on the
    idle socket without a round trip, and a read that still meets a dead
    connection before any answer runs once more on a new one."""
    await api.create_pool(POOL_ID, **pool_kwargs(server, schema), min_size=4, max_size=4)
    await asyncio.gather(*(api.query(POOL_ID, "SELECT pg_sleep(0.05) AS s") for _ in range(4)))
    server.restart("fast")
    for _ in range(20):
        assert (await api.query(POOL_ID, "SELECT 1 AS one")).item() == 1
    await assert_healthy(api)


async def test_restart_storm_costs_no_errors(apg: DatabasePool, server: Any, schema: str) -> None:
    """Five restarts under 20 concurrent readers: the queries issued once the
    server accepts connections again see no error at all, and stats() shows
    the endpoint down while it refused connections."""
    await apg.create_pool("r", **pool_kwargs(server, schema), min_size=5, max_size=10)
    stop = False
    results: list[tuple[float, float, BaseException | None]] = []  # issued, ended, error
    saw_down: list[dict[str, Any]] = []

    async def reader() -> None:
        while not stop:
            issued = time.monotonic()
            try:
                await apg.query("r", "SELECT 1 AS one")
                results.append((issued, time.monotonic(), None))
            except OperationalError as exc:
                results.append((issued, time.monotonic(), exc))
                (ep,) = apg.stats("r")["endpoints"]
                if ep["health"] == "down":
                    saw_down.append(ep)
                await asyncio.sleep(0.01)

    readers = [asyncio.ensure_future(reader()) for _ in range(20)]
    up_windows = []  # from when the server accepted connections to its next stop
    back = time.monotonic()
    for _ in range(5):
        await asyncio.sleep(0.3)
        up_windows.append((back, time.monotonic()))
        await asyncio.to_thread(server.restart, "fast")
        back = time.monotonic()
    await asyncio.sleep(0.3)
    stop = True
    up_windows.append((back, time.monotonic()))
    await asyncio.gather(*readers)
    # only queries that met the server down may fail: none issued and ended
    # while it was up, however stale their connection
    up_errors = [e for issued, ended, e in results if e is not None and any(
        start <= issued and ended <= end for start, end in up_windows)]
    assert not up_errors, up_errors[:3]
    up_queries = sum(1 for issued, ended, _ in results
                     if any(start <= issued and ended <= end for start, end in up_windows))
    assert up_queries > 100
    failed = sum(e is not None for _, _, e in results)
    print(f"fault: restart storm: {len(results)} queries, {failed} failed while the server "
          f"was down, 0 of {up_queries} while it was up")
    if any(e is not None for _, _, e in results):  # it was seen down with its reason
        assert saw_down and saw_down[0]["last_error"] and saw_down[0]["health_since"] > 0
    await assert_healthy(apg, "r")


@pytest.mark.parametrize("mode", ["immediate", "fast"])
async def test_stop_during_a_statement_async(apg: DatabasePool, server: Any, schema: str, mode: str) -> None:
    await apg.create_pool("r", **pool_kwargs(server, schema), max_size=2, validate_after=0)
    task = asyncio.ensure_future(apg.query("r", "SELECT pg_sleep(10) AS s"))
    await asyncio.sleep(0.3)
    assert apg.stats("r")["in_use"] == 1
    start = time.monotonic()
    await asyncio.to_thread(server.stop, mode)
    with pytest.raises(OperationalError) as info:
        await asyncio.wait_for(task, 5)
    assert time.monotonic() - start < 5
    assert info.value.category == "network", info.value
    await wait_idle(apg, "r", timeout=5)
    # while the server is down: a clean, quick failure
    start = time.monotonic()
    with pytest.raises(OperationalError):
        await apg.query("r", "SELECT 1 AS one")
    assert time.monotonic() - start < 5
    await asyncio.to_thread(server.start)
    assert (await apg.query("r", "SELECT 1 AS one")).item() == 1
    await assert_healthy(apg, "r")


def test_stop_during_a_statement_sync(spg: SyncDatabasePool, server: Any, schema: str) -> None:
    spg.create_pool("r", **pool_kwargs(server, schema), max_size=2, validate_after=0)
    spg.query("r", "SELECT 1 AS one")
    timer = threading.Timer(0.3, server.stop, kwargs={"mode": "immediate"})
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(OperationalError) as info:
            spg.query("r", "SELECT pg_sleep(10) AS s")
    finally:
        timer.join()
    assert time.monotonic() - start < 5
    assert info.value.category == "network"
    server.start()
    assert spg.query("r", "SELECT 1 AS one").item() == 1
    assert spg.stats("r")["in_use"] == 0


async def test_stop_during_a_transaction(apg: DatabasePool, server: Any, schema: str, admin: Any) -> None:
    admin.execute("CREATE TABLE t (a int4)")
    await apg.create_pool("r", **pool_kwargs(server, schema), max_size=2, validate_after=0)
    with pytest.raises(OperationalError):
        async with apg.transaction("r") as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
            await asyncio.to_thread(server.stop, "fast")
            await tx.execute("INSERT INTO t VALUES (2)")
    await asyncio.to_thread(server.start)
    await wait_idle(apg, "r")
    async with apg.transaction("r") as tx:
        await tx.execute("INSERT INTO t VALUES (3)")
    df = await apg.query("r", "SELECT a FROM t ORDER BY a")
    assert df["a"].to_list() == [3]
    await assert_healthy(apg, "r")


async def test_stop_during_a_stream(apg: DatabasePool, server: Any, schema: str) -> None:
    await apg.create_pool("r", **pool_kwargs(server, schema), max_size=2, validate_after=0)
    rows = 0
    with pytest.raises(OperationalError):
        async for batch in apg.stream("r", "SELECT generate_series(1, 10000000) AS g",
                                      batch_rows=100_000):
            rows += batch.height
            if rows == 200_000:
                await asyncio.to_thread(server.stop, "immediate")
    assert rows >= 200_000
    await asyncio.to_thread(server.start)
    await wait_idle(apg, "r")
    await assert_healthy(apg, "r")


async def test_backend_terminated(apg: DatabasePool, admin: Any, schema: str, pg_server: Any) -> None:
    """pg_terminate_backend on an idle pooled connection (as an admin or an
    idle-session timeout would): caught by validation, or one clean error."""
    await apg.create_pool("r", **pool_kwargs(pg_server, schema), max_size=1, validate_after=0)
    pid = (await apg.query("r", "SELECT pg_backend_pid() AS p")).item()
    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.1)
    new_pid = (await apg.query("r", "SELECT pg_backend_pid() AS p")).item()
    assert new_pid != pid
    assert apg.stats("r")["validation_failures"] == 1
    await assert_healthy(apg, "r")
