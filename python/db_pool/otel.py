"""OpenTelemetry bridge: the pools' metrics as observable instruments.

    import db_pool.otel
    db_pool.otel.instrument(pool)                    # the global MeterProvider
    db_pool.otel.instrument(pool, meter_provider=mp)

Each instrument reads the same snapshot as ``pool.metrics()`` when the SDK
collects, so the bridge adds nothing to the query path. opentelemetry-api
is imported only when ``instrument()`` is called. See
docs/observability.md for the names and why histograms are two counters.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, NamedTuple, Protocol

from ._metrics import METRICS, Snapshot
from .errors import PoolClosed

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation


class _Pool(Protocol):
    def metrics(self, pool_id: str | None = None) -> Snapshot: ...


class OtelMetric(NamedTuple):
    name: str
    #: "histogram" becomes two ObservableCounters, ``<name>.count`` and
    #: ``<name>.sum``: the API has no instrument for pre-aggregated buckets.
    instrument: Literal["counter", "updowncounter", "gauge", "histogram"]
    unit: str


#: Each of _metrics.METRICS by its OpenTelemetry name: the semantic
#: conventions' db.client.connection.* where one exists, dbpool.* otherwise.
OTEL_METRICS: dict[str, OtelMetric] = {
    "db_client_connection_count": OtelMetric(
        "db.client.connection.count", "updowncounter", "{connection}"
    ),
    "db_client_connection_max": OtelMetric(
        "db.client.connection.max", "updowncounter", "{connection}"
    ),
    "db_client_connection_idle_min": OtelMetric(
        "db.client.connection.idle.min", "updowncounter", "{connection}"
    ),
    "db_client_connection_pending_requests": OtelMetric(
        "db.client.connection.pending_requests", "updowncounter", "{request}"
    ),
    "db_client_connection_timeouts_total": OtelMetric(
        "db.client.connection.timeouts", "counter", "{timeout}"
    ),
    "db_client_connection_wait_time_seconds": OtelMetric(
        "db.client.connection.wait_time", "histogram", "s"
    ),
    "db_client_connection_create_time_seconds": OtelMetric(
        "db.client.connection.create_time", "histogram", "s"
    ),
    "db_client_connection_use_time_seconds": OtelMetric(
        "db.client.connection.use_time", "histogram", "s"
    ),
    "dbpool_requests_total": OtelMetric("dbpool.requests", "counter", "{request}"),
    "dbpool_requests_rejected_total": OtelMetric(
        "dbpool.requests.rejected", "counter", "{request}"
    ),
    "dbpool_request_retries_total": OtelMetric("dbpool.request.retries", "counter", "{retry}"),
    "dbpool_requests_abandoned_total": OtelMetric(
        "dbpool.requests.abandoned", "counter", "{request}"
    ),
    "dbpool_failovers_total": OtelMetric("dbpool.failovers", "counter", "{failover}"),
    "dbpool_topology_generation": OtelMetric("dbpool.topology.generation", "gauge", "1"),
    "dbpool_result_rows": OtelMetric("dbpool.result.rows", "histogram", "{row}"),
    "dbpool_bulk_rows_total": OtelMetric("dbpool.bulk.rows", "counter", "{row}"),
    "dbpool_result_bytes": OtelMetric("dbpool.result.bytes", "histogram", "By"),
    "dbpool_bulk_bytes_total": OtelMetric("dbpool.bulk.bytes", "counter", "By"),
    "dbpool_connections_acquired_total": OtelMetric(
        "dbpool.connections.acquired", "counter", "{connection}"
    ),
    "dbpool_connections_opened_total": OtelMetric(
        "dbpool.connections.opened", "counter", "{connection}"
    ),
    "dbpool_connections_closed_total": OtelMetric(
        "dbpool.connections.closed", "counter", "{connection}"
    ),
    "dbpool_connection_failures_total": OtelMetric(
        "dbpool.connection.failures", "counter", "{failure}"
    ),
    "dbpool_connection_validation_failures_total": OtelMetric(
        "dbpool.connection.validation_failures", "counter", "{failure}"
    ),
    "dbpool_endpoint_role_changes_total": OtelMetric(
        "dbpool.endpoint.role_changes", "counter", "{change}"
    ),
    "dbpool_endpoint_health": OtelMetric("dbpool.endpoint.health", "gauge", "1"),
    "dbpool_endpoint_primary": OtelMetric("dbpool.endpoint.primary", "gauge", "1"),
    "dbpool_endpoint_consecutive_failures": OtelMetric(
        "dbpool.endpoint.consecutive_failures", "gauge", "{failure}"
    ),
    "dbpool_replica_lag_seconds": OtelMetric("dbpool.replica.lag", "gauge", "s"),
    "dbpool_alert_firing": OtelMetric("dbpool.alert.firing", "gauge", "1"),
    "dbpool_leaks_reported_total": OtelMetric("dbpool.leaks.reported", "counter", "{lease}"),
    "dbpool_slow_queries_total": OtelMetric("dbpool.slow_queries", "counter", "{statement}"),
}

#: Our labels as semantic-convention attributes; any other label ``x``
#: becomes ``dbpool.x``.
ATTRIBUTES = {
    "pool": "db.client.connection.pool.name",
    "engine": "db.system.name",
    "state": "db.client.connection.state",
}
#: db.system.name's well-known values where ours differ.
_SYSTEMS = {"mssql": "microsoft.sql_server"}

#: A snapshot serves every instrument of one collection; an instrument
#: that runs later than this after the last refresh takes a new one.
_REUSE_SECONDS = 1.0


def attributes(labels: dict[str, str]) -> dict[str, str]:
    """A sample's labels as OpenTelemetry attributes."""
    out: dict[str, str] = {}
    for key, value in labels.items():
        if key == "engine":
            value = _SYSTEMS.get(value, value)
        out[ATTRIBUTES.get(key, f"dbpool.{key}")] = str(value)
    return out


