"""/readyz on real PostgreSQL streaming replication: a pool that writes is
ready while it has a reachable primary; the primary stopped, /readyz says
503 with per-pool detail within a bounded time, with no request from
anyone (the pool's own probes see it); the primary started again, or a
standby promoted, and it is 200 again. A pool named in read_only stays
ready on the standby throughout. Each bound is asserted and printed."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from db_pool import SyncDatabasePool
from pg_cluster import PgCluster

PROBE = 0.2  # probe_interval of these pools
#: The stop or kill is seen at the next probe (PROBE), which fails at once
#: (connection refused); the rest is slack for a loaded 2-core machine.
DOWN_WITHIN = 3.0
#: A down endpoint is retried after a backoff of 100 ms doubling to 5 s; the
#: primary is down for about DOWN_WITHIN s, so its next retry comes well
#: before the cap. 5 s cap + one probe + the server's start-up + slack.
UP_WITHIN = 8.0


def readyz(url: str) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of GET /readyz; 503 is an answer, not an error."""
    try:
        with urllib.request.urlopen(url + "readyz", timeout=5) as r:
            assert r.headers["Content-Type"] == "application/json"
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        assert e.headers["Content-Type"] == "application/json"
        return e.code, json.loads(e.read())


def wait_status(url: str, status: int, timeout: float) -> tuple[float, dict[str, Any]]:
    """Polls /readyz until it answers `status`; (seconds it took, body)."""
    start = time.monotonic()
    while True:
        got, body = readyz(url)
        if got == status:
            return time.monotonic() - start, body
        assert time.monotonic() - start < timeout, \
            f"/readyz still {got}, not {status}, after {timeout} s: {body}"
        time.sleep(0.05)


def by_port(report: dict[str, Any], port: int) -> dict[str, Any]:
    eps = [e for e in report["endpoints"] if e["endpoint"].startswith(f"127.0.0.1:{port}/")]
    assert len(eps) == 1, report
    return eps[0]  # type: ignore[no-any-return]


def serve(pool: SyncDatabasePool, cluster: PgCluster) -> str:
    """A writing pool "app" and a read-only pool "reports" on the cluster,
    both ready, served on a free port; the server's URL."""
    for name in ("app", "reports"):
        pool.create_pool(name, url=cluster.multi_host_dsn(), probe_interval=PROBE,
                         validate_after=0.0, read_from="any")
    server = pool.serve_metrics(port=0, read_only=["reports"])
    status, body = readyz(server.url)
    assert status == 200, body
    assert body["ready"] is True and body["reason"] == ""
    app = body["pools"]["app"]
    assert app["ready"] is True and app["needs"] == "primary"
    assert by_port(app, cluster.ports[0])["is_primary"] is True
    assert body["pools"]["reports"]["needs"] == "any"
    return str(server.url)


def check_not_ready(body: dict[str, Any], cluster: PgCluster) -> None:
    """The 503 body: "app" has no reachable primary and says why, per endpoint;
    "reports" is served by the standby."""
    assert body["ready"] is False and body["reason"] == "not ready: app", body
    app = body["pools"]["app"]
    assert app["ready"] is False and app["reason"] == "no reachable primary"
    old = by_port(app, cluster.ports[0])
    assert old["health"] == "down" and old["failures"] >= 1
    assert old["last_error"], old  # the server's own words
    assert by_port(app, cluster.ports[1])["health"] == "up"
    reports = body["pools"]["reports"]
    assert reports["ready"] is True and reports["reason"] == ""
    assert "dbpool-secret" not in json.dumps(body)


def test_readyz_503_while_the_primary_is_stopped_and_200_when_it_returns(
        pg_cluster_factory: Callable[..., PgCluster]) -> None:
    # asynchronous: with a synchronous standby and the primary stopped
    # nothing would differ, but the restarted primary must not wait for it
    cluster = pg_cluster_factory(synchronous=False)
    with SyncDatabasePool() as pool:
        url = serve(pool, cluster)
        stopped = time.monotonic()
        cluster.stop(0)  # `pg_ctl stop -m fast`: the pool's connections are cut
        _, body = wait_status(url, 503, DOWN_WITHIN + 2)
        down_s = time.monotonic() - stopped  # from the start of the stop
        check_not_ready(body, cluster)

        started = time.monotonic()
        cluster.start(0)
        _, body = wait_status(url, 200, UP_WITHIN + 2)
        up_s = time.monotonic() - started
        print(f"\n/readyz: 503 {down_s:.2f} s after `pg_ctl stop` began, "
              f"200 again {up_s:.2f} s after `pg_ctl start` began")
        assert down_s < DOWN_WITHIN
        assert up_s < UP_WITHIN
        assert body["ready"] is True
        assert by_port(body["pools"]["app"], cluster.ports[0])["health"] == "up"
        assert pool.execute("app", "CREATE TABLE back (id int)") == 0  # it takes writes


def test_readyz_follows_a_failover_to_the_promoted_standby(
        pg_cluster: PgCluster) -> None:
    with SyncDatabasePool() as pool:
        url = serve(pool, pg_cluster)
        killed = time.monotonic()
        pg_cluster.kill(0)  # a crash this time
        wait_status(url, 503, DOWN_WITHIN + 2)
        down_s = time.monotonic() - killed
        check_not_ready(readyz(url)[1], pg_cluster)

        promoted = time.monotonic()
        pg_cluster.promote(1)  # returns once node 1 takes writes
        _, body = wait_status(url, 200, UP_WITHIN + 2)
        up_s = time.monotonic() - promoted
        print(f"\n/readyz: 503 {down_s:.2f} s after the kill, "
              f"200 {up_s:.2f} s after `pg_ctl promote` began")
        assert down_s < DOWN_WITHIN
        # the promoted standby was up all along: only its next probe is awaited
        assert up_s < 2 * PROBE + 3.0
        new = by_port(body["pools"]["app"], pg_cluster.ports[1])
        assert new["is_primary"] is True and new["role"] == "primary"
        assert by_port(body["pools"]["app"], pg_cluster.ports[0])["health"] == "down"
