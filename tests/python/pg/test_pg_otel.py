"""The OpenTelemetry bridge on a real PostgreSQL server: the points equal
metrics() after known work, and no attribute carries the password."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import db_pool.otel
from metrics_checks import check_otel_matches, otel_points

from .conftest import POOL_ID


async def test_pg_otel_points_equal_metrics_without_password(pg: Any, pg_server: Any) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    db_pool.otel.instrument(pg, meter_provider=provider)
    n = 5
    for i in range(n):
        assert (await pg.query(POOL_ID, "SELECT generate_series(1, $1) AS i", [i + 1])).height == i + 1
    points = otel_points(reader)
    check_otel_matches(points, pg.metrics())
    ok = [v for (name, attrs), v in points.items()
          if name == "dbpool.requests" and ("dbpool.outcome", "ok") in attrs]
    assert ok == [n]
    assert any(str(pg_server.port) in dict(attrs).get("dbpool.endpoint", "") for _, attrs in points)
    assert pg_server.password not in repr(points)
    provider.shutdown()
