"""pool.serve_metrics(): /metrics equals prometheus_text() and parses with
the real Prometheus parser, /healthz, /readyz following a real endpoint
that goes away and comes back, /events streaming snapshots, 50 pools, the
bind checks (loopback only unless asked, port in use, close frees the
port) and scrapes while pools are created and closed. Real sockets, real
SQLite files; the browser test is test_dashboard_browser.py."""

from __future__ import annotations

import errno
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from db_pool import ConfigurationError, DatabasePool, SyncDatabasePool
from metrics_checks import parsed

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def get(url: str, timeout: float = 5.0) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def wait_for(check: Any, timeout: float = 10.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s")
        time.sleep(every)


def read_events(url: str, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The first `n` snapshots /events sends."""
    out = []
    with urllib.request.urlopen(url + "events", timeout=timeout) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        while len(out) < n:
            line = r.readline().decode()
            assert line, "the stream ended"
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


def test_metrics_equals_prometheus_text_sync(spool: SyncDatabasePool) -> None:
    spool.create_pool("a", url="sqlite:///:memory:")
    spool.create_pool('odd "name"\nwith\\escapes', url="sqlite:///:memory:")
    # the families kept in Python (alerts, leaks, slow queries) are served too
    spool.create_pool("watched", url="sqlite:///:memory:", alerts=[{"rule": "endpoint_down"}],
                      leak_detection_threshold=60, slow_query_threshold=10)
    for _ in range(3):
        spool.query("a", "SELECT 1 AS x")
    server = spool.serve_metrics(port=0)
    assert server.url == f"http://127.0.0.1:{server.port}/" and server.port > 0
    status, ctype, body = get(server.url + "metrics")
    assert status == 200 and ctype == PROMETHEUS_TYPE
    assert body == spool.prometheus_text()  # nothing ran in between
    samples = parsed(body)
    key = ("dbpool_requests_total", (("engine", "sqlite"), ("outcome", "ok"), ("pool", "a")))
    assert samples[key] == 3
    watched = (("engine", "sqlite"), ("pool", "watched"))
    assert samples[("dbpool_alert_firing", (*watched, ("rule", "endpoint_down")))] == 0
    assert samples[("dbpool_leaks_reported_total", watched)] == 0
    assert samples[("dbpool_slow_queries_total", watched)] == 0
    assert any(dict(labels).get("pool") == 'odd "name"\nwith\\escapes' for _, labels in samples)
    status, ctype, body = get(server.url + "healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, _, _ = get(server.url + "nope")
    assert status == 404


async def test_metrics_and_close_with_the_async_pool(tmp_path: Path) -> None:
    pool = DatabasePool()
    await pool.create_pool("a", url=f"sqlite:///{tmp_path / 'a.db'}")
    await pool.query("a", "SELECT 1 AS x")
    server = pool.serve_metrics(port=0)
    status, ctype, body = get(server.url + "metrics")  # blocks the loop briefly: fine here
    assert status == 200 and ctype == PROMETHEUS_TYPE and body == pool.prometheus_text()
    status, _, body = get(server.url + "readyz")
    assert status == 200 and json.loads(body)["pools"]["a"]["ready"] is True
    await pool.close()  # closes the server too
    assert "closed" in repr(server)
    with pytest.raises(OSError):
        get(server.url + "healthz", timeout=2)
    server.close()  # idempotent


def test_readyz_follows_an_endpoint_that_goes_and_returns(tmp_path: Path,
                                                          spool: SyncDatabasePool) -> None:
    """A SQLite file in a folder that is moved away: once its one connection
    reaches max_lifetime, the pool cannot reopen it (down, 503); the folder
    back, the janitor refills min_size after its backoff (up, 200), with
    no request from anyone."""
    home = tmp_path / "home"
    home.mkdir()
    spool.create_pool("gone", url=f"sqlite:///{home / 'db.sqlite'}", min_size=1, max_size=1,
                      max_lifetime=0.3, lifetime_jitter=0)
    spool.create_pool("steady", url="sqlite:///:memory:")
    server = spool.serve_metrics(port=0)
    status, _, body = get(server.url + "readyz")
    assert status == 200, body
    (home).rename(tmp_path / "away")

    def not_ready() -> Any:
        status, ctype, body = get(server.url + "readyz")
        return (status, ctype, json.loads(body)) if status == 503 else None

    status, ctype, report = wait_for(not_ready)
    assert ctype == "application/json" and report["ready"] is False
    assert report["pools"]["steady"]["ready"] is True
    gone = report["pools"]["gone"]
    assert gone["ready"] is False and gone["reason"] == "no endpoint is reachable"
    assert gone["endpoints"][0]["health"] == "down" and gone["endpoints"][0]["failures"] >= 1
    assert "unable to open" in gone["endpoints"][0]["last_error"]
    assert "gone" in report["reason"] and "steady" not in report["reason"]

    (tmp_path / "away").rename(home)
    wait_for(lambda: get(server.url + "readyz")[0] == 200)
    kinds = [e["kind"] for e in spool.stats("gone")["events"]]
    assert kinds[-2:] == ["down", "up"], kinds  # serve_metrics watches every pool's events


def test_read_only_pools_and_unknown_roles(spool: SyncDatabasePool) -> None:
    spool.create_pool("r", url="sqlite:///:memory:")
    server = spool.serve_metrics(port=0, read_only=["r"])
    report = json.loads(get(server.url + "readyz")[2])
    assert report["pools"]["r"]["needs"] == "any" and report["pools"]["r"]["ready"]


def test_events_stream_snapshots_once_a_second(spool: SyncDatabasePool) -> None:
    spool.create_pool("a", url="sqlite:///:memory:", max_size=2)
    server = spool.serve_metrics(port=0)
    first, second, third = read_events(server.url, 3)
    assert 0.8 < third["time"] - second["time"] < 1.5
    assert [p["id"] for p in first["pools"]] == ["a"]
    spool.query("a", "SELECT 1")
    snap = read_events(server.url, 1)[0]
    pool = snap["pools"][0]
    assert pool["requests"]["ok"] == 1 and sum(pool["requests"].values()) == 1
    assert pool["endpoints"][0]["max"] == 2 and pool["endpoints"][0]["idle"] == 1
    assert snap["bounds"][-1] is None and len(snap["bounds"]) == len(pool["use"])
    assert pool["use"][-1] == 1 and pool["wait"][-1] == 1  # cumulative counts
    assert pool["ready"] is True
    # the page itself: one self-contained file
    status, ctype, page = get(server.url)
    assert status == 200 and ctype == "text/html; charset=utf-8"
    assert "EventSource" in page and "<script src" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "").replace('"http://www.w3.org/2000/svg"', "")


def test_fifty_pools(spool: SyncDatabasePool) -> None:
    ids = [f"pool-{i:02d}" for i in range(50)]
    for i in ids:
        spool.create_pool(i, url="sqlite:///:memory:", max_size=2)
        spool.query(i, "SELECT 1")
    server = spool.serve_metrics(port=0)
    status, _, body = get(server.url + "metrics")
    assert status == 200 and body == spool.prometheus_text()
    pools = {dict(labels)["pool"] for _, labels in parsed(body)}
    assert pools == set(ids)
    report = json.loads(get(server.url + "readyz")[2])
    assert sorted(report["pools"]) == ids and report["ready"]
    snap = json.loads(get(server.url + "api/snapshot")[2])
    assert [p["id"] for p in snap["pools"]] == ids
    assert all(p["requests"]["ok"] == 1 for p in snap["pools"])


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_a_non_loopback_bind_is_refused(spool: SyncDatabasePool, host: str) -> None:
    with pytest.raises(ConfigurationError, match="allow_remote=True|host must be"):
        spool.serve_metrics(host=host, port=0)
    assert not spool._servers


def test_loopback_names_and_bad_ports(spool: SyncDatabasePool) -> None:
    with spool.serve_metrics(host="localhost", port=0) as server:
        assert get(server.url + "healthz")[0] == 200
    for port in (-1, 65536, "9187", 1.5, True):
        with pytest.raises(ConfigurationError, match="port"):
            spool.serve_metrics(port=port)  # type: ignore[arg-type]


def test_allow_remote_binds_all_addresses(spool: SyncDatabasePool) -> None:
    with spool.serve_metrics(host="0.0.0.0", port=0, allow_remote=True) as server:
        assert get(f"http://127.0.0.1:{server.port}/healthz")[0] == 200


def test_a_port_in_use_and_close_frees_it(spool: SyncDatabasePool) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is in use") as raised:
            spool.serve_metrics(port=port)
        assert raised.value.errno == errno.EADDRINUSE
    finally:
        taken.close()
    server = spool.serve_metrics(port=port)  # free now
    with pytest.raises(OSError, match="in use"):
        spool.serve_metrics(port=port)  # a second server on it
    stream = urllib.request.urlopen(server.url + "events", timeout=5)  # held open
    stream.readline()
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 2.0  # an open stream does not hold close()
    again = spool.serve_metrics(port=port)
    assert again.port == port and get(again.url + "healthz")[0] == 200
    stream.close()
    spool.close()  # closes `again`
    with pytest.raises(OSError):
        get(again.url + "healthz", timeout=2)


def test_no_password_anywhere(spool: SyncDatabasePool) -> None:
    """A PostgreSQL pool whose endpoint refuses connections: its error shows
    in readyz and events, and the password shows nowhere."""
    secret = "S3cret-pw-not-shown"
    spool.create_pool("pg", url=f"postgresql://someone:{secret}@127.0.0.1:1/db", min_size=0,
                      connect_timeout=2)
    server = spool.serve_metrics(port=0)
    with pytest.raises(Exception):
        spool.query("pg", "SELECT 1")
    wait_for(lambda: any(e["kind"] == "down" for e in spool.stats("pg")["events"]))
    bodies = [get(server.url + path)[2] for path in ("metrics", "readyz", "api/snapshot", "")]
    bodies.append(json.dumps(read_events(server.url, 1)))
    assert json.loads(bodies[1])["pools"]["pg"]["ready"] is False
    assert any(e["kind"] == "down" for e in json.loads(bodies[2])["events"])
    for body in bodies:
        assert secret not in body and "someone:" not in body


def test_scrapes_while_pools_come_and_go(spool: SyncDatabasePool) -> None:
    server = spool.serve_metrics(port=0)
    stop = threading.Event()
    failures: list[str] = []
    counts = {"metrics": 0, "readyz": 0, "api/snapshot": 0}

    def scrape(path: str) -> None:
        while not stop.is_set():
            try:
                status, _, body = get(server.url + path)
                if path == "metrics":
                    parsed(body)
                elif status not in (200, 503):
                    failures.append(f"{path}: {status}")
                else:
                    json.loads(body)
                counts[path] += 1
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                failures.append(f"{path}: {e!r}")

    threads = [threading.Thread(target=scrape, args=(p,)) for p in counts]
    for t in threads:
        t.start()
    try:
        for i in range(30):
            spool.create_pool(f"p{i}", url="sqlite:///:memory:", min_size=1)
            spool.query(f"p{i}", "SELECT 1")
            if i >= 3:
                spool.close_pool(f"p{i - 3}")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not any(t.is_alive() for t in threads), "a scraper hung"
    assert not failures, failures[:5]
    assert all(n > 0 for n in counts.values()), counts
    assert get(server.url + "healthz")[0] == 200
    pools = {dict(labels)["pool"] for _, labels in parsed(get(server.url + "metrics")[2])}
    assert pools == {"p27", "p28", "p29"}
