"""pool.metrics() and pool.prometheus_text() on SQLite: known work gives
exact counters and histogram counts, in both APIs, and the text format
parses with the real Prometheus parser whatever the pool is called."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from db_pool import DatabasePool, ProgrammingError, QueryTimeout, SyncDatabasePool
from metrics_checks import check_round_trip, parsed, value

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def total(snap: dict[str, Any], name: str) -> float:
    return sum(s["value"] for s in snap[name])


async def test_known_work_gives_exact_metrics(api: Any) -> None:
    await api.create_pool("m", url="sqlite:///:memory:", min_size=1, max_size=1)
    await api.execute("m", "CREATE TABLE t(x)")
    await api.execute("m", "INSERT INTO t VALUES (1), (2), (3)")
    n, errors, timeouts = 5, 2, 2
    for _ in range(n):
        assert (await api.query("m", "SELECT x FROM t")).height == 3
    await api.query("m", "SELECT x FROM t WHERE x > 9")  # 0 rows
    for _ in range(errors):
        with pytest.raises(ProgrammingError):
            await api.query("m", "SELECT nope FROM t")
    for _ in range(timeouts):
        with pytest.raises(QueryTimeout):
            await api.query("m", ENDLESS, timeout=0.05)

    snap = api.metrics("m")
    assert value(snap, "dbpool_requests_total", pool="m", outcome="ok") == 2 + n + 1
    assert value(snap, "dbpool_requests_total", outcome="server") == errors
    assert value(snap, "dbpool_requests_total", outcome="query_timeout") == timeouts
    finished = 2 + n + 1 + errors + timeouts
    assert total(snap, "dbpool_requests_total") == finished
    wait = value(snap, "db_client_connection_wait_time_seconds", pool="m")
    assert wait["count"] == finished and wait["buckets"][-1] == (float("inf"), finished)
    assert value(snap, "db_client_connection_use_time_seconds")["count"] == finished
    rows = value(snap, "dbpool_result_rows")
    assert rows["count"] == n + 1 and rows["sum"] == 3 * n
    assert dict(rows["buckets"])[0.0] == 1 and dict(rows["buckets"])[10.0] == n + 1
    size = value(snap, "dbpool_result_bytes")
    assert size["count"] == n + 1 and size["sum"] > 0  # the empty result has a schema only
    assert dict(size["buckets"])[0.0] >= 1 and size["buckets"][-1] == (float("inf"), n + 1)
    assert value(snap, "dbpool_connections_acquired_total") == finished
    opened = value(snap, "dbpool_connections_opened_total")
    closed = total(snap, "dbpool_connections_closed_total")
    assert opened - closed == 1  # max_size 1: one connection open at the end
    assert value(snap, "db_client_connection_create_time_seconds")["count"] == opened
    assert value(snap, "db_client_connection_count", state="idle") == 1
    assert value(snap, "db_client_connection_count", state="used") == 0
    assert value(snap, "db_client_connection_max") == 1
    assert value(snap, "db_client_connection_pending_requests") == 0
    assert value(snap, "db_client_connection_timeouts_total") == 0
    assert value(snap, "dbpool_endpoint_health", health="up") == 1
    ep = snap["db_client_connection_count"][0]["labels"]
    assert ep["engine"] == "sqlite" and ep["endpoint"] == ":memory:" and ep["role"] == "unknown"

    # stats() is computed from the same counters
    stats = api.stats("m")
    assert stats["requests"] == finished and stats["query_timeouts"] == timeouts
    assert stats["errors"] == errors + timeouts and stats["acquired"] == finished
    assert abs(stats["acquire_wait_ms_total"] - wait["sum"] * 1000) < 1e-6
    check_round_trip(snap, api.prometheus_text("m"))


async def test_acquire_timeouts_and_waiters_are_counted(apool: DatabasePool) -> None:
    await apool.create_pool("m", url="sqlite:///:memory:", max_size=1, acquire_timeout=0.1)
    hog = asyncio.ensure_future(apool.query("m", ENDLESS, timeout=1.0))
    await asyncio.sleep(0.05)
    waiter = asyncio.ensure_future(apool.query("m", "SELECT 1"))
    await asyncio.sleep(0.02)
    snap = apool.metrics("m")
    assert value(snap, "db_client_connection_pending_requests") == 1
    assert value(snap, "db_client_connection_count", state="used") == 1
    with pytest.raises(Exception) as raised:
        await waiter
    assert type(raised.value).__name__ == "PoolTimeout"
    hog.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hog
    for _ in range(100):
        snap = apool.metrics("m")
        if value(snap, "db_client_connection_count", state="used") == 0:
            break
        await asyncio.sleep(0.01)
    assert value(snap, "db_client_connection_timeouts_total") == 1
    assert value(snap, "dbpool_requests_total", outcome="timeout") == 1
    assert value(snap, "dbpool_requests_total", outcome="cancelled") == 1
    assert value(snap, "dbpool_requests_total", outcome="ok") == 0
    # the waiter never got a connection: one checkout, one wait observed
    assert value(snap, "db_client_connection_wait_time_seconds")["count"] == 1
    assert value(snap, "db_client_connection_use_time_seconds")["count"] == 1


def test_label_values_are_escaped(spool: SyncDatabasePool) -> None:
    weird = 'we"ird\\po\nol'
    spool.create_pool(weird, url="sqlite:///:memory:")
    spool.create_pool("plain", url="sqlite:///:memory:")
    spool.query(weird, "SELECT 1")
    text = spool.prometheus_text()
    samples = parsed(text)
    pools = {dict(labels)["pool"] for _, labels in samples}
    assert pools == {weird, "plain"}
    ok = [v for (name, labels), v in samples.items()
          if name == "dbpool_requests_total" and dict(labels) == {
              "pool": weird, "engine": "sqlite", "outcome": "ok"}]
    assert ok == [1]
    check_round_trip(spool.metrics(), text)
    # one pool alone, and a pool that does not exist
    assert {s["labels"]["pool"] for s in spool.metrics("plain")["dbpool_requests_total"]} == {
        "plain"}
    with pytest.raises(KeyError):
        spool.metrics("nope")


def test_bulk_rows_in_and_out(spool: SyncDatabasePool) -> None:
    import polars as pl

    spool.create_pool("m", url="sqlite:///:memory:", max_size=1)
    spool.execute("m", "CREATE TABLE t(x INTEGER)")
    spool.write_frame("m", pl.DataFrame({"x": list(range(250))}), "t")
    got = sum(f.height for f in spool.stream("m", "SELECT x FROM t", batch_rows=100))
    assert got == 250
    snap = spool.metrics("m")
    assert value(snap, "dbpool_bulk_rows_total", direction="in") == 250
    assert value(snap, "dbpool_bulk_rows_total", direction="out") == 250
