"""The replica_lag alert rule on real PostgreSQL streaming replication: WAL
replay is paused on the standby (pg_wal_replay_pause()) while the primary
commits, so the standby receives and does not apply; the pool's probes
measure the lag, the rule fires after its `for` (WARNING logged, on_alert
called, dbpool_alert_firing{rule="replica_lag"} 1 in metrics() and the
parsed text), and resolves once replay resumes (INFO, 0). Bounds from
probe_interval and alert_interval are asserted and printed."""

from __future__ import annotations

import logging
import time

import pytest

from alert_events import Events
from db_pool import SyncDatabasePool
from metrics_checks import parsed, value
from pg_cluster import PgCluster

PROBE = 0.2  # probe_interval: how often the standby's lag is measured
TICK = 0.1  # alert_interval: how often the rule is evaluated
THRESHOLD = 0.5  # seconds of lag
FOR = 0.5  # seconds the lag must stay above THRESHOLD
SLACK = 1.0  # a loaded 2-core machine: probes and thread wake-ups may be late


def firing(pool: SyncDatabasePool) -> float:
    """dbpool_alert_firing of the rule, the same in metrics() and in the text."""
    labels = (("engine", "postgresql"), ("pool", "db"), ("rule", "replica_lag"))
    text_value = parsed(pool.prometheus_text("db"))[("dbpool_alert_firing", labels)]
    assert text_value == value(pool.metrics("db"), "dbpool_alert_firing", rule="replica_lag")
    return float(text_value)


def lag_gauge(pool: SyncDatabasePool, port: int) -> float | None:
    """dbpool_replica_lag_seconds of the endpoint on `port`, None while unknown."""
    hits = [v for (name, labels), v in parsed(pool.prometheus_text("db")).items()
            if name == "dbpool_replica_lag_seconds"
            and dict(labels)["endpoint"].startswith(f"127.0.0.1:{port}/")]
    return hits[0] if hits else None


def wait_for(check: object, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < end, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def test_replica_lag_fires_while_replay_is_paused_and_resolves_after_resume(
        pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="db_pool")
    events = Events()
    replica_port = pg_cluster.ports[1]
    with SyncDatabasePool() as pool:
        pool.create_pool("db", url=pg_cluster.multi_host_dsn(), probe_interval=PROBE,
                         validate_after=0.0, alert_interval=TICK, on_alert=events,
                         alerts=[{"rule": "replica_lag", "threshold": THRESHOLD, "for": FOR}])
        pool.execute("db", "CREATE TABLE lag (id int)")
        pool.execute("db", "INSERT INTO lag VALUES (1)")
        written = pg_cluster.sql(0, "SELECT pg_current_wal_lsn()")
        wait_for(lambda: pg_cluster.sql(
            1, f"SELECT pg_last_wal_replay_lsn() >= '{written}'::pg_lsn") == "t", 10,
            "the standby replayed the row")
        wait_for(lambda: lag_gauge(pool, replica_port) == 0.0, 5, "a probe measures lag 0")
        # a replica that keeps up: the rule stays quiet for longer than it needs to fire
        time.sleep(THRESHOLD + FOR + PROBE + 2 * TICK)
        assert events.got == [] and firing(pool) == 0

        pg_cluster.sql(1, "SELECT pg_wal_replay_pause()")
        paused = time.monotonic()
        # synchronous_commit = on waits for the standby's flush, not its replay
        pool.execute("db", "INSERT INTO lag VALUES (2)")
        fired = events.wait("firing", "replica_lag", timeout=FOR + PROBE + 2 * TICK + SLACK + 5)
        fired_s = fired - paused
        assert firing(pool) == 1
        lag = lag_gauge(pool, replica_port)
        assert lag is not None and lag > THRESHOLD

        pg_cluster.sql(1, "SELECT pg_wal_replay_resume()")
        resumed = time.monotonic()
        resolved = events.wait("resolved", "replica_lag", timeout=PROBE + 2 * TICK + SLACK + 5)
        resolved_s = resolved - resumed
        print(f"\nreplica_lag: fired {fired_s:.2f} s after the pause (for={FOR} s), "
              f"resolved {resolved_s:.2f} s after the resume")
        # the lag was 0 until the pause: the alert cannot fire before `for` has
        # passed after it, and fires within a probe and two evaluations more
        assert FOR <= fired_s <= FOR + PROBE + 2 * TICK + SLACK
        assert resolved_s <= PROBE + 2 * TICK + SLACK
        assert firing(pool) == 0
        after = lag_gauge(pool, replica_port)
        assert after is not None and after <= THRESHOLD

    assert events.kinds() == [("firing", "replica_lag"), ("resolved", "replica_lag")]
    event = events.got[0][1]
    assert event["pool"] == "db" and event["condition"] == "replica_lag"
    assert event["value"] > THRESHOLD and event["threshold"] == THRESHOLD and event["for"] == FOR
    assert f"127.0.0.1:{replica_port}/dbpool_test" in event["message"]
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "alert replica_lag" in r.getMessage()]
    assert [level for level, _ in lines] == [logging.WARNING, logging.INFO], lines
    assert "firing: replica lag" in lines[0][1] and "resolved" in lines[1][1]
    assert "dbpool-secret" not in caplog.text
