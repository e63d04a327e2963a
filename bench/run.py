"""Side-by-side benchmarks: db_pool against its peers on the same server, in
the same run, in alternating order, every contender's result checked.

    python bench/run.py [--quick] [--dsn postgresql://...] [--only w1,w2,w4]

Starts a throwaway PostgreSQL (tests/pg_server.py) unless --dsn is given,
loads the data, runs each workload, and writes docs/benchmarks.md plus PNG
plots next to it. Each contender runs in its own process per repetition
(bench/contenders.py), so peak memory is its own and nobody warms a cache
for another. Medians over the repetitions; ratios are contender / db_pool
time (or db_pool / contender QPS): above 1 means db_pool is faster.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pg_server import PgServer  # noqa: E402

WIDE_SQL = "SELECT * FROM bench_wide"
SMALL_SQL = "SELECT id, name, score FROM bench_small WHERE id = $1"


def run_contender(workload: str, contender: str, args: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "contenders.py"), workload, contender,
         json.dumps(args)],
        capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{contender} failed on {workload}:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def load_pg(dsn: str, rows: int, keys: int) -> None:
    setup = f"""
    DROP TABLE IF EXISTS bench_wide, bench_small;
    CREATE TABLE bench_wide AS
      SELECT i::int4 AS i4, (i::int8 * 1000003) AS i8, i / 7.0::float8 AS f8,
             (i % 100000) / 100.0::numeric(12,2) AS n,
             md5(i::text) AS t, timestamp '2020-01-01' + i * interval '1 second' AS ts,
             i % 3 = 0 AS b, date '2000-01-01' + (i % 10000) AS d
      FROM generate_series(1, {rows}) AS i;
    CREATE TABLE bench_small (id int4 PRIMARY KEY, name text, score float8);
    INSERT INTO bench_small SELECT i, 'name-' || i, i * 0.5 FROM generate_series(1, {keys}) i;
    VACUUM ANALYZE bench_wide; VACUUM ANALYZE bench_small;
    """
    subprocess.run(["psql", dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", setup], check=True)


def alternate(workload: str, contenders: list[str], args: dict[str, Any], reps: int,
              ) -> dict[str, list[dict[str, Any]]]:
    """Runs every contender `reps` times, in a fresh random order each round."""
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    rng = random.Random(42)
    for rep in range(reps):
        order = contenders[:]
        rng.shuffle(order)
        for c in order:
            r = run_contender(workload, c, args)
            results[c].append(r)
            print(f"  {workload} rep {rep + 1}/{reps} {c}: {r['seconds']:.3f} s"
                  + (f", {r['qps']:.0f} qps" if "qps" in r else ""), flush=True)
    return results


def check_same(results: dict[str, list[dict[str, Any]]]) -> None:
    sums = {c: {r["checksum"] for r in rs} for c, rs in results.items()
            if rs[0]["checksum"] != "n/a"}
    distinct = {s for v in sums.values() for s in v}
    if len(distinct) > 1:
        raise SystemExit(f"contenders disagree on the result: {sums}")


def median(rs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rs))


def table_bulk(title: str, results: dict[str, list[dict[str, Any]]]) -> list[str]:
    ours = median(results["db_pool"], "seconds")
    lines = [f"### {title}", "",
             "| contender | median s | min s | peak RSS MiB | time / db_pool |",
             "|---|---:|---:|---:|---:|"]
    for c, rs in sorted(results.items(), key=lambda kv: median(kv[1], "seconds")):
        t = median(rs, "seconds")
        lines.append(f"| {c} | {t:.3f} | {min(r['seconds'] for r in rs):.3f} | "
                     f"{median(rs, 'peak_rss_mib'):.0f} | {t / ours:.2f} |")
    return lines + [""]


def table_small(title: str, results: dict[str, list[dict[str, Any]]]) -> list[str]:
    ours = median(results["db_pool"], "qps")
    lines = [f"### {title}", "",
             "| contender | median QPS | p50 ms | p99 ms | db_pool QPS / this |",
             "|---|---:|---:|---:|---:|"]
    for c, rs in sorted(results.items(), key=lambda kv: -median(kv[1], "qps")):
        q = median(rs, "qps")
        lines.append(f"| {c} | {q:,.0f} | {median(rs, 'p50_ms'):.3f} | "
                     f"{median(rs, 'p99_ms'):.3f} | {ours / q:.2f} |")
    return lines + [""]


def plot(path: Path, title: str, results: dict[str, list[dict[str, Any]]], key: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(results, key=lambda c: median(results[c], key))
    values = [median(results[c], key) for c in names]
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(names)))
    bars = ax.barh(names, values, color=["#d62728" if n == "db_pool" else "#1f77b4"
                                         for n in names])
    ax.bar_label(bars, fmt="%.3g", padding=3)
    ax.set_xlabel({"seconds": "median seconds (lower is better)",
                   "qps": "median queries per second (higher is better)"}[key])
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def versions() -> list[str]:
    import importlib.metadata as md

    out = []
    for pkg in ["db-pool", "polars", "connectorx", "adbc-driver-postgresql", "asyncpg",
                "psycopg", "psycopg-pool"]:
        try:
            out.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    server = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return out + [server]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 repetitions")
    ap.add_argument("--dsn", help="use this PostgreSQL instead of a throwaway one")
    ap.add_argument("--only", default="w1,w2,w4", help="workloads to run")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--rows", type=int, default=None, help="rows for the bulk reads")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    opts = ap.parse_args()
    reps = opts.reps or (2 if opts.quick else 5)
    rows = opts.rows or (100_000 if opts.quick else 1_000_000)
    keys = 100_000
    only = set(opts.only.split(","))

    server = None if opts.dsn else PgServer.create()
    dsn = opts.dsn or server.dsn  # type: ignore[union-attr]
    try:
        print(f"loading {rows:,} wide rows and {keys:,} keyed rows ...", flush=True)
        load_pg(dsn, rows, keys)
        u = urlsplit(dsn)
        common = {"url": dsn, "pg_url": dsn, "cx_url": dsn, "adbc_url": dsn, "keys": keys}
        out_dir = Path(opts.out).parent
        out_dir.mkdir(parents=True, exist_ok=True)
        sections: list[str] = []

        if "w2" in only:
            res = alternate("bulk", ["db_pool", "connectorx", "adbc", "psql_copy"],
                            {**common, "sql": WIDE_SQL}, reps)
            check_same(res)
            title = f"W2 bulk read: {rows:,} rows x 8 columns into a DataFrame (PostgreSQL)"
            sections += table_bulk(title, res)
            plot(out_dir / "bench_w2.png", title, res, "seconds")
            sections += ["![W2](bench_w2.png)", ""]

        if "w1" in only:
            queries = 2_000 if opts.quick else 20_000
            for conc in ([10] if opts.quick else [1, 10, 100]):
                res = alternate("small", ["db_pool", "db_pool_sync", "asyncpg", "asyncpg_df",
                                          "psycopg_pool_df", "pgbench"],
                                {**common, "sql": SMALL_SQL, "queries": queries,
                                 "concurrency": conc, "pgbench_seconds": 2 if opts.quick else 5},
                                reps)
                check_same(res)
                title = f"W1 1-row primary-key SELECT, concurrency {conc} (PostgreSQL)"
                sections += table_small(title, res)
                plot(out_dir / f"bench_w1_c{conc}.png", title, res, "qps")
                sections += [f"![W1 c{conc}](bench_w1_c{conc}.png)", ""]

        if "w4" in only:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "bench.db")
                subprocess.run(
                    [sys.executable, "-c",
                     "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]);"
                     "c.execute('CREATE TABLE t (i INTEGER, f REAL, s TEXT)');"
                     f"c.executemany('INSERT INTO t VALUES (?,?,?)', ((i, i/7, 'v%d' % i) for i in range({rows})));"
                     "c.commit()", path], check=True)
                res = alternate("bulk", ["db_pool", "sqlite3", "connectorx", "adbc"],
                                {"url": f"sqlite:///{path}", "cx_url": f"sqlite://{path}",
                                 "adbc_url": f"sqlite:///{path}", "path": path,
                                 "sql": "SELECT * FROM t"}, reps)
                check_same(res)
                title = f"W4 SQLite: {rows:,} rows x 3 columns into a DataFrame"
                sections += table_bulk(title, res)
                plot(out_dir / "bench_w4.png", title, res, "seconds")
                sections += ["![W4](bench_w4.png)", ""]

        header = [
            "# Benchmarks", "",
            f"Made by `python bench/run.py {' '.join(sys.argv[1:])}` (`make bench`) on "
            f"{dt.date.today().isoformat()}: {platform.machine()}, {os.cpu_count()} cores, "
            f"{platform.platform()}, Python {platform.python_version()}.", "",
            "Versions: " + ", ".join(versions()) + ".", "",
            f"Every contender ran {reps} times in its own process, in a fresh random order "
            "per round, against the same throwaway PostgreSQL on loopback (host "
            f"{u.hostname}); all returned the same row count and column checksums. "
            "psql COPY and pgbench are the server's own limits, not DataFrame builders.", "",
        ]
        Path(opts.out).write_text("\n".join(header + sections))
        print(f"wrote {opts.out}")
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
