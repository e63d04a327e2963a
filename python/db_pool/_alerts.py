"""Alert rules, leak detection and the slow-query log (issue 14, items 3-4).

Rules are evaluated in Python, on one daemon thread per DatabasePool
("db_pool-alerts"), from the same native counters as metrics(): gauges as
they are, rates and the acquire-wait p99 from the difference of two
readings ``window`` seconds apart. Evaluating in the C janitor would need a
rule language, a callback path into Python and its own tests in C for the
same result; a reading costs one short critical section, so the thread adds
nothing to the query path (docs/observability.md).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .errors import ConfigurationError, PoolClosed, PoolNotFound

if TYPE_CHECKING:
    from ._common import PoolRegistry

logger = logging.getLogger("db_pool")

#: What an on_alert callback gets: a dict (see docs/observability.md).
AlertEvent = dict[str, Any]
AlertCallback = Callable[[AlertEvent], object]

#: create_pool options handled here, not by the C pool.


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
DEFAULT_INTERVAL = 1.0
DEFAULT_WINDOW = 60.0
#: Longest SQL text and parameter list put in a log line or an event.
SQL_CHARS = 1000
PARAM_CHARS = 500

#: rule kind -> (what its threshold is, whether it needs one, default).
_KINDS: dict[str, tuple[str, bool, float]] = {
    "saturation": ("fraction", True, 0.0),           # used / max_size, 0 < x <= 1
    "acquire_wait_p99": ("seconds", True, 0.0),      # p99 over window
    "error_rate": ("fraction", True, 0.0),           # errors / finished over window
    "endpoint_down": ("count", False, 1.0),          # endpoints down >= threshold
    "replica_lag": ("seconds", True, 0.0),           # largest known lag
    "leak_suspected": ("count", False, 1.0),         # leases held too long >= threshold
}
_KEYS = ("rule", "name", "threshold", "for", "window", "min_requests")
_WINDOWED = ("acquire_wait_p99", "error_rate")


class Rule:
    __slots__ = ("kind", "name", "threshold", "duration", "window", "min_requests")

    def __init__(self, kind: str, name: str, threshold: float, duration: float,
                 window: float, min_requests: int) -> None:
        self.kind, self.name, self.threshold = kind, name, threshold
        self.duration, self.window, self.min_requests = duration, window, min_requests

    def breached(self, value: float) -> bool:
        # gauges of "at least" kinds compare >=, the others "above"
        if self.kind in ("saturation", "endpoint_down", "leak_suspected"):
            return value >= self.threshold
        return value > self.threshold


def _seconds(where: str, key: str, value: object, positive: bool) -> float:
    from ._common import seconds

    return seconds(f"{where}: {key}", value, "positive" if positive else "zero")


def parse_rules(rules: object, leak_threshold: float | None) -> list[Rule]:
    """Checks the alerts= option; every message names the rule and the key."""
    if isinstance(rules, (str, bytes, Mapping)) or not isinstance(rules, (list, tuple)):
        raise ConfigurationError(
            f"alerts must be a list of rules (dicts such as {{'rule': 'saturation', "
            f"'threshold': 0.9, 'for': 30}}), not {type(rules).__name__}")
    out: list[Rule] = []
    for i, spec in enumerate(rules):
        where = f"alerts[{i}]"
        if not isinstance(spec, Mapping):
            raise ConfigurationError(f"{where} must be a dict, not {type(spec).__name__}")
        kind = spec.get("rule")
        if kind not in _KINDS:
            raise ConfigurationError(
                f"{where}: unknown rule {kind!r}; the rules are: {', '.join(sorted(_KINDS))}")
        assert isinstance(kind, str)
        where = f"alerts[{i}] ({kind})"
        for key in spec:
            if key not in _KEYS:
                raise ConfigurationError(
                    f"{where}: unknown key {key!r}; a rule takes: {', '.join(_KEYS)}")
        unit, needed, default = _KINDS[kind]
        if "threshold" not in spec and needed:
            raise ConfigurationError(f"{where}: threshold is required ({_unit_text(kind)})")
        threshold = _threshold(where, kind, spec.get("threshold", default))
        duration = _seconds(where, "for", spec.get("for", 0.0), False)
        if "window" in spec and kind not in _WINDOWED:
            raise ConfigurationError(f"{where}: window applies only to {' and '.join(_WINDOWED)}")
        window = _seconds(where, "window", spec.get("window", DEFAULT_WINDOW), True)
        if "min_requests" in spec and kind != "error_rate":
            raise ConfigurationError(f"{where}: min_requests applies only to error_rate")
        min_requests = spec.get("min_requests", 1)
        if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 1:
            raise ConfigurationError(
                f"{where}: min_requests must be a whole number of 1 or more, not {min_requests!r}")
        name = spec.get("name", kind)
        if not isinstance(name, str) or not name or "\0" in name:
            raise ConfigurationError(f"{where}: name must be a non-empty string, not {name!r}")
        if any(r.name == name for r in out):
            raise ConfigurationError(
                f"{where}: a second rule named {name!r}; give each rule of a pool its own name=")
        if kind == "leak_suspected" and leak_threshold is None:
            raise ConfigurationError(
                f"{where}: needs the pool option leak_detection_threshold (seconds)")
        out.append(Rule(kind, name, threshold, duration, window, min_requests))
    return out


def _unit_text(kind: str) -> str:
    return {"fraction": "a fraction above 0 and at most 1, e.g. 0.9",
            "seconds": "seconds, more than 0",
            "count": "a whole number of 1 or more"}[_KINDS[kind][0]]


def _threshold(where: str, kind: str, value: object) -> float:
    unit = _KINDS[kind][0]
    bad = ConfigurationError(f"{where}: threshold must be {_unit_text(kind)}, not {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad
    v = float(value)
    if unit == "fraction" and not 0 < v <= 1:
        raise bad
    if unit == "seconds":
        return _seconds(where, "threshold", v, True)
    if unit == "count" and (v != int(v) or v < 1):
        raise bad
    return v


def check_options(opts: Mapping[str, Any]) -> dict[str, Any] | None:
    """The watch options of create_pool, checked before the pool exists (a
    bad one loses nothing); None when none is given."""
    if not opts:
        return None
    from ._common import seconds

    out: dict[str, Any] = {}
    leak = opts.get("leak_detection_threshold")
    out["leak"] = None if leak is None else seconds("leak_detection_threshold", leak)
    slow = opts.get("slow_query_threshold")
    out["slow"] = None if slow is None else seconds("slow_query_threshold", slow, "zero")
    out["interval"] = seconds("alert_interval", opts.get("alert_interval", DEFAULT_INTERVAL))
    log_parameters = opts.get("log_parameters", False)
    if not isinstance(log_parameters, bool):
        raise ConfigurationError(f"log_parameters must be True or False, not {log_parameters!r}")
    out["log_parameters"] = log_parameters
    callback = opts.get("on_alert")
    if callback is not None and not callable(callback):
        raise ConfigurationError(f"on_alert must be callable, not {type(callback).__name__}")
    out["on_alert"] = callback
    out["rules"] = parse_rules(opts.get("alerts", []), out["leak"])
    return out


class LeaseRecord:
    """A lease watched for leaks: who took it (the stack) and since when."""

    __slots__ = ("since", "stack", "endpoint", "sql", "thread", "reported")

    def __init__(self, endpoint: str | None) -> None:
        self.since = time.monotonic()
        # the caller's frames: the package's own say nothing about who leaked
        self.stack = [f for f in traceback.extract_stack()
                      if not f.filename.startswith(_PACKAGE_DIR)]
        self.endpoint = endpoint
        self.sql: str | None = None
        self.thread = threading.current_thread().name
        self.reported = False


def _p99(delta: list[tuple[float, int]]) -> float:
    """The 99th percentile of a histogram's bucket counts (cumulative,
    (upper bound, count)), linear inside its bucket as the dashboard does."""
    total = delta[-1][1] if delta else 0
    if total <= 0:
        return 0.0
    rank = 0.99 * total
    lower, below = 0.0, 0
    for le, cum in delta:
        if cum >= rank:
            if le == float("inf"):
                return lower
            share = (rank - below) / (cum - below) if cum > below else 1.0
            return lower + (le - lower) * share
        lower, below = le, cum
    return lower


class PoolWatch:
    """One pool's rules, their state, its watched leases and its log options."""

    def __init__(self, pool_id: str, opts: dict[str, Any]) -> None:
        self.pool_id = pool_id
        self.rules: list[Rule] = opts["rules"]
        self.on_alert: AlertCallback | None = opts["on_alert"]
        self.interval: float = opts["interval"]
        self.leak: float | None = opts["leak"]
        self.slow: float | None = opts["slow"]
        self.log_parameters: bool = opts["log_parameters"]
        self.firing: dict[str, bool] = {r.name: False for r in self.rules}
        self.since: dict[str, float | None] = {r.name: None for r in self.rules}
        self.values: dict[str, float] = {}
        self.leases: dict[int, LeaseRecord] = {}
        self.lock = threading.Lock()
        self.leaks_reported = 0
        self.slow_queries = 0
        self.next_due = 0.0
        horizon = max((r.window for r in self.rules if r.kind in _WINDOWED), default=0.0)
        self.horizon = horizon
        # (monotonic time, wait-time buckets, requests by outcome)
        self.history: collections.deque[tuple[float, list[tuple[float, int]],
                                              dict[str, int]]] = collections.deque()

    # ---- leases ----

    def lease_taken(self, endpoint: str | None) -> LeaseRecord:
        rec = LeaseRecord(endpoint)
        with self.lock:
            self.leases[id(rec)] = rec
        return rec

    def lease_returned(self, rec: LeaseRecord) -> None:
        with self.lock:
            self.leases.pop(id(rec), None)
        if rec.reported:
            logger.info("pool %r: the connection reported as leaked (endpoint %s) was returned "
                        "after %.3f s", self.pool_id, rec.endpoint, time.monotonic() - rec.since)

    def _leaks(self, now: float) -> tuple[int, list[LeaseRecord]]:
        """(leases held past the threshold, those not reported yet)."""
        if self.leak is None:
            return 0, []
        with self.lock:
            held = [r for r in self.leases.values() if now - r.since >= self.leak]
        new = [r for r in held if not r.reported]
        for r in new:
            r.reported = True
        return len(held), new

    # ---- rules ----

    def _window_delta(self, now: float, rule: Rule) -> tuple[list[tuple[float, int]],
                                                               dict[str, int]]:
        cur_t, cur_wait, cur_req = self.history[-1]
        base = self.history[0]
        for sample in self.history:  # the newest reading at least `window` old
            if sample[0] <= now - rule.window:
                base = sample
        _, old_wait, old_req = base
        wait = [(le, c - o) for (le, c), (_, o) in zip(cur_wait, old_wait)]
        req = {k: n - old_req.get(k, 0) for k, n in cur_req.items()}
        return wait, req

    def _value(self, rule: Rule, raw: dict[str, Any], now: float, leaks: int) -> tuple[float, str]:
        eps = raw["endpoints"]
        if rule.kind == "saturation":
            used = sum(e["in_use"] for e in eps)
            cap = sum(e["max_size"] for e in eps)
            return (used / cap if cap else 0.0), f"{used} of {cap} connections in use"
        if rule.kind == "acquire_wait_p99":
            wait, _ = self._window_delta(now, rule)
            p99 = _p99(wait)
            return p99, f"acquire wait p99 {p99:.3f} s over {rule.window:g} s"
        if rule.kind == "error_rate":
            _, req = self._window_delta(now, rule)
            total = sum(req.values())
            errors = total - req.get("ok", 0) - req.get("cancelled", 0)
            rate = errors / total if total >= rule.min_requests else 0.0
            return rate, f"{errors} of {total} requests failed over {rule.window:g} s"
        if rule.kind == "endpoint_down":
            down = [e["endpoint"] for e in eps if e["health"] == "down"]
            return float(len(down)), "down: " + (", ".join(down) or "none")
        if rule.kind == "replica_lag":
            lags = [(e["lag"], e["endpoint"]) for e in eps if e["lag"] is not None]
            lag, where = max(lags, default=(0.0, "none"))
            return float(lag), f"replica lag {lag:.3f} s ({where})"
        return float(leaks), f"{leaks} connection(s) held longer than {self.leak:g} s"

    def evaluate(self, raw: dict[str, Any], now: float) -> list[AlertEvent]:
        """One evaluation: the events it produces (fired, resolved, leaks)."""
        events: list[AlertEvent] = []
        if self.horizon:
            self.history.append((now, [(float(le), int(c)) for le, c in raw["wait_time"][0]],
                                 {k: int(n) for k, n in raw["requests"].items()}))
            while len(self.history) > 2 and self.history[1][0] <= now - self.horizon:
                self.history.popleft()
        leaks, new_leaks = self._leaks(now)
        for rec in new_leaks:
            events.append(self._leak_event(rec, now))
        for rule in self.rules:
            value, detail = self._value(rule, raw, now, leaks)
            self.values[rule.name] = value
            if rule.breached(value):
                since = self.since[rule.name]
                if since is None:
                    since = self.since[rule.name] = now
                if not self.firing[rule.name] and now - since >= rule.duration:
                    self.firing[rule.name] = True
                    events.append(self._event("firing", rule, value, detail))
            else:
                self.since[rule.name] = None
                if self.firing[rule.name]:
                    self.firing[rule.name] = False
                    events.append(self._event("resolved", rule, value, detail))
        return events

    def _event(self, kind: str, rule: Rule, value: float, detail: str) -> AlertEvent:
        held = f" for {rule.duration:g} s" if rule.duration and kind == "firing" else ""
        cmp = ">=" if rule.kind in ("saturation", "endpoint_down", "leak_suspected") else ">"
        message = (f"pool {self.pool_id!r}: alert {rule.name} {kind}: {detail} "
                   f"(threshold {cmp} {rule.threshold:g}{held})")
        return {"kind": kind, "pool": self.pool_id, "rule": rule.name, "condition": rule.kind,
                "value": value, "threshold": rule.threshold, "for": rule.duration,
                "time": time.time(), "message": message}

    def _leak_event(self, rec: LeaseRecord, now: float) -> AlertEvent:
        self.leaks_reported += 1
        stack = "".join(traceback.format_list(rec.stack))
        sql = "(none run yet)" if rec.sql is None else rec.sql[:SQL_CHARS]
        held = now - rec.since
        message = (f"pool {self.pool_id!r}: connection leak suspected: a connection of endpoint "
                   f"{rec.endpoint} has been held for {held:.3f} s (leak_detection_threshold="
                   f"{self.leak:g} s) by thread {rec.thread}; last SQL: {sql}\n"
                   f"acquired at (most recent call last):\n{stack}")
        return {"kind": "leak", "pool": self.pool_id, "rule": None, "endpoint": rec.endpoint,
                "sql": rec.sql, "held": held, "stack": stack, "thread": rec.thread,
                "time": time.time(), "message": message}

    # ---- slow queries ----

    def statement_done(self, sql: str | None, params: object, took: float, rows: int | None,
                       endpoint: str | None, failed: bool) -> None:
        """Logs a statement that took slow_query_threshold or longer."""
        self.slow_queries += 1
        text = "" if sql is None else sql[:SQL_CHARS]
        extra = ""
        if self.log_parameters and params is not None:
            extra = f"; parameters: {repr(params)[:PARAM_CHARS]}"
        logger.warning("pool %r: slow statement (%.3f s >= slow_query_threshold=%g s) on "
                       "endpoint %s, %s rows%s%s: %s", self.pool_id, took, self.slow,
                       endpoint, "?" if rows is None else rows,
                       ", failed" if failed else "", extra, text)