class _Feed:
    """The pools instrumented on one MeterProvider and their last snapshot.
    The SDK keeps the first callbacks registered under a name and drops
    later ones, so each provider gets its instruments once and they read
    every pool given to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: list[weakref.ref[_Pool]] = []
        self._snap: Snapshot = {}
        self._taken = 0.0

    def add(self, pool: _Pool) -> None:
        with self._lock:
            self._pools = [r for r in self._pools if r() is not None]
            if not any(r() is pool for r in self._pools):
                self._pools.append(weakref.ref(pool))

    def snapshot(self, refresh: bool) -> Snapshot:
        with self._lock:
            now = time.monotonic()
            if refresh or now - self._taken > _REUSE_SECONDS:
                self._snap = self._read()
                self._taken = now
            return self._snap

    def _read(self) -> Snapshot:
        out: Snapshot = {}
        for ref in self._pools:
            pool = ref()
            if pool is None:
                continue
            try:
                snap = pool.metrics()
            except PoolClosed:  # closed pools report nothing
                continue
            for name, samples in snap.items():
                out.setdefault(name, []).extend(samples)
        return out


_feeds: weakref.WeakKeyDictionary[Any, _Feed] = weakref.WeakKeyDictionary()
_feeds_lock = threading.Lock()


def instrument(pool: _Pool, meter_provider: MeterProvider | None = None) -> None:
    """Reports `pool`'s metrics (a DatabasePool or SyncDatabasePool: every
    pool it holds) through OpenTelemetry observable instruments on
    `meter_provider` (default: the global one). Calling it again for the
    same pool and provider does nothing; several pools may share a
    provider (their pool names should differ). Needs opentelemetry-api."""
    try:
        from opentelemetry import metrics as otel
    except ImportError as exc:
        raise ImportError(
            "db_pool.otel.instrument() needs the OpenTelemetry API: "
            "pip install opentelemetry-api (and opentelemetry-sdk to export)"
        ) from exc
    provider = meter_provider if meter_provider is not None else otel.get_meter_provider()
    with _feeds_lock:
        feed = _feeds.get(provider)
        if feed is None:
            feed = _feeds[provider] = _Feed()
            _register(otel, provider.get_meter("db_pool"), feed)
    feed.add(pool)


def _register(otel: Any, meter: Any, feed: _Feed) -> None:
    first = True
    for prom, m in OTEL_METRICS.items():
        info = METRICS[prom]
        if m.instrument == "histogram":
            meter.create_observable_counter(
                f"{m.name}.count",
                [_callback(otel, feed, prom, "count", first)],
                unit="1",
                description=f"{info.help} (the histogram's count)",
            )
            meter.create_observable_counter(
                f"{m.name}.sum",
                [_callback(otel, feed, prom, "sum", False)],
                unit=m.unit,
                description=f"{info.help} (the histogram's sum)",
            )
        else:
            create = {
                "counter": meter.create_observable_counter,
                "updowncounter": meter.create_observable_up_down_counter,
                "gauge": meter.create_observable_gauge,
            }[m.instrument]
            create(
                m.name,
                [_callback(otel, feed, prom, "value", first)],
                unit=m.unit,
                description=info.help,
            )
        first = False


def _callback(
    otel: Any, feed: _Feed, prom: str, field: str, refresh: bool
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    """The callback of one instrument; the first registered one refreshes
    the snapshot, so one collection reads the pools once."""

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        snap = feed.snapshot(refresh)
        return [
            otel.Observation(s[field], attributes(s["labels"])) for s in snap.get(prom, [])
        ]

    return observe
