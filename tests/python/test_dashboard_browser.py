"""The live dashboard in a real browser: Debian's headless Chromium, driven
by Playwright (its own browser download is never used), opens the page
while a workload runs; the page's numbers must equal /metrics, an endpoint
going down must show in the events within 3 s, and a pool name made of
HTML must show as text. A screenshot is saved under the test's tmp dir;
with DBPOOL_UPDATE_SCREENSHOT=1 it is also copied to docs/dashboard.png (the
picture docs/observability.md shows), so a plain test run leaves the
checkout clean.

Skipped, saying why, only when Chromium is missing or cannot start (`make
browser-deps` installs it with apt-get where it can). What the browser
tests share is in dashboard_browser.py; the failover one is
failover/test_dashboard_failover.py."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from db_pool import SyncDatabasePool
from dashboard_browser import launch, open_dashboard, stop_and_compare

DOCS_PNG = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
HTML_NAME = '<img src=x onerror="window.injected=1">'


def workload(pool: SyncDatabasePool, stop: threading.Event) -> None:
    """Queries on two pools, one in five an error, until stopped (30 s at most)."""
    deadline = time.monotonic() + 30
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        i += 1
        pool_id = "orders" if i % 3 else "reports"
        try:
            if i % 5 == 0:
                pool.query(pool_id, "SELECT no_such_column FROM t")
            else:
                pool.query(pool_id, "SELECT count(*) AS n FROM t")
        except Exception:  # noqa: BLE001 - the errors are the point
            pass
        time.sleep(0.004)


def test_dashboard_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    pool = SyncDatabasePool()
    stop = threading.Event()
    worker = threading.Thread(target=workload, args=(pool, stop))
    try:
        for name in ("orders", "reports"):
            pool.create_pool(name, url=f"sqlite:///{tmp_path / name}.db", min_size=1, max_size=4)
            pool.execute(name, "CREATE TABLE t(x)")
            pool.execute(name, "INSERT INTO t VALUES (1), (2)")
        flaky_dir = tmp_path / "flaky"
        pool.create_pool("flaky", url=f"sqlite:///{flaky_dir / 'db.sqlite'}", min_size=0)
        pool.create_pool(HTML_NAME, url="sqlite:///:memory:")
        for i in range(46):  # 50 pools in all
            pool.create_pool(f"idle-{i:02d}", url="sqlite:///:memory:", max_size=2)
        server = pool.serve_metrics(port=0)
        worker.start()

        with sync_playwright() as pw:
            browser = launch(pw)
            errors: list[str] = []
            page = open_dashboard(browser, server.url, errors)
            # rates need two snapshots; the workload makes them non-zero
            page.wait_for_function(
                "document.getElementById('c-qps').textContent !== '–' && "
                "parseFloat(document.getElementById('c-qps').textContent) > 0", timeout=10_000)
            assert page.locator("#ch-qps path").count() >= 1
            assert page.locator("#ch-lat path").count() >= 1
            assert page.locator("tr.pool").count() == 50

            page.wait_for_timeout(5_000)  # some history for the charts (and the picture)

            # an endpoint goes down: the event is on the page within 3 s
            with pytest.raises(Exception):
                pool.query("flaky", "SELECT 1")
            down_at = time.monotonic()
            page.wait_for_selector('li.event[data-kind="down"][data-pool="flaky"]', timeout=3_000)
            assert time.monotonic() - down_at < 3.0
            flaky_dir.mkdir()
            pool.query("flaky", "SELECT 1")
            page.wait_for_selector('li.event[data-kind="up"][data-pool="flaky"]', timeout=3_000)
            flaky_row = page.locator('tr.pool[data-pool="flaky"] td[data-k="ready"]')
            page.wait_for_function(
                "document.querySelector('tr.pool[data-pool=\"flaky\"] td[data-k=\"ready\"]')"
                ".textContent === 'ready'", timeout=3_000)
            assert flaky_row.inner_text() == "ready"

            # the picture: the workload in the charts, all pools (busy ones
            # first), the events
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)

            # the workload stops; the page's numbers are then the scrape's
            cells, endpoints = stop_and_compare(page, server.url, stop, worker)
            assert len(cells) == 50 and len(endpoints) == 50
            busy = {r["pool"]: r for r in cells}
            assert int(busy["orders"]["requests"]) > 20 and int(busy["orders"]["errors"]) > 0

            # a name made of HTML is text on the page, never markup
            assert page.evaluate("window.injected") is None
            assert HTML_NAME in page.locator("#pool-rows").inner_text()
            assert not errors, errors

            browser.close()
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("DBPOOL_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, DOCS_PNG)
    finally:
        stop.set()
        if worker.is_alive():
            worker.join(10)
        pool.close()