#: Requests whose statement was slow, logged once their rows are counted
#: (frame() takes the result): request -> what to log.
_SLOW_PENDING: dict[int, tuple[object, PoolWatch, str | None, object, float, str | None]] = {}


def slow_check(watch: PoolWatch, req: object, op_is_query: bool, sql: str | None,
               params: object, started: float, rows: int | None, endpoint: str | None,
               failed: bool) -> None:
    """After a statement of a pool with slow_query_threshold: logs it now, or
    for a query's rows when frame() has counted them."""
    took = time.monotonic() - started
    assert watch.slow is not None
    if took < watch.slow:
        return
    if op_is_query and not failed:
        if len(_SLOW_PENDING) > 1000:  # frames never taken: keep no garbage
            _SLOW_PENDING.clear()
        _SLOW_PENDING[id(req)] = (req, watch, sql, params, took, endpoint)
        return
    watch.statement_done(sql, params, took, rows, endpoint, failed)


def slow_rows(req: object, rows: int) -> None:
    """frame() of a slow query's request: logs it with its row count."""
    entry = _SLOW_PENDING.pop(id(req), None)
    if entry is not None and entry[0] is req:
        _, watch, sql, params, took, endpoint = entry
        watch.statement_done(sql, params, took, rows, endpoint, False)


