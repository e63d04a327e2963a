"""Metrics on a real PostgreSQL server: N queries, M errors, K statement
timeouts (pg_sleep past timeout=) and cancellations give exact counts, and
no label carries the password."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from db_pool import DatabasePool, ProgrammingError, QueryTimeout
from metrics_checks import check_round_trip, value

from .conftest import POOL_ID


async def test_pg_known_work_gives_exact_metrics(pg: Any, pg_server: Any) -> None:
    n, errors, timeouts = 6, 3, 2
    for i in range(n):
        assert (await pg.query(POOL_ID, "SELECT generate_series(1, $1) AS i", [i + 1])).height == i + 1
    for _ in range(errors):
        with pytest.raises(ProgrammingError):
            await pg.query(POOL_ID, "SELECT nope")
    for _ in range(timeouts):
        with pytest.raises(QueryTimeout):
            await pg.query(POOL_ID, "SELECT pg_sleep(5)", timeout=0.2)
    snap = pg.metrics(POOL_ID)
    finished = n + errors + timeouts
    assert value(snap, "dbpool_requests_total", outcome="ok") == n
    assert value(snap, "dbpool_requests_total", outcome="server") == errors
    assert value(snap, "dbpool_requests_total", outcome="query_timeout") == timeouts
    assert sum(s["value"] for s in snap["dbpool_requests_total"]) == finished
    assert value(snap, "db_client_connection_wait_time_seconds")["count"] == finished
    assert value(snap, "db_client_connection_use_time_seconds")["count"] == finished
    assert value(snap, "dbpool_connections_acquired_total") == finished
    rows = value(snap, "dbpool_result_rows")
    assert rows["count"] == n and rows["sum"] == n * (n + 1) / 2
    use = value(snap, "db_client_connection_use_time_seconds")
    assert use["sum"] >= timeouts * 0.2  # the timed-out statements held theirs that long
    opened = value(snap, "dbpool_connections_opened_total")
    assert value(snap, "db_client_connection_create_time_seconds")["count"] == opened >= 1
    labels = snap["db_client_connection_count"][0]["labels"]
    assert labels["engine"] == "postgresql" and str(pg_server.port) in labels["endpoint"]
    text = pg.prometheus_text(POOL_ID)
    assert pg_server.password not in text and pg_server.password not in repr(snap)
    check_round_trip(snap, text)


async def test_pg_cancellations_are_counted(apg: DatabasePool) -> None:
    tasks = [asyncio.ensure_future(apg.query(POOL_ID, "SELECT pg_sleep(5)")) for _ in range(3)]
    await asyncio.sleep(0.3)
    for t in tasks:
        t.cancel()
    for t in tasks:
        with pytest.raises(asyncio.CancelledError):
            await t
    for _ in range(300):
        snap = apg.metrics(POOL_ID)
        if (value(snap, "dbpool_requests_total", outcome="cancelled") == 3
                and value(snap, "db_client_connection_count", state="used") == 0):
            break
        await asyncio.sleep(0.01)
    assert value(snap, "dbpool_requests_total", outcome="cancelled") == 3
    assert value(snap, "db_client_connection_use_time_seconds")["count"] == 3
    assert value(snap, "db_client_connection_count", state="used") == 0
