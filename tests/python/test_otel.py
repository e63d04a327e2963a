"""db_pool.otel.instrument(): the real opentelemetry-sdk collects, through an
InMemoryMetricReader, exactly what pool.metrics() holds after known work on
SQLite, under the semantic conventions' names, in both APIs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, InMemoryMetricReader, Sum

import db_pool.otel
from db_pool import SyncDatabasePool
from metrics_checks import check_otel_matches, otel_points

POOL = "db.client.connection.pool.name"


def reader_and_provider() -> tuple[InMemoryMetricReader, MeterProvider]:
    reader = InMemoryMetricReader()
    return reader, MeterProvider(metric_readers=[reader])


def point(points: dict[Any, Any], name: str, **attrs: str) -> Any:
    hits = [v for (n, a), v in points.items() if n == name and attrs.items() <= dict(a).items()]
    assert len(hits) == 1, (name, attrs, hits)
    return hits[0]


async def test_collected_points_equal_metrics(api: Any) -> None:
    reader, provider = reader_and_provider()
    await api.create_pool("m", url="sqlite:///:memory:", min_size=1, max_size=1)
    db_pool.otel.instrument(api, meter_provider=provider)
    await api.execute("m", "CREATE TABLE t(x)")
    await api.execute("m", "INSERT INTO t VALUES (1), (2), (3)")
    n = 7
    for _ in range(n):
        assert (await api.query("m", "SELECT x FROM t")).height == 3

    points = otel_points(reader)
    check_otel_matches(points, api.metrics())
    finished = n + 2
    assert point(points, "dbpool.requests", **{POOL: "m", "dbpool.outcome": "ok"}) == finished
    assert point(points, "db.client.connection.wait_time.count", **{POOL: "m"}) == finished
    assert point(points, "db.client.connection.use_time.count") == finished
    assert point(points, "dbpool.result.rows.sum") == 3 * n
    idle = {POOL: "m", "db.client.connection.state": "idle", "db.system.name": "sqlite"}
    assert point(points, "db.client.connection.count", **idle) == 1
    assert point(points, "db.client.connection.max") == 1

    # a second collection reads the pools again (no stale snapshot)
    for _ in range(n):
        await api.query("m", "SELECT x FROM t")
    points = otel_points(reader)
    check_otel_matches(points, api.metrics())
    assert point(points, "dbpool.requests", **{"dbpool.outcome": "ok"}) == finished + n
    provider.shutdown()


def test_instrument_kinds_and_units(spool: SyncDatabasePool) -> None:
    reader, provider = reader_and_provider()
    spool.create_pool("k", url="sqlite:///:memory:")
    db_pool.otel.instrument(spool, meter_provider=provider)
    spool.query("k", "SELECT 1 AS one")
    metrics = {
        m.name: m
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    count = metrics["db.client.connection.count"]
    assert isinstance(count.data, Sum) and not count.data.is_monotonic
    assert count.unit == "{connection}"
    timeouts = metrics["db.client.connection.timeouts"]
    assert isinstance(timeouts.data, Sum) and timeouts.data.is_monotonic
    wait_sum = metrics["db.client.connection.wait_time.sum"]
    assert isinstance(wait_sum.data, Sum) and wait_sum.data.is_monotonic and wait_sum.unit == "s"
    assert isinstance(metrics["dbpool.endpoint.health"].data, Gauge)
    assert {sm.scope.name for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics} == {"db_pool"}
    provider.shutdown()


def test_pools_share_a_provider_and_closed_ones_drop_out() -> None:
    reader, provider = reader_and_provider()
    a, b = SyncDatabasePool(), SyncDatabasePool()
    try:
        a.create_pool("a", url="sqlite:///:memory:")
        b.create_pool("b", url="sqlite:///:memory:")
        db_pool.otel.instrument(a, meter_provider=provider)
        db_pool.otel.instrument(b, meter_provider=provider)
        db_pool.otel.instrument(b, meter_provider=provider)  # again: nothing new
        a.query("a", "SELECT 1 AS x")
        for _ in range(3):
            b.query("b", "SELECT 1 AS x")
        points = otel_points(reader)
        assert point(points, "dbpool.requests", **{POOL: "a", "dbpool.outcome": "ok"}) == 1
        assert point(points, "dbpool.requests", **{POOL: "b", "dbpool.outcome": "ok"}) == 3
        a.close()
        points = otel_points(reader)
        check_otel_matches(points, b.metrics())
    finally:
        a.close()
        b.close()
        provider.shutdown()


def test_missing_opentelemetry_is_a_clear_error(
    spool: SyncDatabasePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match="pip install opentelemetry-api"):
        db_pool.otel.instrument(spool)


def test_importing_db_pool_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, db_pool, db_pool.otel; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
