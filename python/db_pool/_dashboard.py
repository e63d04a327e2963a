"""The data behind the live dashboard (dashboard.html): one JSON snapshot of
every pool, sent on /events once a second and on /api/snapshot.

It is read from the same native counters as metrics() and /metrics, so the
page's totals equal the scrape's. Histograms go out as cumulative bucket
counts (bounds once); the page takes the difference of two snapshots to
chart rates and percentiles. Nothing here holds a password: endpoint labels
never carry one, and event messages are the endpoint's own error text.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable

from .errors import PoolClosed, PoolNotFound

if TYPE_CHECKING:
    from ._common import PoolRegistry

#: Endpoint events sent with each snapshot, newest last.
RECENT_EVENTS = 100
#: An event's message is cut to this many characters.
MESSAGE_CHARS = 300


def _counts(hist: tuple[Any, ...]) -> list[int]:
    return [int(c) for _, c in hist[0]]


def _bounds(hist: tuple[Any, ...]) -> list[float | None]:
    # JSON has no infinity: the last bucket (+Inf) is null
    return [None if le == float("inf") else float(le) for le, _ in hist[0]]


def _pool(pool_id: str, raw: dict[str, Any], needs: str) -> dict[str, Any]:
    eps = raw["endpoints"]
    use = [0] * len(raw["wait_time"][0])
    use_sum = 0.0
    endpoints = []
    for ep in eps:
        for i, c in enumerate(_counts(ep["use_time"])):
            use[i] += c
        use_sum += ep["use_time"][1]
        endpoints.append({
            "endpoint": ep["endpoint"],
            "role": ep["role"],
            "health": ep["health"],
            "primary": bool(ep["is_primary"]),
            "idle": ep["idle"],
            "used": ep["in_use"],
            "opening": ep["opening"],
            "closing": ep["closing"],
            "max": ep["max_size"],
            "lag": ep["lag"],
            "failures": ep["failures"],
            "opened": ep["opened"],
            "connect_failures": ep["connect_failures"],
        })
    up = [e for e in eps if e["health"] != "down"]
    if len(eps) > 1 and needs == "primary":
        up = [e for e in up if e["is_primary"]]
    requests = {k.replace("-", "_"): int(n) for k, n in raw["requests"].items()}
    return {
        "id": pool_id,
        "engine": raw["engine"],
        "ready": bool(up),
        "needs": needs,
        "waiting": raw["waiting"],
        "failovers": raw["failovers"],
        "generation": raw["topology_generation"],
        "requests": requests,
        "wait": _counts(raw["wait_time"]),
        "wait_sum": raw["wait_time"][1],
        "use": use,
        "use_sum": use_sum,
        "endpoints": endpoints,
    }


def _event(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "time": e["time"],
        "pool": e["pool_id"],
        "kind": e["kind"],
        "endpoint": e["endpoint"],
        "role": e["role"],
        "old_role": e["old_role"],
        "failover": bool(e.get("failover")),
        "message": e["message"][:MESSAGE_CHARS],
    }


def snapshot(registry: PoolRegistry, pool_ids: list[str],
             read_only: Iterable[str] = ()) -> dict[str, Any]:
    """Every pool of `pool_ids` still open, and the latest endpoint events."""
    read_only = frozenset(read_only)
    native = registry._native
    pools = []
    bounds: list[float | None] = []
    for pool_id in pool_ids:
        try:
            if native is None:
                break
            raw = native.metrics(pool_id)
        except (PoolNotFound, PoolClosed):
            continue  # closed meanwhile
        bounds = bounds or _bounds(raw["wait_time"])
        pools.append(_pool(pool_id, raw, "any" if pool_id in read_only else "primary"))
    events: list[dict[str, Any]] = []
    for recent in list(registry._events.values()):
        events.extend(list(recent))
    events.sort(key=lambda e: e["time"])
    return {
        "time": time.time(),
        "open": native is not None,
        "bounds": bounds,
        "pools": pools,
        "events": [_event(e) for e in events[-RECENT_EVENTS:]],
    }
