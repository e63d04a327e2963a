"""Metrics: the native counters, gauges and histograms of each pool
(libdbpool's metrics.c) as a snapshot dict, and that snapshot in the
Prometheus text exposition format (version 0.0.4). See docs/observability.md.

The rendering is done here rather than with ``prometheus-client``: the
format is a few lines of text, and the package then needs nothing more at
run time (the tests parse the output with ``prometheus_client.parser``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal, NamedTuple, Union

from . import _native
from .errors import PoolNotFound

#: A sample: ``{"labels": {...}, "value": number}`` for counters and gauges;
#: ``{"labels": {...}, "buckets": [(le, cumulative count), ..., (inf, count)],
#: "sum": float, "count": int}`` for histograms.
Sample = dict[str, Any]
#: metric name -> its samples (one per label set).
Snapshot = dict[str, list[Sample]]


class MetricInfo(NamedTuple):
    type: Literal["counter", "gauge", "histogram"]
    unit: str  # "seconds", "rows", "connections", "requests" or ""
    scope: Literal["pool", "endpoint"]  # labels pool, engine (+ endpoint, role)
    help: str


_P: Literal["pool"] = "pool"
_E: Literal["endpoint"] = "endpoint"

#: Every metric, by the name it has in the snapshot and in Prometheus
#: (counters end in ``_total``; histograms add ``_bucket``/``_sum``/``_count``).
METRICS: dict[str, MetricInfo] = {
    # OpenTelemetry db.client.connection.* (in Prometheus form)
    "db_client_connection_count": MetricInfo(
        "gauge", "connections", _E, "Connections by state: idle, used, opening, closing."
    ),
    "db_client_connection_max": MetricInfo(
        "gauge", "connections", _E, "Most connections the endpoint may have open (max_size)."
    ),
    "db_client_connection_idle_min": MetricInfo(
        "gauge", "connections", _E, "Connections kept open even when idle (min_size)."
    ),
    "db_client_connection_pending_requests": MetricInfo(
        "gauge", "requests", _P, "Callers waiting for a connection."
    ),
    "db_client_connection_timeouts_total": MetricInfo(
        "counter", "", _P, "Waits for a connection that passed acquire_timeout."
    ),
    "db_client_connection_wait_time_seconds": MetricInfo(
        "histogram", "seconds", _P, "Time callers waited to obtain a connection."
    ),
    "db_client_connection_create_time_seconds": MetricInfo(
        "histogram", "seconds", _E, "Time to open a connection (connect and init_sql)."
    ),
    "db_client_connection_use_time_seconds": MetricInfo(
        "histogram",
        "seconds",
        _E,
        "Time a caller held a connection, from checkout to its return to the pool.",
    ),
    # the rest
    "dbpool_requests_total": MetricInfo(
        "counter", "", _P, "Finished requests by outcome (ok or the error category)."
    ),
    "dbpool_requests_rejected_total": MetricInfo(
        "counter", "", _P, "Requests refused at once because the wait queue was full."
    ),
    "dbpool_request_retries_total": MetricInfo(
        "counter", "", _P, "Requests moved to another endpoint before they ran."
    ),
    "dbpool_requests_abandoned_total": MetricInfo(
        "counter",
        "",
        _P,
        "Callers answered while their statement was still stuck in the engine.",
    ),
    "dbpool_failovers_total": MetricInfo(
        "counter", "", _P, "Times writes moved to a different primary."
    ),
    "dbpool_topology_generation": MetricInfo(
        "gauge", "", _P, "Bumped whenever an endpoint's known role changes."
    ),
    "dbpool_result_rows": MetricInfo("histogram", "rows", _P, "Rows of each query() result."),
    "dbpool_result_bytes": MetricInfo(
        "histogram", "bytes", _P, "Bytes of the Arrow batches of each query() result."
    ),
    "dbpool_bulk_bytes_total": MetricInfo(
        "counter", "bytes", _P, "Bytes of the Arrow batches stream() fetches built (direction=out)."
    ),
    "dbpool_bulk_rows_total": MetricInfo(
        "counter",
        "",
        _P,
        "Rows moved in bulk: direction=in written by write_frame, out read by stream().",
    ),
    "dbpool_connections_acquired_total": MetricInfo(
        "counter", "", _E, "Connections checked out by callers."
    ),
    "dbpool_connections_opened_total": MetricInfo("counter", "", _E, "Connections opened."),
    "dbpool_connections_closed_total": MetricInfo(
        "counter", "", _E, "Connections closed, by reason."
    ),
    "dbpool_connection_failures_total": MetricInfo(
        "counter", "", _E, "Connection attempts that failed."
    ),
    "dbpool_connection_validation_failures_total": MetricInfo(
        "counter", "", _E, "Pings or role probes before use that failed."
    ),
    "dbpool_endpoint_role_changes_total": MetricInfo(
        "counter", "", _E, "Times the endpoint's known role changed."
    ),
    "dbpool_endpoint_health": MetricInfo(
        "gauge",
        "",
        _E,
        "1 for the endpoint's health (its circuit breaker): up (closed), "
        "suspect (half-open, probing), down (open); 0 for the others.",
    ),
    "dbpool_endpoint_primary": MetricInfo(
        "gauge", "", _E, "1 when writes go to this endpoint (pools of several endpoints)."
    ),
    "dbpool_endpoint_consecutive_failures": MetricInfo(
        "gauge", "", _E, "Connection attempts or probes failed in a row."
    ),
    "dbpool_replica_lag_seconds": MetricInfo(
        "gauge", "seconds", _E, "Replay lag at the last probe (only when known)."
    ),
    # alerts, leak detection and the slow-query log (db_pool/_alerts.py)
    "dbpool_alert_firing": MetricInfo(
        "gauge", "", _P, "1 while the pool's alert rule (label rule) fires, else 0."
    ),
    "dbpool_leaks_reported_total": MetricInfo(
        "counter", "", _P, "Leases reported held longer than leak_detection_threshold."
    ),
    "dbpool_slow_queries_total": MetricInfo(
        "counter", "", _P, "Statements that took slow_query_threshold or longer."
    ),
}

_HEALTH = ("up", "suspect", "down")


def _outcome(category: str) -> str:
    return category.replace("-", "_")


def _pool_samples(pool_id: str, raw: dict[str, Any], out: Snapshot) -> None:
    """Adds one pool's samples (raw: Manager.metrics()) to `out`."""
    base = {"pool": pool_id, "engine": raw["engine"]}

    def add(name: str, value: Any, **extra: str) -> None:
        out[name].append({"labels": {**base, **extra}, "value": value})

    def hist(name: str, h: tuple[Any, ...], labels: dict[str, str]) -> None:
        buckets, total, count = h
        out[name].append({"labels": labels, "buckets": list(buckets), "sum": total, "count": count})

    add("db_client_connection_pending_requests", raw["waiting"])
    add("db_client_connection_timeouts_total", raw["acquire_timeouts"])
    hist("db_client_connection_wait_time_seconds", raw["wait_time"], base)
    for category, n in raw["requests"].items():
        add("dbpool_requests_total", n, outcome=_outcome(category))
    add("dbpool_requests_rejected_total", raw["rejected"])
    add("dbpool_request_retries_total", raw["retries"])
    add("dbpool_requests_abandoned_total", raw["abandoned"])
    add("dbpool_failovers_total", raw["failovers"])
    add("dbpool_topology_generation", raw["topology_generation"])
    hist("dbpool_result_rows", raw["result_rows"], base)
    add("dbpool_bulk_rows_total", raw["bulk_rows_in"], direction="in")
    add("dbpool_bulk_rows_total", raw["bulk_rows_out"], direction="out")
    hist("dbpool_result_bytes", raw["result_bytes"], base)
    add("dbpool_bulk_bytes_total", raw["bulk_bytes_out"], direction="out")
    for ep in raw["endpoints"]:
        labels = {**base, "endpoint": ep["endpoint"], "role": ep["role"]}

        def put(name: str, value: Any, **extra: str) -> None:
            out[name].append({"labels": {**labels, **extra}, "value": value})

        put("db_client_connection_count", ep["idle"], state="idle")
        put("db_client_connection_count", ep["in_use"], state="used")
        put("db_client_connection_count", ep["opening"], state="opening")
        put("db_client_connection_count", ep["closing"], state="closing")
        put("db_client_connection_max", ep["max_size"])
        put("db_client_connection_idle_min", ep["min_size"])
        hist("db_client_connection_create_time_seconds", ep["create_time"], labels)
        hist("db_client_connection_use_time_seconds", ep["use_time"], labels)
        put("dbpool_connections_acquired_total", ep["acquired"])
        put("dbpool_connections_opened_total", ep["opened"])
        for reason, n in ep["closed"].items():
            put("dbpool_connections_closed_total", n, reason=reason)
        put("dbpool_connection_failures_total", ep["connect_failures"])
        put("dbpool_connection_validation_failures_total", ep["validations_failed"])
        put("dbpool_endpoint_role_changes_total", ep["role_changes"])
        for health in _HEALTH:
            put("dbpool_endpoint_health", int(ep["health"] == health), health=health)
        put("dbpool_endpoint_primary", int(ep["is_primary"]))
        put("dbpool_endpoint_consecutive_failures", ep["failures"])
        if ep["lag"] is not None:
            put("dbpool_replica_lag_seconds", ep["lag"])


