"""Side-by-side benchmarks: db_pool against its peers on the same server, in
the same run, in alternating order, every contender's result checked.

    python bench/run.py [--quick] [--big] [--dsn postgresql://...] [--only w1,w2,w3,w4,w5,w7,w8]

Starts a throwaway PostgreSQL (tests/pg_server.py) unless --dsn is given,
loads the data, runs each workload, and writes docs/benchmarks.md plus PNG
plots next to it. Each contender runs in its own process per repetition
(bench/contenders.py), so peak memory is its own and nobody warms a cache
for another; each round runs the contenders in a fresh random order.
Medians over the repetitions; ratios are contender / db_pool time (or
db_pool / contender QPS): above 1 means db_pool is faster.

Workloads: W1 1-row primary-key SELECTs at concurrency 1, 10, 100, and at 10
on pgbench's own table and beside a CPU hog; W2 bulk read of an 8-column
table (1M rows; 10M more with --big); W3 bulk write of a 1M-row DataFrame;
W4 the same bulk read on SQLite; W5 the seed's own workload on SQLite and
PostgreSQL; W6 execute_many; W7 MySQL/MariaDB bulk read, point SELECTs
and bulk write (bench/mysql_bench.py, on a private MariaDB); W8 Redis hashes
into a DataFrame, GET at concurrency 50, pipelines and write_frame
(bench/redis_bench.py, on a private redis-server); P5 10,000
waiters on 10 connections; M1 (`metrics`) W4 point and W1 c=10 against a
build with metrics compiled out.
--quick: small sizes, 2 repetitions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import polars as pl

from report import (Results, goals_table, median, medians, plot, ratio_summary, table_qps,
                    table_time)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pg_server import PgServer  # noqa: E402

import mysql_bench  # noqa: E402  (needs tests/ on sys.path)
import redis_bench  # noqa: E402  (needs tests/ on sys.path)

WIDE_COLUMNS = ("i4 int4, i8 int8, f8 float8, n numeric(12,2), t text, ts timestamp, "
                "b bool, d date")
SMALL_SQL = "SELECT id, name, score FROM bench_small WHERE id = $1"
# pgbench -S's query on its own table (filler is char(84)), columns in W1's
# checksum order: key, text, number.
PGBENCH_SQL = "SELECT aid, filler, abalance, bid FROM pgbench_accounts WHERE aid = $1"
PGBENCH_SCALE = 10  # 1,000,000 accounts
KEYS = 100_000
# The checksum of a written table: row count and the sum of every row's text hash.
TABLE_SUM = "SELECT count(*) || ' ' || coalesce(sum(hashtext(x::text)::int8), 0) FROM {} x"


class Bench:
    """One run: options, the server, the scratch directory, the report so far."""

    def __init__(self, opts: argparse.Namespace, dsn: str, tmp: Path) -> None:
        self.opts = opts
        self.dsn = dsn
        self.tmp = tmp
        self.quick = opts.quick
        self.reps = opts.reps or (2 if opts.quick else 5)
        self.rows = opts.rows or (100_000 if opts.quick else 1_000_000)
        self.out = Path(opts.out)
        self.sections: list[str] = []
        self.summary: list[str] = []
        self.raw: dict[str, Results] = {}
        self.pg = {"url": dsn, "pg_url": dsn, "cx_url": dsn, "adbc_url": dsn}

    # ---- running contenders ----

    def alternate(self, name: str, workload: str, contenders: list[str], args: dict[str, Any],
                  before: Callable[[], None] | None = None,
                  after: Callable[[dict[str, Any]], None] | None = None,
                  reps: int | None = None) -> Results:
        """Runs every contender self.reps (or reps) times, in a fresh random
        order each round, then checks they all returned the same rows and checksum."""
        results: Results = {c: [] for c in contenders}
        rng = random.Random(name)
        reps = reps or self.reps
        for rep in range(reps):
            order = contenders[:]
            rng.shuffle(order)
            for c in order:
                if before:
                    before()
                r = run_contender(workload, c, args)
                if after:
                    after(r)
                results[c].append(r)
                print(f"  {name} {rep + 1}/{reps} {c:16} {r['seconds']:8.3f} s"
                      + (f" {r['qps']:9,.0f} qps" if "qps" in r else "")
                      + f" {r['peak_rss_mib']:6.0f} MiB", flush=True)
        check_same(name, results)
        self.raw[name] = results
        return results

    def section(self, title: str, intro: str, body: list[str], image: str | None = None) -> None:
        self.sections += [f"## {title}", "", intro, ""] + body
        if image:
            self.sections += [f"![{title}]({image})", ""]

    def png(self, name: str) -> Path:
        return self.out.parent / name

    # ---- W1 ----

    def w1(self) -> None:
        queries = 2_000 if self.quick else 10_000
        levels = [1, 10] if self.quick else [1, 10, 100]
        contenders = ["db_pool", "db_pool_sync", "asyncpg", "asyncpg_df", "psycopg_pool",
                      "psycopg_pool_df", "adbc", "pgbench"]
        body, panels = [], []
        for conc in levels:
            res = self.alternate(f"W1 c={conc}", "small", contenders,
                                 {**self.pg, "sql": SMALL_SQL, "queries": queries, "keys": KEYS,
                                  "concurrency": conc, "seconds": 1 if self.quick else 3})
            body += [f"### Concurrency {conc}", ""] + table_qps(res)
            panels.append((f"concurrency {conc}", medians(res, "qps"), "median QPS"))
            self.summary.append(f"- W1 c={conc} (db_pool QPS / peer QPS): "
                                + ratio_summary(res, "qps"))
        extra = ["db_pool", "db_pool_sync", "asyncpg", "asyncpg_df", "pgbench"]
        common = {**self.pg, "queries": queries, "concurrency": 10,
                  "seconds": 1 if self.quick else 3}
        subprocess.run(["pgbench", "-i", "-q", "-s", str(PGBENCH_SCALE), self.dsn],
                       check=True, capture_output=True)
        res = self.alternate("W1 pgbench table", "small", extra,
                             {**common, "sql": PGBENCH_SQL, "keys": PGBENCH_SCALE * 100_000})
        body += ["### Concurrency 10 on pgbench's table", "",
                 f"`{PGBENCH_SQL}` (pgbench -S's query; `filler` is char(84)) on `pgbench -i "
                 f"-s {PGBENCH_SCALE}`'s {PGBENCH_SCALE * 100_000:,} accounts.", ""]
        body += table_qps(res)
        panels.append(("pgbench's table, c=10", medians(res, "qps"), "median QPS"))
        self.summary.append("- W1 c=10 on pgbench's table (db_pool QPS / peer QPS): "
                            + ratio_summary(res, "qps"))
        hog = CpuHog()
        res = self.alternate("W1 CPU hog", "small", extra, {**common, "sql": SMALL_SQL,
                                                            "keys": KEYS},
                             before=hog.start, after=lambda _: hog.stop())
        body += ["### Concurrency 10 beside a CPU hog", "",
                 f"As concurrency 10, with {os.cpu_count()} busy-looping processes (one per "
                 "core) running beside each contender: an application server whose cores "
                 "are busy with other work.", ""]
        body += table_qps(res)
        panels.append(("c=10 beside a CPU hog", medians(res, "qps"), "median QPS"))
        self.summary.append("- W1 c=10 beside a CPU hog (db_pool QPS / peer QPS): "
                            + ratio_summary(res, "qps"))
        plot(self.png("bench_w1.png"), "W1: 1-row primary-key SELECT (higher is better)", panels)
        self.section(
            "W1: small queries", f"`{SMALL_SQL}` with a random key among {KEYS:,}, "
            f"{queries:,} queries per repetition after a short warm-up, from N asyncio tasks "
            "(db_pool, asyncpg, psycopg_pool) or N threads (db_pool_sync, ADBC with one "
            "kept-open connection per thread, read through `pl.read_database`) sharing a "
            "pool of N connections. `_df` variants turn each result into a polars "
            "DataFrame, as db_pool always does. The limit is `pgbench -M prepared -c N "
            f"-j min(2,N) -T {1 if self.quick else 3}` running the same SELECT (what `-S` "
            "does, on our table); its p50/p99 come from its per-transaction log. Checksum: "
            "the sum over all queries of id + 2*score + len(name).",
            body, "bench_w1.png")

    # ---- M1: the cost of metrics ----

    def metrics(self) -> None:
        """db_pool against itself built with metrics compiled out (meson
        -Dmetrics=false), on W4 point and W1 c=10, with and without leak
        detection; twice the usual repetitions, as the differences are small."""
        builds = {f"build_{state}": str(build_variant(self.tmp, state == "on"))
                  for state in ("off", "on")}
        variants = ["metrics_off", "metrics_on", "metrics_off_leak", "metrics_on_leak"]
        point_path = self.tmp / "m1_point.db"
        make_sqlite(point_path, 0, small=True)
        cases = [("W4 point (SQLite, sync API, 1 caller)", "point", "db_pool_sync",
                  {"url": f"sqlite:///{point_path}", "queries": 2_000 if self.quick else 20_000,
                   "concurrency": 1}),
                 ("W1 c=10 (PostgreSQL, async API)", "small", "db_pool",
                  {**self.pg, "queries": 2_000 if self.quick else 10_000, "concurrency": 10})]
        body, ratios = [], []
        for title, workload, contender, args in cases:
            names = [f"{contender}@{v}" for v in variants]
            res = self.alternate(f"M1 {title}", workload, names,
                                 {**args, **builds, "sql": SMALL_SQL, "keys": KEYS},
                                 reps=2 * self.reps)
            off = res[names[0]]
            # per round: the variants ran in the same round, in a random order
            paired = {v: statistics.median(o["qps"] / r["qps"] for o, r in zip(off, res[n]))
                      for v, n in zip(variants[1:], names[1:])}
            ratios.append(f"{title.split(' (')[0]}: " + ", ".join(
                f"{v} {paired[v]:.3f}" for v in variants[1:]))
            body += [f"### {title}", ""] + table_qps(res, base=names[0]) + [
                "Median over the rounds of QPS(metrics_off) / QPS(variant) in the same "
                "round: " + ", ".join(f"{v} {paired[v]:.3f}" for v in variants[1:]), ""]
        self.summary.append("- M1 metrics overhead (QPS compiled out / QPS variant; 1.00 = "
                            "free): " + "; ".join(ratios))
        self.section(
            "M1: the cost of metrics",
            "db_pool against itself: the package built twice into folders of its own by "
            "`pip install --no-deps --no-build-isolation --target DIR . "
            "-Csetup-args=-Dmetrics=true|false` (false defines `DBP_NO_METRICS`: every "
            "counter and histogram update is a no-op, snapshots report zeros; checked "
            "before the run). `_leak` variants add `leak_detection_threshold=60` (nothing "
            "leaks: its cost is the watch on leases and the alerts thread). W4 point: W1's "
            "query on SQLite, one caller, sync API; W1: 10 asyncio tasks on 10 PostgreSQL "
            "connections. The ratio column reads how much slower each variant is than the "
            "build without metrics (above 1: slower).", body)

    # ---- W6 ----

    def w6(self) -> None:
        rows = 1_000 if self.quick else 10_000
        expected = psql_value(self.dsn, TABLE_SUM.format(
            f"(SELECT i AS id, 'name-' || i AS name, i * 0.5::float8 AS score "
            f"FROM generate_series(1, {rows}) i)"))

        def truncate() -> None:
            psql(self.dsn, "TRUNCATE bench_many")

        def verify(r: dict[str, Any]) -> None:
            r["checksum"] = psql_value(self.dsn, TABLE_SUM.format("bench_many"))
            if r["checksum"] != expected:
                raise SystemExit(f"W6: table holds {r['checksum']}, expected {expected}")
            r["rows_per_s"] = rows / r["seconds"]

        res = self.alternate("W6", "many", ["db_pool", "asyncpg", "psycopg"],
                             {**self.pg, "table": "bench_many", "rows": rows}, truncate, verify)
        truncate()
        self.summary.append("- W6 execute_many (peer time / db_pool time): "
                            + ratio_summary(res, "seconds"))
        self.section(
            "W6: execute_many (PostgreSQL)",
            f"{rows:,} parameter rows (int4, text, float8) inserted by one `INSERT ... VALUES "
            "($1, $2, $3)` run once per row, all in one transaction, into an empty table "
            "with a primary key. db_pool: `execute_many` (async API); asyncpg: "
            "`Connection.executemany`; psycopg: `Cursor.executemany` then `commit` (psycopg 3 "
            "pipelines the statements). The table is truncated before each run and checked "
            "after it (row count and the sum of `hashtext(row::text)`).",
            table_time(res))

    def w7(self) -> None:
        mysql_bench.w7(self)

    def w8(self) -> None:
        redis_bench.w8(self)

    # ---- P4 ----

    def p4(self) -> None:
        stream_rows = 1_000_000 if self.quick else 10_000_000
        query = self.alternate("P4 query", "memory", ["db_pool_query"],
                               {**self.pg, "sql": "SELECT * FROM bench_wide"})
        stream = self.alternate(
            "P4 stream", "memory", ["db_pool_stream"],
            {**self.pg, "batch_rows": 100_000,
             "sql": "SELECT i, i::int8 * 1000003 AS i8, i / 7.0::float8 AS f8, md5(i::text) AS t, "
                    f"timestamp '2020-01-01' + i * interval '1 second' AS ts "
                    f"FROM generate_series(1, {stream_rows}) AS i"})
        lines = ["| read | rows | data held, MiB | idle process, MiB | peak, MiB | "
                 "(peak - idle) / data held |", "|---|---:|---:|---:|---:|---:|"]
        ratios = []
        for name, res in [("query into one DataFrame (data: the frame)", query["db_pool_query"]),
                          ("stream, batches of 100,000 (data: the largest batch)",
                           stream["db_pool_stream"])]:
            held, idle, peak = (median(res, k) for k in ("data_mib", "idle_mib", "peak_rss_mib"))
            ratios.append((peak - idle) / held)
            lines.append(f"| {name} | {median(res, 'rows'):,.0f} | {held:.0f} | {idle:.0f} | "
                         f"{peak:.0f} | {ratios[-1]:.2f} |")
        self.summary.append(
            f"- P4 (peak - idle) / data held: query into one DataFrame {ratios[0]:.2f}x the "
            f"frame; stream of {stream_rows:,} rows {ratios[1]:.1f}x one batch")
        self.section(
            "P4: peak memory",
            "db_pool's own process (VmHWM, never the parent's ru_maxrss): the W2 table read "
            f"into one DataFrame, and a {stream_rows:,}-row query (5 columns from "
            "generate_series) read through `stream(batch_rows=100_000)` with each batch "
            "dropped once summed. \"Data held\" is polars' `estimated_size()` of the frame, "
            "or of the largest batch; it does not count the 16-byte view polars keeps per "
            "string value (16 MiB for the table's text column). \"Idle\" is the process's "
            "RSS after imports, connecting and one tiny query (polars starts its thread "
            "pool on the first DataFrame), just before the read.", lines + [""])

    # ---- P5 ----

    def p5(self) -> None:
        queries = 2_000 if self.quick else 20_000
        res = self.alternate("P5", "waiters", ["db_pool_100_tasks", "db_pool_10000_tasks"],
                             {**self.pg, "sql": SMALL_SQL, "queries": queries, "keys": KEYS,
                              "pool_size": 10})
        qps = medians(res, "qps")
        ratio = qps["db_pool_10000_tasks"] / qps["db_pool_100_tasks"]
        self.summary.append(f"- P5 (QPS with 10,000 waiters / QPS with 100): {ratio:.2f}")
        self.section(
            "P5: many waiters",
            f"W1's query, {queries:,} queries from 100 and from 10,000 asyncio tasks sharing "
            "one pool of 10 connections (async API). Each query's latency is mostly its "
            "wait for a connection; the pool serves waiters first come, first served, so "
            "p99 stays close to p50 when there are many. Throughput with 10,000 tasks "
            f"is {ratio:.2f}x that with 100.", table_qps(res, base="db_pool_100_tasks"))

    # ---- W2 ----

    def w2(self) -> None:
        sizes = [("bench_wide", self.rows)]
        if self.opts.big:
            sizes.append(("bench_wide_big", self.opts.big_rows))
        body, panels = [], []
        for table, rows in sizes:
            res = self.alternate(f"W2 {rows:,}", "read",
                                 ["db_pool", "connectorx", "adbc", "asyncpg_df", "psycopg_copy",
                                  "psql_copy"], {**self.pg, "sql": f"SELECT * FROM {table}"})
            body += [f"### {rows:,} rows", ""] + table_time(res)
            panels += [(f"{rows:,} rows: time", medians(res, "seconds"), "median seconds"),
                       (f"{rows:,} rows: peak RSS", medians(res, "peak_rss_mib"), "MiB")]
            self.summary.append(f"- W2 {rows:,} rows (peer time / db_pool time): "
                                + ratio_summary(res, "seconds"))
        body += self.w2_partitioned(panels)
        plot(self.png("bench_w2.png"), "W2: bulk read into a DataFrame (lower is better)", panels)
        self.section(
            "W2: bulk read (PostgreSQL)",
            f"`SELECT * FROM <table>` of 8 columns ({WIDE_COLUMNS}; text is 32 characters) "
            "into a polars DataFrame. db_pool: `SyncDatabasePool.query` (which reads "
            "through binary COPY); ConnectorX and ADBC through `pl.read_database_uri` (their "
            "time includes connecting, as that call always does; ADBC returns numeric as "
            "text, and the cast to Decimal(12,2) is timed); asyncpg: `fetch` then "
            "`pl.DataFrame` of the records; psycopg: `COPY ... TO STDOUT (FORMAT csv)` parsed "
            "by `pl.read_csv` with the table's schema. The limit is `psql -c \"COPY (...) TO "
            "STDOUT (FORMAT binary)\" > /dev/null` (including psql's start-up and connect, "
            "about 10 ms). Peak RSS is each contender's own process (Python + polars are "
            "about 50-60 MiB of it). Checksum: per column sums (dates, timestamps as "
            "integers; text as total bytes and distinct count).",
            body, "bench_w2.png")

    def w2_partitioned(self, panels: list[Any]) -> list[str]:
        """The W2 table read as N range queries on N connections at once,
        db_pool's partition_on= against ConnectorX's on the same column."""
        rows, n_values = self.rows, (2, 4)
        contenders = ["db_pool", "connectorx"] + [f"{c}_p{n}" for n in n_values
                                                   for c in ("db_pool", "connectorx")]
        res = self.alternate(f"W2 partitioned {rows:,}", "read", contenders,
                             {**self.pg, "sql": "SELECT * FROM bench_wide", "partition_on": "i4"})
        panels.append((f"{rows:,} rows, partitioned: time", medians(res, "seconds"),
                       "median seconds"))
        t = {c: median(runs, "seconds") for c, runs in res.items()}
        same_n = ", ".join(f"N={n} {t[f'connectorx_p{n}'] / t[f'db_pool_p{n}']:.2f}"
                           for n in n_values)
        self.summary.append(f"- W2 partitioned {rows:,} rows (ConnectorX time / db_pool time, "
                            f"same column and N): {same_n}")
        return [
            f"### {rows:,} rows, partitioned on `i4`", "",
            "`_pN`: N range queries on `i4` at once, on N connections: db_pool "
            "`query(..., partition_on=\"i4\", partitions=N)` (a pool of N connections opened "
            "before the clock; a zero-row look-up of the columns and MIN/MAX first, then the "
            "N ranges, each through binary COPY, stacked without a copy) and ConnectorX "
            "`partition_on=\"i4\", partition_num=N` "
            "(also MIN/MAX first; connects inside the call). The rows come back in no "
            "particular order: each contender's frame is sorted on `i4` after the clock "
            "stops, so the checksum sums in the same order. On this 2-core machine the "
            "server's N backends and the client share the cores, so N > 2 cannot scale; "
            "time / db_pool compares with the single-connection db_pool.", "",
        ] + table_time(res)

    # ---- W3 ----

    def w3(self) -> None:
        rows = self.rows
        parquet, binary = self.tmp / "w3.parquet", self.tmp / "w3.bin"
        wide_frame(rows).write_parquet(parquet)
        with open(binary, "wb") as f:
            psql(self.dsn, f"COPY (SELECT * FROM bench_wide ORDER BY i4 LIMIT {rows}) "
                 "TO STDOUT (FORMAT binary)", stdout=f)
        expected = psql_value(self.dsn, TABLE_SUM.format(
            f"(SELECT * FROM bench_wide ORDER BY i4 LIMIT {rows})"))

        def truncate() -> None:
            psql(self.dsn, "TRUNCATE bench_w3")

        def verify(r: dict[str, Any]) -> None:
            r["checksum"] = psql_value(self.dsn, TABLE_SUM.format("bench_w3"))
            if r["checksum"] != expected:
                raise SystemExit(f"W3: table holds {r['checksum']}, expected {expected}")

        res = self.alternate("W3", "write", ["db_pool", "adbc", "asyncpg", "psycopg_copy",
                                             "psql_copy"],
                             {**self.pg, "table": "bench_w3", "parquet": str(parquet),
                              "binary_file": str(binary)}, truncate, verify)
        truncate()
        self.summary.append("- W3 (peer time / db_pool time): " + ratio_summary(res, "seconds"))
        plot(self.png("bench_w3.png"), f"W3: {rows:,}-row DataFrame into a table "
             "(lower is better)", [("time", medians(res, "seconds"), "median seconds"),
                                   ("peak RSS", medians(res, "peak_rss_mib"), "MiB")])
        self.section(
            "W3: bulk write (PostgreSQL)",
            f"A {rows:,}-row DataFrame of the W2 columns (read from Parquet before the clock "
            "starts) appended to an empty table with the same columns. db_pool: "
            "`write_frame` (text COPY FROM STDIN); ADBC: `DataFrame.write_database(engine="
            "\"adbc\", if_table_exists=\"append\")` on an open connection (binary COPY); "
            "asyncpg: `copy_records_to_table` of `df.iter_rows()`; psycopg: `df.write_csv()` "
            "sent through `COPY ... FROM STDIN (FORMAT csv)`. The limit is `psql -c \"COPY "
            "... FROM STDIN (FORMAT binary)\"` fed a binary COPY file of the same rows. The "
            "table is truncated before each write and checked after it (row count and the "
            "sum of `hashtext(row::text)` must equal the source table's).",
            table_time(res), "bench_w3.png")

    # ---- W4 ----

    def w4(self) -> None:
        path = self.tmp / "w4.db"
        make_sqlite(path, self.rows)
        res = self.alternate("W4", "read", ["db_pool", "sqlite3", "connectorx", "adbc"],
                             {"url": f"sqlite:///{path}", "cx_url": f"sqlite://{path}",
                              "adbc_url": f"sqlite:///{path}", "path": str(path),
                              "sql": "SELECT * FROM t"})
        self.summary.append("- W4 (peer time / db_pool time): " + ratio_summary(res, "seconds"))
        plot(self.png("bench_w4.png"), f"W4: {self.rows:,} SQLite rows into a DataFrame "
             "(lower is better)", [("time", medians(res, "seconds"), "median seconds"),
                                   ("peak RSS", medians(res, "peak_rss_mib"), "MiB")])
        point_path = self.tmp / "w4_point.db"
        make_sqlite(point_path, 0, small=True)
        queries = 2_000 if self.quick else 20_000
        point = self.alternate("W4 point", "point",
                               ["db_pool_sync", "db_pool", "sqlite3_df", "aiosqlite_df"],
                               {"url": f"sqlite:///{point_path}", "path": str(point_path),
                                "sql": SMALL_SQL, "queries": queries, "keys": KEYS,
                                "concurrency": 1})
        sync_ratio = medians(point, "qps")["db_pool_sync"] / medians(point, "qps")["sqlite3_df"]
        async_ratio = medians(point, "qps")["db_pool"] / medians(point, "qps")["aiosqlite_df"]
        self.summary.append(f"- W4 point (QPS ratios): db_pool_sync / sqlite3_df {sync_ratio:.2f}, "
                            f"db_pool / aiosqlite_df {async_ratio:.2f}")
        self.section(
            "W4: bulk read (SQLite)",
            f"`SELECT * FROM t`, {self.rows:,} rows of (i INTEGER, i8 INTEGER, f REAL, "
            "t TEXT of 32 characters, n REAL with every 7th NULL), from a database file "
            "in the page cache. sqlite3: `pl.read_database` on a `sqlite3` connection; "
            "ConnectorX and ADBC through `pl.read_database_uri`.",
            table_time(res) + ["", "### Point queries", "",
                               f"W1's `SELECT id, name, score ... WHERE id = ?` on a SQLite "
                               f"file of {KEYS:,} keys, {queries:,} queries from one caller: "
                               "db_pool's sync API (which runs SQLite on the calling thread "
                               "when a connection is free) and async API (the same for reads, "
                               "on the event loop's thread within a 1 ms budget, a worker "
                               "beyond it), against Python's `sqlite3` and `aiosqlite`, each "
                               "answer made a polars DataFrame.", ""]
            + table_qps(point), "bench_w4.png")

    # ---- W5 ----

    def w5(self) -> None:
        path = self.tmp / "w5.db"
        make_sqlite(path, 0, small=True)
        queries, batches = (1_000, 50) if self.quick else (10_000, 500)
        common = {"queries": queries, "batches": batches, "keys": KEYS, "sql": "SELECT 1 AS x",
                  "reset": "DELETE FROM seed_batch", "count": "SELECT count(*) FROM seed_batch"}
        engines = {
            "sqlite": {"url": f"sqlite:///{path}",
                       "insert": "INSERT INTO seed_batch VALUES (?, ?, ?)"},
            "postgresql": {"url": self.dsn,
                           "insert": "INSERT INTO seed_batch VALUES ($1, $2, $3)"},
        }
        res: Results = {e: [] for e in engines}
        for rep in range(self.reps):  # the two engines alternate, like the contenders
            for e in random.Random(f"W5 {rep}").sample(list(engines), len(engines)):
                r = run_contender("seed", "db_pool", {**common, **engines[e]})
                res[e].append(r)
                print(f"  W5 {rep + 1}/{self.reps} {e:10} {r['simple_qps']:8,.0f} qps "
                      f"{r['concurrent_qps']:8,.0f} qps (10) {r['batches_per_s']:6,.0f} "
                      "batches/s", flush=True)
        check_same("W5", res)
        self.raw["W5"] = res
        seed = {"simple_qps": 865, "simple_ms": 1.16, "concurrent_qps": 7821,
                "concurrent_ms": 1.28, "batch_rows_per_s": 890, "batch_ms": 22.48}
        rows = [("simple query, QPS (one at a time)", "simple_qps", "{:,.0f}"),
                ("simple query, mean ms", "simple_ms", "{:.3f}"),
                ("10 concurrent, QPS", "concurrent_qps", "{:,.0f}"),
                ("10 concurrent, mean ms", "concurrent_ms", "{:.3f}"),
                ("20-row batch insert, rows/s", "batch_rows_per_s", "{:,.0f}"),
                ("20-row batch insert, ms per batch", "batch_ms", "{:.2f}")]
        table = ["| measure | seed (MSSQL, other machine) | db_pool SQLite | ratio | "
                 "db_pool PostgreSQL | ratio |", "|---|---:|---:|---:|---:|---:|"]
        for title, key, fmt in rows:
            cells = [title, fmt.format(seed[key])]
            for e in engines:
                ours = median(res[e], key)
                better = ours / seed[key] if "qps" in key or "per_s" in key else seed[key] / ours
                cells += [fmt.format(ours), f"{better:.1f}x"]
            table.append("| " + " | ".join(cells) + " |")
        nocopy = median(res["postgresql"], "simple_nocopy_qps")
        table += ["", f"On PostgreSQL the parameterless `SELECT 1` goes through db_pool's "
                  f"default COPY path; with `copy=False` the same loop ran at {nocopy:,.0f} "
                  "QPS (median) — see \"Where db_pool loses\" below.", ""]
        self.summary.append(
            f"- W5 vs the seed's figures (indicative only): SQLite "
            f"{median(res['sqlite'], 'simple_qps') / 865:.1f}x / "
            f"{median(res['sqlite'], 'concurrent_qps') / 7821:.1f}x / "
            f"{median(res['sqlite'], 'batch_rows_per_s') / 890:.1f}x, PostgreSQL "
            f"{median(res['postgresql'], 'simple_qps') / 865:.1f}x / "
            f"{median(res['postgresql'], 'concurrent_qps') / 7821:.1f}x / "
            f"{median(res['postgresql'], 'batch_rows_per_s') / 890:.1f}x "
            "(simple / 10 concurrent / batch insert)")
        plot(self.png("bench_w5.png"), "W5: the seed's workload (higher is better; the seed "
             "ran MSSQL elsewhere)",
             [(t, {"seed": seed[k], **{f"db_pool {e}": median(res[e], k) for e in engines}}, u)
              for t, k, u in [("simple query", "simple_qps", "QPS"),
                              ("10 concurrent", "concurrent_qps", "QPS"),
                              ("20-row batches", "batch_rows_per_s", "rows/s")]])
        self.section(
            "W5: the seed's own workload",
            "The seed (db-pool-rs) published: simple query 865 QPS at 1.16 ms mean; 10 "
            "concurrent queries 7,821 QPS at 1.28 ms mean; batch operations 890 per second "
            "at 22.48 ms per 20-row batch — which makes its 890 rows per second (44.5 "
            "batches per second), so rows/s is what we set against it. **Those figures come "
            "from another machine and another setup (MSSQL, unknown hardware, unknown query "
            "and network): the comparison is indicative only.** Ours, with the async API: "
            f"`SELECT 1 AS x` {queries:,} times one after another, then {queries:,} times "
            "from 10 tasks on a 10-connection pool, then "
            f"{batches} `execute_many` calls of 20 rows each (each its own transaction) "
            "into an empty 3-column table with a primary key. SQLite: a database file with "
            "SQLite's default journal (rollback, synchronous=FULL, so each batch is "
            "fsynced); PostgreSQL: the benchmark server (fsync off).",
            table, "bench_w5.png")


# ---- helpers ---------------------------------------------------------------------------


class CpuHog:
    """One busy-looping process per core while a contender runs. Each stops
    by itself after 10 minutes should the run die before stop()."""


    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        loop = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end: pass"
        self.procs = [subprocess.Popen([sys.executable, "-c", loop])
                      for _ in range(os.cpu_count() or 1)]
        time.sleep(2)  # in their stride, as on a busy server, before the contender starts

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []


def run_contender(workload: str, contender: str, args: dict[str, Any]) -> dict[str, Any]:
    script = next((f"{engine}_contenders.py" for engine in ("mysql", "redis")
                   if workload.startswith(f"{engine}_")), "contenders.py")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), workload, contender, json.dumps(args)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{contender} failed on {workload}:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


BUILD_CHECK = """import sys
sys.path.insert(0, "bench")
from contenders import use_build
use_build(sys.argv[1])
import db_pool
assert db_pool.__file__.startswith(sys.argv[1]), db_pool.__file__
with db_pool.SyncDatabasePool() as pool:
    pool.create_pool("x", url="sqlite:///:memory:")
    pool.query("x", "SELECT 1 AS one")
    print(sum(s["value"] for s in pool.metrics("x")["dbpool_requests_total"]))
