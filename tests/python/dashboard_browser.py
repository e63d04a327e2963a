"""What the dashboard's browser tests share: starting Debian's Chromium
through Playwright (skipping, saying why, only when it cannot start),
scraping /metrics with the real Prometheus parser, and checking that the
page's pool and endpoint rows show the scrape's numbers."""

from __future__ import annotations

import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from metrics_checks import parsed

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and
                 Path(p).exists()), None)
NOT_INSTALLED = ("Chromium is not installed (Debian package 'chromium'; `make browser-deps` "
                 "installs it where apt-get works): the dashboard browser test cannot run")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def launch(pw: Any) -> Any:
    """Debian's headless Chromium (never Playwright's own download); skips
    the test with the reason when it is missing or cannot start."""
    if CHROMIUM is None:
        pytest.skip(NOT_INSTALLED)
    try:
        return pw.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=30_000)
    except Exception as exc:  # noqa: BLE001 - any launch failure is the reason to skip
        pytest.skip(f"Chromium ({CHROMIUM}) cannot start, so the dashboard browser test "
                    f"cannot run: {str(exc).splitlines()[0]}")


def open_dashboard(browser: Any, url: str, errors: list[str]) -> Any:
    """A page on the dashboard, connected to /events; script errors go to `errors`."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#conn.b-ok", timeout=10_000)
    return page


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url + "metrics", timeout=5) as r:
        return parsed(r.read().decode())


def metric(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


def wait_for_snapshot_after(page: Any, unix_time: float) -> None:
    """Until the page draws a snapshot taken after `unix_time` (at most 5 s)."""
    page.wait_for_function(f"window.dbpoolSnapshot.time > {unix_time + 0.05}", timeout=5_000)


def _cells(page: Any, row_class: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.evaluate("""(cls) => [...document.querySelectorAll('tr.' + cls)].map(tr => {
        const o = {pool: tr.dataset.pool, endpoint: tr.dataset.endpoint || ''};
        tr.querySelectorAll('td[data-k]').forEach(td => { o[td.dataset.k] = td.textContent; });
        return o; })""", row_class)
    return rows


def check_pool_rows(page: Any, samples: Samples) -> list[dict[str, str]]:
    """Every pool row equals the scrape: requests, ok, errors, connections
    by state, max, waiting, failovers. Returns the rows."""
    rows = _cells(page, "pool")
    for row in rows:
        p = row["pool"]
        total = metric(samples, "dbpool_requests_total", pool=p)
        ok = metric(samples, "dbpool_requests_total", pool=p, outcome="ok")
        cancelled = metric(samples, "dbpool_requests_total", pool=p, outcome="cancelled")
        assert int(row["requests"]) == total, row
        assert int(row["ok"]) == ok, row
        assert int(row["errors"]) == total - ok - cancelled, row
        for state in ("idle", "used", "opening", "closing"):
            assert int(row[state]) == metric(samples, "db_client_connection_count",
                                             pool=p, state=state), (row, state)
        assert int(row["max"]) == metric(samples, "db_client_connection_max", pool=p)
        assert int(row["waiting"]) == metric(
            samples, "db_client_connection_pending_requests", pool=p)
        assert int(row["failovers"]) == metric(samples, "dbpool_failovers_total", pool=p), row
    return rows


def check_endpoint_rows(page: Any, samples: Samples) -> list[dict[str, str]]:
    """Every endpoint row equals the scrape: health, ★ for the primary,
    connections by state, max. Returns the rows."""
    rows = _cells(page, "ep")
    for row in rows:
        where = {"pool": row["pool"], "endpoint": row["endpoint"]}
        health = [h for h in ("up", "suspect", "down")
                  if metric(samples, "dbpool_endpoint_health", health=h, **where) == 1]
        assert len(health) == 1 and row["state"].startswith(health[0]), (row, health)
        primary = metric(samples, "dbpool_endpoint_primary", **where)
        assert ("★" in row["state"]) == (primary == 1), (row, primary)
        for state in ("idle", "used", "opening", "closing"):
            assert int(row[state]) == metric(samples, "db_client_connection_count",
                                             state=state, **where), (row, state)
        assert int(row["max"]) == metric(samples, "db_client_connection_max", **where), row
    return rows


#: The metrics the page's rows show (a scrape also has counters the page
#: does not, such as connect failures of a down endpoint's retries).
SHOWN = ("dbpool_requests_total", "db_client_connection_count", "db_client_connection_max",
         "db_client_connection_pending_requests", "dbpool_failovers_total",
         "dbpool_endpoint_health", "dbpool_endpoint_primary")


def _shown(samples: Samples) -> Samples:
    return {k: v for k, v in samples.items() if k[0] in SHOWN}


def stop_and_compare(page: Any, url: str, stop: Any, worker: Any) -> tuple[
        list[dict[str, str]], list[dict[str, str]]]:
    """Stops the workload, then compares the page's pool and endpoint rows
    with /metrics: a scrape, a snapshot drawn after it, a second scrape;
    when the two scrapes agree on what the page shows, the page must show
    it (a janitor or probe that changed a gauge in between: once more, at
    most 5 times). Returns the rows."""
    stop.set()
    worker.join(30)
    assert not worker.is_alive(), "the workload did not stop within 30 s"
    for _ in range(5):
        before = scrape(url)
        wait_for_snapshot_after(page, time.time())
        after = scrape(url)
        if _shown(before) == _shown(after):
            return check_pool_rows(page, after), check_endpoint_rows(page, after)
    raise AssertionError("the metrics the page shows changed in each of 5 seconds "
                         "after the workload stopped")