class Watcher:
    """The PoolWatch of every pool that has one, and the thread that runs them."""

    def __init__(self) -> None:
        self.pools: dict[str, PoolWatch] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    def add(self, registry: PoolRegistry, pool_id: str, opts: dict[str, Any]) -> None:
        self.pools[pool_id] = PoolWatch(pool_id, opts)
        self._wake.set()
        if self._thread is None and (opts["rules"] or opts["leak"] is not None):
            import weakref

            self._thread = threading.Thread(target=_run, args=(weakref.ref(registry), self),
                                            name="db_pool-alerts", daemon=True)
            self._thread.start()

    def remove(self, pool_id: str | None = None) -> None:
        if pool_id is None:
            self.pools.clear()
            self._stop.set()
        else:
            self.pools.pop(pool_id, None)
        self._wake.set()

    def samples(self, pool_ids: list[str], engines: Mapping[str, str],
                snap: dict[str, list[dict[str, Any]]]) -> None:
        """Adds dbpool_alert_firing, dbpool_leaks_reported_total and
        dbpool_slow_queries_total of the watched pools among pool_ids."""
        for pool_id in pool_ids:
            w = self.pools.get(pool_id)
            if w is None or pool_id not in engines:
                continue
            base = {"pool": pool_id, "engine": engines[pool_id]}
            for rule in w.rules:
                snap["dbpool_alert_firing"].append(
                    {"labels": {**base, "rule": rule.name}, "value": int(w.firing[rule.name])})
            if w.leak is not None:
                snap["dbpool_leaks_reported_total"].append({"labels": base,
                                                            "value": w.leaks_reported})
            if w.slow is not None:
                snap["dbpool_slow_queries_total"].append({"labels": base,
                                                          "value": w.slow_queries})