"""


def build_variant(tmp: Path, metrics: bool) -> Path:
    """The package built into a folder of its own, with metrics or without
    (both the same way, so only -Dmetrics differs), checked to count or not."""
    state = "on" if metrics else "off"
    target = tmp / f"db_pool_metrics_{state}"
    print(f"building db_pool with metrics {state} into {target} ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(ROOT),
                    f"-Cbuild-dir={ROOT / 'build' / 'bench' / f'metrics-{state}'}",
                    f"-Csetup-args=-Dmetrics={str(metrics).lower()}"], check=True, cwd=ROOT,
                   env={**os.environ,  # meson and ninja live beside this Python
                        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    counted = subprocess.run([sys.executable, "-c", BUILD_CHECK, str(target)], check=True,
                             capture_output=True, text=True, cwd=ROOT).stdout.strip()
    if counted != ("1" if metrics else "0"):
        raise SystemExit(f"the build with metrics {state} counted {counted} requests of 1")
    return target


def check_same(name: str, results: Results) -> None:
    """Every run of every contender must have returned the same checksum
    (the server's limits, which build no result, say "n/a")."""
    sums = {c: {r["checksum"] for r in runs} for c, runs in results.items()
            if runs[0]["checksum"] != "n/a"}
    if len({s for v in sums.values() for s in v}) > 1:
        raise SystemExit(f"{name}: contenders disagree on the result: {sums}")


def psql(dsn: str, sql: str, **kw: Any) -> subprocess.CompletedProcess[Any]:
    return subprocess.run(["psql", dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, **kw)


def psql_value(dsn: str, sql: str) -> str:
    return str(subprocess.run(["psql", dsn, "-X", "-At", "-c", sql], check=True,
                              capture_output=True, text=True).stdout.strip())


def load_pg(dsn: str, rows: int, big_rows: int | None) -> None:
    """The W2/W3 table of `rows` rows (and of `big_rows` for --big), the W1
    keyed table, and the empty tables W3 and W5 write into."""

    def wide(table: str, n: int) -> str:
        return (f"CREATE TABLE {table} ({WIDE_COLUMNS});\n"
                f"INSERT INTO {table} SELECT i, i::int8 * 1000003, i / 7.0::float8, "
                "(i % 100000) / 100.0, md5(i::text), "
                "timestamp '2020-01-01' + i * interval '1 second', i % 3 = 0, "
                f"date '2000-01-01' + (i % 10000) FROM generate_series(1, {n}) AS i;\n"
                f"CREATE INDEX ON {table} (i4);\nVACUUM ANALYZE {table};\n")

    script = (
        "SET client_min_messages = warning;\n"
        "DROP TABLE IF EXISTS bench_wide, bench_wide_big, bench_w3, bench_small, seed_batch, "
        "bench_many;\n"
        + wide("bench_wide", rows) + (wide("bench_wide_big", big_rows) if big_rows else "")
        + f"CREATE TABLE bench_w3 ({WIDE_COLUMNS});\n"
        "CREATE TABLE bench_small (id int4 PRIMARY KEY, name text, score float8);\n"
        "INSERT INTO bench_small SELECT i, 'name-' || i, i * 0.5 "
        f"FROM generate_series(1, {KEYS}) i;\n"
        "VACUUM ANALYZE bench_small;\n"
        "CREATE TABLE seed_batch (id int4 PRIMARY KEY, name text, score float8);\n"
        "CREATE TABLE bench_many (id int4 PRIMARY KEY, name text, score float8);\n"
    )
    subprocess.run(["psql", dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                   input=script, text=True, check=True)


def make_sqlite(path: Path, rows: int, small: bool = False) -> None:
    """W4's table t of `rows` rows, or (small) W5's tables."""
    with sqlite3.connect(path) as conn:
        if small:
            conn.executescript(
                "CREATE TABLE seed_batch (id INTEGER PRIMARY KEY, name TEXT, score REAL);"
                "CREATE TABLE bench_small (id INTEGER PRIMARY KEY, name TEXT, score REAL);"
                f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {KEYS}) "
                "INSERT INTO bench_small SELECT i, 'name-' || i, i * 0.5 FROM s;")
            return
        conn.execute("CREATE TABLE t (i INTEGER, i8 INTEGER, f REAL, t TEXT, n REAL)")
        conn.execute(
            f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows}) "
            "INSERT INTO t SELECT i, i * 1000003, i / 7.0, printf('%032x', i * 2654435761), "
            "CASE WHEN i % 7 = 0 THEN NULL ELSE i * 0.25 END FROM s")


