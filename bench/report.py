"""Tables and plots for bench/run.py: medians over repetitions, ratios to db_pool.

Ratios always read "how many times better db_pool is": a contender's
median time / db_pool's median time, or db_pool's median QPS / the
contender's. Above 1 db_pool wins, below 1 it loses.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Callable

Runs = list[dict[str, Any]]
Results = dict[str, Runs]

OURS = ("db_pool", "db_pool_sync")
LIMITS = ("psql_copy", "pgbench", "mariadb_load_data", "redis_benchmark")


def median(runs: Runs, key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def label(contender: str) -> str:
    return f"{contender} (limit)" if contender in LIMITS else contender


def rss(runs: Runs) -> str:
    m = median(runs, "peak_rss_mib")
    return "–" if math.isnan(m) else f"{m:.0f}"


def table_time(results: Results) -> list[str]:
    """Bulk workloads: time and peak RSS, fastest first."""
    ours = median(results["db_pool"], "seconds")
    lines = ["| contender | median s | min – max s | peak RSS MiB | time / db_pool |",
             "|---|---:|---:|---:|---:|"]
    for c, runs in sorted(results.items(), key=lambda kv: median(kv[1], "seconds")):
        t = median(runs, "seconds")
        lo, hi = min(r["seconds"] for r in runs), max(r["seconds"] for r in runs)
        lines.append(f"| {label(c)} | {t:.3f} | {lo:.3f} – {hi:.3f} | "
                     f"{rss(runs)} | {t / ours:.2f} |")
    return lines + [""]


def table_qps(results: Results, base: str = "db_pool") -> list[str]:
    """Small-query workloads: throughput and latency, fastest first; the
    last column compares each with `base`."""
    ours = median(results[base], "qps")
    lines = ["| contender | median QPS | min – max QPS | p50 ms | p99 ms | "
             f"{label(base)} QPS / this |",
             "|---|---:|---:|---:|---:|---:|"]
    for c, runs in sorted(results.items(), key=lambda kv: -median(kv[1], "qps")):
        q = median(runs, "qps")
        lo, hi = min(r["qps"] for r in runs), max(r["qps"] for r in runs)
        lines.append(f"| {label(c)} | {q:,.0f} | {lo:,.0f} – {hi:,.0f} | "
                     f"{median(runs, 'p50_ms'):.3f} | {median(runs, 'p99_ms'):.3f} | "
                     f"{ours / q:.2f} |")
    return lines + [""]


def ratio_summary(results: Results, key: str) -> str:
    """One line: db_pool against every peer (limits named apart)."""
    ours = median(results["db_pool"], key)
    parts = []
    for c, runs in results.items():
        if c in OURS:
            continue
        r = median(runs, key) / ours if key == "seconds" else ours / median(runs, key)
        parts.append(f"{label(c)} {r:.2f}")
    return ", ".join(parts)


def plot(path: Path, title: str, panels: list[tuple[str, dict[str, float], str]]) -> None:
    """One row of horizontal bar charts; panels are (subtitle, {name: value}, x label).
    db_pool's bars are red, the server's limits (and the seed) grey, the peers blue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = 0.8 + 0.38 * max(len(values) for _, values, _ in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), height), squeeze=False)
    for ax, (subtitle, values, xlabel) in zip(axes[0], panels):
        names = [n for n in sorted(values, key=values.__getitem__) if not math.isnan(values[n])]
        colors = ["#d62728" if n.startswith("db_pool") else
                  "#999999" if n in LIMITS or n == "seed" else "#1f77b4" for n in names]
        bars = ax.barh([label(n) for n in names], [values[n] for n in names], color=colors)
        ax.bar_label(bars, labels=[f"{values[n]:,.0f}" if values[n] >= 100 else
                                   f"{values[n]:.3g}" for n in names], padding=3, fontsize=8)
        ax.set_title(subtitle, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.margins(x=0.18)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def medians(results: Results, key: str) -> dict[str, float]:
    return {c: median(runs, key) for c, runs in results.items()}


# ---- the goals, each marked met or not ---------------------------------------

def _qps(raw: dict[str, Results], name: str, ours: str, peer: str) -> float:
    return median(raw[name][ours], "qps") / median(raw[name][peer], "qps")


def _speed(raw: dict[str, Results], name: str, ours: str, peer: str) -> float:
    return median(raw[name][peer], "seconds") / median(raw[name][ours], "seconds")


def goals_table(raw: dict[str, Results]) -> list[str]:
    """The performance goals (issue 13; W7: issue 16; W8: the Redis engine) against this run's
    medians: each a ratio where above the target is met (P4: below)."""
    rows: list[tuple[str, str, float, float, bool]] = []  # workload, measure, ratio, target, higher

    def add(workload: str, measure: str, ratio: Callable[[], float], target: float,
            higher: bool = True) -> None:
        try:
            rows.append((workload, measure, ratio(), target, higher))
        except KeyError:  # the workload did not run (--only)
            pass

    for name, title in [("W1 c=10", "W1 c=10, bench table"),
                        ("W1 pgbench table", "W1 c=10, pgbench's table")]:
        add(title, "db_pool / asyncpg + DataFrame, QPS",
            lambda n=name: _qps(raw, n, "db_pool", "asyncpg_df"), 2.0)
        add(title, "db_pool / asyncpg records, QPS",
            lambda n=name: _qps(raw, n, "db_pool", "asyncpg"), 1.5)
        add(title, "db_pool / pgbench -S -M prepared, QPS",
            lambda n=name: _qps(raw, n, "db_pool", "pgbench"), 0.5)
    add("W1 c=10 beside a CPU hog", "db_pool / asyncpg + DataFrame, QPS",
        lambda: _qps(raw, "W1 CPU hog", "db_pool", "asyncpg_df"), 1.5)
    w2 = next((k for k in raw if k.startswith("W2 ") and "partitioned" not in k), "W2")
    add("W2 bulk read, one connection", "psql binary COPY time / db_pool time",
        lambda: _speed(raw, w2, "db_pool", "psql_copy"), 1.0)
    part = next((k for k in raw if k.startswith("W2 partitioned")), "W2 partitioned")
    for n in (2, 4):
        add(f"W2 partitioned, N={n}", "ConnectorX time / db_pool time, same N",
            lambda n=n: _speed(raw, part, f"db_pool_p{n}", f"connectorx_p{n}"), 1.5)
    add("W3 bulk write", "ADBC time / db_pool time", lambda: _speed(raw, "W3", "db_pool", "adbc"),
        1.5)
    add("W3 bulk write", "psql binary COPY time / db_pool time",
        lambda: _speed(raw, "W3", "db_pool", "psql_copy"), 1 / 1.3)
    add("W4 point, sync", "db_pool / sqlite3 + DataFrame, QPS",
        lambda: _qps(raw, "W4 point", "db_pool_sync", "sqlite3_df"), 1.0)
    add("W4 point, async", "db_pool / aiosqlite + DataFrame, QPS",
        lambda: _qps(raw, "W4 point", "db_pool", "aiosqlite_df"), 3.0)
    add("P4 peak memory", "(peak - idle) / DataFrame size",
        lambda: ((median(raw["P4 query"]["db_pool_query"], "peak_rss_mib")
                  - median(raw["P4 query"]["db_pool_query"], "idle_mib"))
                 / median(raw["P4 query"]["db_pool_query"], "data_mib")), 1.3, higher=False)
    add("P5 10,000 waiters", "QPS with 10,000 tasks / with 100",
        lambda: _qps(raw, "P5", "db_pool_10000_tasks", "db_pool_100_tasks"), 0.9)
    add("W6 execute_many", "asyncpg time / db_pool time",
        lambda: _speed(raw, "W6", "db_pool", "asyncpg"), 1.5)
    add("W6 execute_many", "psycopg time / db_pool time",
        lambda: _speed(raw, "W6", "db_pool", "psycopg"), 1.5)
    add("W7 MySQL read", "ConnectorX time / db_pool time",
        lambda: _speed(raw, "W7 read", "db_pool", "connectorx"), 2.0)
    add("W7 MySQL read", "mysqlclient + DataFrame time / db_pool time",
        lambda: _speed(raw, "W7 read", "db_pool", "mysqlclient_df"), 3.0)
    add("W7 MySQL point c=10", "db_pool / asyncmy + DataFrame, QPS",
        lambda: _qps(raw, "W7 point c=10", "db_pool", "asyncmy_df"), 1.5)
    add("W7 MySQL point c=10", "db_pool / asyncmy rows, QPS",
        lambda: _qps(raw, "W7 point c=10", "db_pool", "asyncmy"), 1.0)
    add("W7 MySQL write", "asyncmy executemany time / db_pool time",
        lambda: _speed(raw, "W7 write", "db_pool", "asyncmy"), 2.0)
    add("W7 MySQL write", "mariadb client LOAD DATA time / db_pool time",
        lambda: _speed(raw, "W7 write", "db_pool", "mariadb_load_data"), 1 / 1.5)
    add("W8 Redis scan into a DataFrame", "redis-py (hiredis) + DataFrame time / db_pool time",
        lambda: _speed(raw, "W8 scan", "db_pool", "redis_py"), 3.0)
    add("W8 Redis GET c=50", "db_pool / redis.asyncio, ops/s",
        lambda: _qps(raw, "W8 GET c=50", "db_pool", "redis_py"), 1.5)
    add("W8 Redis pipelines of 100 GET", "db_pool / redis-benchmark -P 100, ops/s",
        lambda: _qps(raw, "W8 pipeline", "db_pool", "redis_benchmark"), 1 / 1.5)
    add("W8 Redis write_frame as hashes", "redis-py HSET pipelines time / db_pool time",
        lambda: _speed(raw, "W8 write", "db_pool", "redis_py"), 3.0)
    lines = ["| workload | measure | this run | goal | met |", "|---|---|---:|---:|---|"]
    for workload, measure, ratio, target, higher in rows:
        met = ratio >= target if higher else ratio <= target
        lines.append(f"| {workload} | {measure} | {ratio:.2f} | {'≥' if higher else '≤'} "
                     f"{target:.2f} | {'met' if met else '**missed**'} |")
    return lines + [""]
