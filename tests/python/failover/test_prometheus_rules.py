"""docs/prometheus_alerts.yml against what the pools really export.

- Every rule's expression names metrics, labels and label values that a
  real /metrics scrape has (PyYAML reads the file; promql_selectors.py
  scans the expressions). The scrape is of pools on real PostgreSQL
  streaming replication with every optional family on (alert rules, leak
  detection, slow-query log), so even dbpool_replica_lag_seconds is there.
- The same check finds each of a set of broken rules broken (it can fail).
- `promtool check rules` (Prometheus' own parser) accepts the file, where
  promtool is installed: on PATH or named by $PROMTOOL. It is not a test
  dependency (Debian's `prometheus` package is about 100 MB and brings a
  server), so without it that test is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from db_pool import SyncDatabasePool
from metrics_checks import parsed
from pg_cluster import PgCluster
from promql_selectors import Samples, check_rule, check_rules_file

RULES_FILE = Path(__file__).resolve().parents[3] / "docs" / "prometheus_alerts.yml"

ALL_RULES = [{"rule": "endpoint_down"}, {"rule": "leak_suspected"},
             {"rule": "saturation", "threshold": 0.9},
             {"rule": "acquire_wait_p99", "threshold": 1.0},
    {"rule": "error_rate", "threshold": 0.5},
    {"rule": "replica_lag", "threshold": 30},
]


@pytest.fixture(scope="module")
def rules() -> Any:
    return yaml.safe_load(RULES_FILE.read_text())


def scrape_all_families(cluster: PgCluster) -> Samples:
    """/metrics of a pool on the cluster with every optional family on,
    once the standby's lag has been measured."""
    with SyncDatabasePool() as pool:
        pool.create_pool("app", url=cluster.multi_host_dsn(), probe_interval=0.2,
                         alerts=ALL_RULES, leak_detection_threshold=60,
                         slow_query_threshold=10, alert_interval=0.1)
        pool.query("app", "SELECT 1 AS one")
        server = pool.serve_metrics(port=0)
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(server.url + "metrics", timeout=5) as r:
                samples = parsed(r.read().decode())
            if any(name == "dbpool_replica_lag_seconds" for name, _ in samples):
                return samples
            assert time.monotonic() < deadline, "no replica lag measured within 10 s"
            time.sleep(0.1)


def test_every_rule_selects_what_the_pools_export(pg_cluster: PgCluster, rules: Any) -> None:
    samples = scrape_all_families(pg_cluster)
    n, problems = check_rules_file(rules, samples)
    assert problems == []
    assert n == 7  # one per in-process condition, and dbpool_alert_firing

    # the check is not blind: each broken rule below is found out
    broken = {
        "db_client_connection_in_use": "not in the exposition",  # no such metric
        'dbpool_endpoint_health{state="down"} == 1': "has no label 'state'",
        'dbpool_endpoint_health{health="broken"} == 1': "not one of its values",
        'dbpool_requests_total{outcome=~"ok|fine"}': "'fine' is not one of its values",
        "sum by (host) (dbpool_requests_total)": "by (host)",
        "dbpool_request_total": "not in the exposition",  # the family's name without _total
    }
    for expr, why in broken.items():
        found = check_rule({"alert": "Broken", "expr": expr}, samples)
        assert any(why in p for p in found), (expr, found)
    aggregated = {"alert": "Lost", "expr": "sum by (pool) (dbpool_endpoint_health)",
                  "annotations": {"summary": "{{ $labels.endpoint }}"}}
    assert any("$labels.endpoint" in p for p in check_rule(aggregated, samples))


def promtool() -> str | None:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    return path if path and Path(path).is_file() else None


def test_promtool_accepts_the_rules_file() -> None:
    tool = promtool()
    if tool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus', not a test "
                    "dependency: about 100 MB with a server); put it on PATH or set $PROMTOOL "
                    "to check docs/prometheus_alerts.yml with Prometheus' own parser")
    out = subprocess.run([tool, "check", "rules", str(RULES_FILE)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 7 rules found" in out.stdout, out.stdout


def test_promtool_refuses_a_broken_rules_file(tmp_path: Path) -> None:
    """The promtool test can fail: the same file with one expression broken."""
    tool = promtool()
    if tool is None:
        pytest.skip("promtool is not installed (see test_promtool_accepts_the_rules_file)")
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES_FILE.read_text().replace(
        "expr: dbpool_endpoint_health{health=\"down\"} == 1",
        "expr: dbpool_endpoint_health{health=\"down\" == 1"))
    assert broken.read_text() != RULES_FILE.read_text()
    out = subprocess.run([tool, "check", "rules", str(broken)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0, out.stdout