def snapshot(manager: _native.Manager, pool_ids: list[str]) -> Snapshot:
    """The metrics of `pool_ids`; a pool closed meanwhile is left out."""
    out: Snapshot = {name: [] for name in METRICS}
    for pool_id in pool_ids:
        try:
            raw = manager.metrics(pool_id)
        except PoolNotFound:
            continue
        _pool_samples(pool_id, raw, out)
    return out


def escape_label(value: str) -> str:
    """A label value as the exposition format quotes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(v: Union[int, float]) -> str:
    if isinstance(v, float):
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        if math.isnan(v):
            return "NaN"
        return repr(v)
    return str(int(v))


def _labels(labels: dict[str, str], extra: tuple[str, str] | None = None) -> str:
    items = list(labels.items()) + ([extra] if extra else [])
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(str(v))}"' for k, v in items) + "}"


def prometheus_text(snap: Snapshot) -> str:
    """Renders a snapshot in the Prometheus text format."""
    lines: list[str] = []
    emit: Callable[[str], None] = lines.append
    for name, samples in snap.items():
        info = METRICS.get(name)
        if info is None or not samples:
            continue
        family = name[: -len("_total")] if info.type == "counter" else name
        emit(f"# HELP {family} {_escape_help(info.help)}")
        emit(f"# TYPE {family} {info.type}")
        for s in samples:
            labels = s["labels"]
            if info.type != "histogram":
                emit(f"{name}{_labels(labels)} {_number(s['value'])}")
                continue
            for le, count in s["buckets"]:
                emit(f"{name}_bucket{_labels(labels, ('le', _number(float(le))))} {count}")
            emit(f"{name}_sum{_labels(labels)} {_number(float(s['sum']))}")
            emit(f"{name}_count{_labels(labels)} {s['count']}")
    return "\n".join(lines) + "\n"