def wide_frame(n: int) -> pl.DataFrame:
    """The first n rows of bench_wide, built by polars (W3's input)."""
    import hashlib

    i = pl.col("i")
    epoch_2000 = (dt.date(2000, 1, 1) - dt.date(1970, 1, 1)).days
    return pl.DataFrame({"i": pl.int_range(1, n + 1, eager=True)}).select(
        i.cast(pl.Int32).alias("i4"),
        (i * 1000003).alias("i8"),
        pl.Series("f8", [k / 7 for k in range(1, n + 1)]),  # polars' i / 7.0 may round differently
        pl.format("{}.{}", i % 100000 // 100, (i % 100).cast(pl.String).str.zfill(2))
        .cast(pl.Decimal(12, 2)).alias("n"),
        pl.Series("t", [hashlib.md5(str(k).encode()).hexdigest() for k in range(1, n + 1)]),
        (pl.lit(dt.datetime(2020, 1, 1)) + pl.duration(seconds=i)).alias("ts"),
        (i % 3 == 0).alias("b"),
        (i % 10000 + epoch_2000).cast(pl.Int32).cast(pl.Date).alias("d"),
    )


def start_server() -> PgServer:
    """A throwaway server, restarted with room for W1's 100 clients (plus
    pgbench's) and a less tiny buffer cache than the test default."""
    server = PgServer.start_private()
    psql(server.dsn, "ALTER SYSTEM SET max_connections = 250")
    psql(server.dsn, "ALTER SYSTEM SET shared_buffers = '256MB'")
    psql(server.dsn, "ALTER SYSTEM SET max_wal_size = '4GB'")
    server.restart()
    return server


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo")
               if line.startswith("MemTotal"))
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {mem / 1024 / 1024:.0f} GiB RAM, "
            f"{platform.platform()}")