def deliver(registry: PoolRegistry | None, watch: PoolWatch, event: AlertEvent) -> None:
    """Logs an event, keeps it for the dashboard and calls on_alert; a
    callback that raises is logged and changes nothing else."""
    level = logging.INFO if event["kind"] == "resolved" else logging.WARNING
    logger.log(level, "%s", event["message"])
    if registry is not None:
        registry._record_event({
            "pool_id": watch.pool_id, "time": event["time"],
            "kind": "alert" if event["kind"] == "firing" else event["kind"],
            "endpoint": event.get("endpoint") or f"rule {event['rule']}",
            "role": "", "old_role": "", "message": event["message"].split("\n")[0]})
    if watch.on_alert is not None:
        try:
            watch.on_alert(event)
        except Exception:
            logger.exception("pool %r: the on_alert callback raised (ignored; the pool goes on)",
                             watch.pool_id)


def _run(registry_ref: Callable[[], PoolRegistry | None], watcher: Watcher) -> None:
    """Evaluates each pool every alert_interval until the registry closes."""
    while not watcher._stop.is_set():
        watcher._wake.clear()
        now = time.monotonic()
        registry = registry_ref()
        native = registry._native if registry is not None else None
        if native is None:
            return
        next_due = now + 1.0
        for watch in list(watcher.pools.values()):
            if watch.next_due <= now:
                watch.next_due = now + watch.interval
                try:
                    raw = native.metrics(watch.pool_id)
                except (PoolNotFound, PoolClosed):
                    continue
                try:
                    events = watch.evaluate(raw, now)
                except Exception:  # a bug here must not stop the other pools' alerts
                    logger.exception("pool %r: evaluating alert rules failed", watch.pool_id)
                    continue
                for event in events:
                    deliver(registry, watch, event)
            next_due = min(next_due, watch.next_due)
        del registry, native  # hold no reference while waiting
        watcher._wake.wait(max(0.0, next_due - time.monotonic()))
