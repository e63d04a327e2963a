"""Alert rules on real SQLite pools: each rule fires after its duration and
resolves, within bounds set by alert_interval; events reach on_alert,
logging and the metrics; a raising callback changes nothing; malformed rules
are refused before the pool exists."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from db_pool import ConfigurationError, ProgrammingError, SyncDatabasePool
from alert_events import Events
from metrics_checks import parsed, value

TICK = 0.05  # alert_interval of these tests
SLACK = 0.5  # a loaded 2-core machine: thread wake-ups may be late


THREE_ROWS = "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3"


def hold(pool: SyncDatabasePool, pool_id: str) -> Iterator[Any]:
    """A stream left open after its first batch: it holds a connection
    (SQLite lets several readers in at once, unlike two transactions)."""
    stream = pool.stream(pool_id, THREE_ROWS, batch_rows=1)
    next(stream)
    return stream


def firing(pool: SyncDatabasePool, pool_id: str, rule: str) -> float:
    """dbpool_alert_firing of one rule, the same in metrics() and the text."""
    snap = pool.metrics(pool_id)
    labels = (("engine", "sqlite"), ("pool", pool_id), ("rule", rule))
    text_value = parsed(pool.prometheus_text(pool_id))[("dbpool_alert_firing", labels)]
    assert text_value == value(snap, "dbpool_alert_firing", pool=pool_id, rule=rule)
    return float(text_value)


def test_saturation_fires_after_its_duration_and_resolves(
        spool: SyncDatabasePool, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="db_pool")
    events = Events()
    spool.create_pool("sat", url="sqlite:///:memory:", min_size=0, max_size=2,
                      alerts=[{"rule": "saturation", "threshold": 1.0, "for": 0.4}],
                      alert_interval=TICK, on_alert=events)
    assert firing(spool, "sat", "saturation") == 0
    one = hold(spool, "sat")
    time.sleep(0.6)  # half the connections in use: below the threshold
    assert events.got == []
    two = hold(spool, "sat")
    start = time.monotonic()
    fired = events.wait("firing")
    assert 0.4 <= fired - start <= 0.4 + 2 * TICK + SLACK
    assert firing(spool, "sat", "saturation") == 1
    two.close()
    released = time.monotonic()
    one.close()
    resolved = events.wait("resolved")
    assert 0 <= resolved - released <= 2 * TICK + SLACK
    assert firing(spool, "sat", "saturation") == 0
    assert events.kinds() == [("firing", "saturation"), ("resolved", "saturation")]
    event = events.got[0][1]
    assert event["pool"] == "sat" and event["value"] == 1.0 and event["threshold"] == 1.0
    levels = [(r.levelno, r.getMessage()) for r in caplog.records if "alert" in r.getMessage()]
    assert levels[0][0] == logging.WARNING and "saturation firing: 2 of 2" in levels[0][1]
    assert levels[1][0] == logging.INFO and "saturation resolved" in levels[1][1]
    assert [e["kind"] for e in spool.stats("sat")["events"]] == ["alert", "resolved"]


def test_a_condition_shorter_than_for_never_fires(spool: SyncDatabasePool) -> None:
    events = Events()
    spool.create_pool("short", url="sqlite:///:memory:", max_size=1, alert_interval=TICK,
                      alerts=[{"rule": "saturation", "threshold": 1, "for": 1.0}],
                      on_alert=events)
    for _ in range(3):
        with spool.transaction("short"):
            time.sleep(0.3)
        time.sleep(2 * TICK)
    time.sleep(0.3)
    assert events.got == []


def test_acquire_wait_p99_fires_and_resolves_after_its_window(spool: SyncDatabasePool) -> None:
    events = Events()
    spool.create_pool("wait", url="sqlite:///:memory:", min_size=1, max_size=1,
                      alert_interval=TICK, on_alert=events,
                      alerts=[{"rule": "acquire_wait_p99", "threshold": 0.1, "window": 1.0}])
    spool.query("wait", "SELECT 1")  # fast waits only
    time.sleep(0.3)
    assert events.got == []
    held = threading.Event()

    def hold() -> None:
        with spool.transaction("wait"):
            held.set()
            time.sleep(0.4)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    spool.query("wait", "SELECT 1")  # waits about 0.4 s for the connection
    waited = time.monotonic()
    thread.join()
    fired = events.wait("firing")
    assert fired - waited <= 2 * TICK + SLACK
    assert events.got[0][1]["value"] > 0.1
    resolved = events.wait("resolved")
    assert 1.0 - 2 * TICK <= resolved - waited <= 1.0 + 2 * TICK + SLACK


def test_error_rate_fires_after_for_and_resolves(spool: SyncDatabasePool) -> None:
    events = Events()
    spool.create_pool("err", url="sqlite:///:memory:", alert_interval=TICK, on_alert=events,
                      alerts=[{"rule": "error_rate", "threshold": 0.5, "for": 0.3,
                               "window": 1.5, "name": "errors"}])
    spool.query("err", "SELECT 1")
    start = time.monotonic()
    for _ in range(3):
        with pytest.raises(ProgrammingError):
            spool.query("err", "SELECT nope")
    fired = events.wait("firing", "errors")
    assert 0.3 <= fired - start <= 0.3 + 2 * TICK + SLACK
    assert events.got[0][1]["value"] == pytest.approx(0.75)
    assert "3 of 4 requests failed" in events.got[0][1]["message"]
    resolved = events.wait("resolved", "errors")
    assert 1.5 - 2 * TICK <= resolved - start <= 1.5 + 2 * TICK + SLACK + 0.3


def test_endpoint_down_fires_and_resolves(spool: SyncDatabasePool, tmp_path: Path) -> None:
    """A SQLite file in a folder moved away: its connection reaches
    max_lifetime and cannot be reopened (down); the folder back, up."""
    events = Events()
    home = tmp_path / "home"
    home.mkdir()
    spool.create_pool("gone", url=f"sqlite:///{home / 'db.sqlite'}", min_size=1, max_size=1,
                      max_lifetime=0.3, lifetime_jitter=0, alert_interval=TICK,
                      on_alert=events, alerts=[{"rule": "endpoint_down", "for": 0.2}])
    home.rename(tmp_path / "away")
    events.wait("firing")
    assert "down: " in events.got[0][1]["message"] and "db.sqlite" in events.got[0][1]["message"]
    assert firing(spool, "gone", "endpoint_down") == 1
    (tmp_path / "away").rename(home)
    events.wait("resolved")
    assert firing(spool, "gone", "endpoint_down") == 0


def test_a_raising_callback_is_logged_and_the_pool_goes_on(
        spool: SyncDatabasePool, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def bad(event: dict[str, Any]) -> None:
        calls.append(event["kind"])
        raise RuntimeError("callback bug")

    spool.create_pool("cb", url="sqlite:///:memory:", max_size=1, alert_interval=TICK,
                      alerts=[{"rule": "saturation", "threshold": 1}], on_alert=bad)
    with spool.transaction("cb") as tx:
        tx.execute("SELECT 1")
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(TICK)
    deadline = time.monotonic() + 5
    while calls != ["firing", "resolved"] and time.monotonic() < deadline:
        time.sleep(TICK)
    assert calls == ["firing", "resolved"]  # the thread survived the first raise
    assert spool.query("cb", "SELECT 42 AS x")["x"].to_list() == [42]
    def raised() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "on_alert callback raised" in r.getMessage()]

    # the second call has appended its event; its raise is logged just after
    deadline = time.monotonic() + 5
    while len(raised()) < 2 and time.monotonic() < deadline:
        time.sleep(TICK)
    records = raised()
    assert len(records) == 2 and records[0].exc_info and "callback bug" in str(records[0].exc_info[1])


@pytest.mark.parametrize("alerts, message", [
    ({"rule": "saturation"}, "alerts must be a list of rules"),
    (["saturation"], "alerts[0] must be a dict, not str"),
    ([{"rule": "saturaton", "threshold": 0.9}],
     "alerts[0]: unknown rule 'saturaton'; the rules are: acquire_wait_p99, endpoint_down, "
     "error_rate, leak_suspected, replica_lag, saturation"),
    ([{"rule": "saturation"}],
     "alerts[0] (saturation): threshold is required (a fraction above 0 and at most 1, e.g. 0.9)"),
    ([{"rule": "saturation", "threshold": 90}],
     "alerts[0] (saturation): threshold must be a fraction above 0 and at most 1, e.g. 0.9, "
     "not 90"),
    ([{"rule": "error_rate", "threshold": "0.1"}],
     "alerts[0] (error_rate): threshold must be a fraction above 0 and at most 1, e.g. 0.9, "
     "not '0.1'"),
    ([{"rule": "replica_lag", "threshold": -1}],
     "alerts[0] (replica_lag): threshold must be more than 0 seconds, not -1.0"),
    ([{"rule": "acquire_wait_p99", "threshold": float("nan")}],
     "alerts[0] (acquire_wait_p99): threshold must be a finite number of seconds"),
    ([{"rule": "saturation", "threshold": 0.9, "for": -5}],
     "alerts[0] (saturation): for must be 0 or more seconds, not -5"),
    ([{"rule": "saturation", "threshold": 0.9, "for": True}],
     "alerts[0] (saturation): for must be a number of seconds, not True"),
    ([{"rule": "endpoint_down", "threshold": 1.5}],
     "alerts[0] (endpoint_down): threshold must be a whole number of 1 or more, not 1.5"),
    ([{"rule": "saturation", "threshold": 0.9, "treshold": 1}],
     "alerts[0] (saturation): unknown key 'treshold'"),
    ([{"rule": "saturation", "threshold": 0.9, "window": 10}],
     "alerts[0] (saturation): window applies only to acquire_wait_p99 and error_rate"),
    ([{"rule": "error_rate", "threshold": 0.1, "min_requests": 0}],
     "alerts[0] (error_rate): min_requests must be a whole number of 1 or more, not 0"),
    ([{"rule": "saturation", "threshold": 0.9}, {"rule": "saturation", "threshold": 0.5}],
     "alerts[1] (saturation): a second rule named 'saturation'; give each rule of a pool its "
     "own name="),
    ([{"rule": "leak_suspected"}],
     "alerts[0] (leak_suspected): needs the pool option leak_detection_threshold"),
])
def test_malformed_rules_are_refused_before_the_pool_exists(
        spool: SyncDatabasePool, alerts: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        spool.create_pool("bad", url="sqlite:///:memory:", alerts=alerts)
    assert str(info.value).startswith(message), str(info.value)
    assert spool.list_pools() == []


@pytest.mark.parametrize("options, message", [
    ({"on_alert": "print"}, "on_alert must be callable, not str"),
    ({"alert_interval": 0}, "alert_interval must be more than 0 seconds, not 0"),
    ({"leak_detection_threshold": -1}, "leak_detection_threshold must be more than 0 seconds"),
    ({"slow_query_threshold": "1s"}, "slow_query_threshold must be a number of seconds"),
    ({"log_parameters": "yes"}, "log_parameters must be True or False, not 'yes'"),
])
def test_malformed_options_are_refused(spool: SyncDatabasePool, options: dict[str, Any],
                                       message: str) -> None:
    with pytest.raises(ConfigurationError, match="^" + message.replace("(", r"\(")):
        spool.create_pool("bad", url="sqlite:///:memory:", **options)
    assert spool.list_pools() == []


def test_pools_without_rules_have_no_alert_samples(spool: SyncDatabasePool) -> None:
    spool.create_pool("plain", url="sqlite:///:memory:")
    snap = spool.metrics()
    assert snap["dbpool_alert_firing"] == [] and snap["dbpool_leaks_reported_total"] == []
    assert "dbpool_alert_firing" not in spool.prometheus_text()