def versions(dsn: str) -> str:
    import importlib.metadata as md

    out = [f"Python {platform.python_version()}"]
    for pkg in ["db-pool", "polars", "pyarrow", "connectorx", "adbc-driver-postgresql",
                "adbc-driver-sqlite", "asyncpg", "psycopg", "psycopg-pool", "asyncmy", "PyMySQL",
                "mysqlclient", "redis", "hiredis", "matplotlib"]:
        try:
            out.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            out.append(f"{pkg} (missing)")
    out.append(psql_value(dsn, "SELECT version()").split(" on ")[0] + " server")
    out.append(f"SQLite {sqlite3.sqlite_version} (Python's sqlite3)")
    return ", ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 repetitions (smoke run)")
    ap.add_argument("--big", action="store_true", help="add W2 at --big-rows rows (slow)")
    ap.add_argument("--big-rows", type=int, default=10_000_000)
    ap.add_argument("--dsn", help="use this PostgreSQL instead of a throwaway one (W1 at "
                    "concurrency 100 needs max_connections >= 110)")
    ap.add_argument("--only", default="w1,w2,w3,w4,w5,w6,w7,w8,p4,p5,metrics",
                    help="workloads to run")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5)")
    ap.add_argument("--rows", type=int, default=None, help="rows for W2-W4 (default 1M)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    opts = ap.parse_args()
    only = opts.only.split(",")
    started = time.monotonic()
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    server = None if opts.dsn else start_server()
    dsn = opts.dsn or server.dsn  # type: ignore[union-attr]
    try:
        with tempfile.TemporaryDirectory(prefix="dbpool-bench-") as tmp:
            bench = Bench(opts, dsn, Path(tmp))
            bench.out.parent.mkdir(parents=True, exist_ok=True)
            if any(w not in ("w7", "w8") for w in only):  # those bring their own servers
                print(f"loading {bench.rows:,} wide rows"
                      + (f" and {opts.big_rows:,} more" if opts.big else "") + " ...",
                      flush=True)
                load_pg(dsn, bench.rows, opts.big_rows if opts.big else None)
            for w in only:
                getattr(bench, w)()
            write_doc(bench, dsn, today, time.monotonic() - started)
            raw = ROOT / "build" / "bench" / "results.json"  # every run's figures, for digging
            raw.parent.mkdir(parents=True, exist_ok=True)
            raw.write_text(json.dumps(bench.raw, indent=1))
    finally:
        if server is not None:
            server.cleanup()
    print(f"wrote {opts.out} in {time.monotonic() - started:.0f} s")


def write_doc(bench: Bench, dsn: str, today: str, seconds: float) -> None:
    args = [re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", a) for a in sys.argv[1:]]
    command = " ".join(["python", "bench/run.py", *map(shlex.quote, args)])
    where = ("a throwaway PostgreSQL started by the run (tests/pg_server.py: fsync and "
             "synchronous_commit off, max_connections 250, shared_buffers 256MB), on loopback "
             "TCP with SCRAM auth" if not bench.opts.dsn else "the PostgreSQL given by --dsn")
    notes = ROOT / "bench" / "analysis.md"
    header = [
        "# Benchmarks", "",
        "<!-- Generated by bench/run.py (make bench); the last section comes from "
        "bench/analysis.md. Do not edit by hand. -->", "",
        f"- **Command:** `{command}` (`make bench`; `make bench-quick` is the smoke run)",
        f"- **Date:** {today}; the whole run took {seconds / 60:.1f} minutes",
        f"- **Machine:** {machine()} — a shared 2-core VM, with other engineers' test "
        "runs going on, so expect noise of ±10-20 % between runs; the client, the "
        "server and the limit tools all share the two cores",
        f"- **Versions:** {versions(dsn)}",
        f"- **Server:** {where}",
        f"- **Method:** every contender ran {bench.reps} times, each time in a fresh "
        "process, in a fresh random order per round; the tables give medians (and the "
        "spread). Every contender returned the same row count and checksum in every "
        "repetition (checked by the run; the limits, which build no result, excepted). "
        "**Ratios read \"how many times better db_pool is\"**: peer time / db_pool time, "
        "or db_pool QPS / peer QPS — above 1 db_pool wins, below 1 it loses. "
        "\"(limit)\" rows are the server's own tools (pgbench, psql, the mariadb client, "
        "redis-benchmark), "
        "not DataFrame builders.",
        "",
        "## Summary: ratios to db_pool", "",
    ] + bench.summary + ["", "## Goals", "",
                         "The performance goals of this round (issue 13; W7: issue 16; W8: the "
                         "Redis engine), "
                         "from this run's medians; where db_pool misses one, \"Where "
                         "db_pool loses, and why\" below says where the time goes.", ""]
    header += goals_table(bench.raw)
    footer = ["", notes.read_text()] if notes.exists() else []
    bench.out.write_text("\n".join(header + bench.sections + footer))


if __name__ == "__main__":
    main()
