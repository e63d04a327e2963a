"""W7: the MySQL/MariaDB workloads of bench/run.py (issue 16), on a private
MariaDB started for the run (tests/mysql_server.py), peers side by side on
the same server in alternating rounds, every result checked:

- W7 read:  the 8-column table into a DataFrame (db_pool, ConnectorX,
  PyMySQL and mysqlclient + pl.DataFrame);
- W7 point: 1-row primary-key SELECTs at concurrency 10 (db_pool's async
  API, asyncmy raw rows and + pl.DataFrame);
- W7 write: write_frame of the same rows (db_pool, asyncmy executemany, and
  the mariadb client's LOAD DATA LOCAL INFILE of a file as the limit).

The contenders live in bench/mysql_contenders.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import polars as pl

from report import medians, plot, ratio_summary, table_qps, table_time

from mysql_server import MysqlServer, find_mariadb_bins  # tests/ is on sys.path (run.py)

COLUMNS = ("i4 INT PRIMARY KEY, i8 BIGINT, f8 DOUBLE, n DECIMAL(12,2), t VARCHAR(32), "
           "ts DATETIME(6), b BOOL, d DATE")
SCHEMA = {"i4": pl.Int32, "i8": pl.Int64, "f8": pl.Float64, "n": pl.Decimal(12, 2),
          "t": pl.String, "ts": pl.Datetime("us"), "b": pl.Int8, "d": pl.Date}
SMALL_SQL = "SELECT id, name, score FROM bench_small WHERE id = ?"
KEYS = 100_000  # as W1
# A written table's checksum: row count and the sum of every row's CRC32.
TABLE_SUM = ("SELECT CONCAT(COUNT(*), ' ', COALESCE(SUM(CRC32(CONCAT_WS('|', i4, i8, f8, n, t, "
             "ts, b, d))), 0)) FROM {}")
# Room for 1M rows in the buffer pool and a redo log that does not force
# checkpoints during a 1M-row write (the test fixture's are 32M and 16M).
SERVER_CONF = """innodb_buffer_pool_size = 1G
innodb_log_file_size = 512M
max_connections = 200
"""


def load(server: MysqlServer, rows: int) -> None:
    """The W7 table of `rows` rows, its empty twin for the writes, W1's keyed table."""
    server.sql(
        f"DROP TABLE IF EXISTS bench_w7, bench_w7_write, bench_small;\n"
        f"CREATE TABLE bench_w7 ({COLUMNS});\n"
        f"CREATE TABLE bench_w7_write ({COLUMNS});\n"
        "INSERT INTO bench_w7 SELECT seq, seq * 1000003, seq / 7e0, (seq % 100000) / 100, "
        "md5(seq), TIMESTAMP'2020-01-01 00:00:00' + INTERVAL seq SECOND "
        "+ INTERVAL seq % 1000000 MICROSECOND, seq % 3 = 0, "
        f"DATE'2000-01-01' + INTERVAL seq % 10000 DAY FROM seq_1_to_{rows};\n"
        "CREATE TABLE bench_small (id INT PRIMARY KEY, name VARCHAR(32), score DOUBLE);\n"
        "INSERT INTO bench_small SELECT seq, CONCAT('name-', seq), seq * 0.5e0 "
        f"FROM seq_1_to_{KEYS};\n"
        "ANALYZE TABLE bench_w7, bench_small;\n", timeout=600, database=server.database)


def write_inputs(server: MysqlServer, tmp: Path) -> tuple[Path, Path]:
    """The W7 rows as a tab-separated file (what LOAD DATA reads by default;
    dumped by the mariadb client) and, parsed from it by polars, as Parquet
    (the frame the other writers load before their clock starts)."""
    tsv, parquet = tmp / "w7.tsv", tmp / "w7.parquet"
    with open(tsv, "w") as out:
        subprocess.run([str(find_mariadb_bins().client), "--no-defaults", "--batch",
                        "--skip-column-names", f"--socket={server.socket_path}", "--user=root",
                        f"--database={server.database}", "-e",
                        "SELECT * FROM bench_w7 ORDER BY i4"],
                       stdout=out, check=True, timeout=600)
    frame = pl.read_csv(tsv, separator="\t", has_header=False, new_columns=list(SCHEMA),
                        schema_overrides=SCHEMA, quote_char=None)
    frame.with_columns(pl.col("b").cast(pl.Boolean)).write_parquet(parquet)
    return tsv, parquet


def w7(bench: Any) -> None:
    """Runs W7 on a private MariaDB and adds its section to the report."""
    server = MysqlServer.start_private(max_allowed_packet="64M", extra_conf=SERVER_CONF,
                                       prefix="dbpool-bench-mysql-")
    try:
        run(bench, server)
    finally:
        server.cleanup()


def run(bench: Any, server: MysqlServer) -> None:
    rows = bench.rows
    print(f"loading {rows:,} W7 rows into MariaDB ...", flush=True)
    load(server, rows)
    version = server.sql("SELECT VERSION()")
    common = {"url": server.dsn, "host": server.host, "port": server.port, "user": server.user,
              "password": server.password, "database": server.database}

    read = bench.alternate("W7 read", "mysql_read",
                           ["db_pool", "connectorx", "pymysql_df", "mysqlclient_df"],
                           {**common, "sql": "SELECT * FROM bench_w7"})
    bench.summary.append(f"- W7 MySQL read {rows:,} rows (peer time / db_pool time): "
                         + ratio_summary(read, "seconds"))

    queries = 2_000 if bench.quick else 10_000
    point = bench.alternate("W7 point c=10", "mysql_small", ["db_pool", "asyncmy", "asyncmy_df"],
                            {**common, "sql": SMALL_SQL, "queries": queries, "keys": KEYS,
                             "concurrency": 10})
    bench.summary.append("- W7 MySQL point c=10 (db_pool QPS / peer QPS): "
                         + ratio_summary(point, "qps"))

    tsv, parquet = write_inputs(server, bench.tmp)
    expected = server.sql(TABLE_SUM.format("bench_w7"), database=server.database)

    def truncate() -> None:
        server.sql("TRUNCATE bench_w7_write", database=server.database)

    def verify(r: dict[str, Any]) -> None:
        r["checksum"] = server.sql(TABLE_SUM.format("bench_w7_write"), timeout=120,
                                   database=server.database)
        if r["checksum"] != expected:
            raise SystemExit(f"W7 write: table holds {r['checksum']}, expected {expected}")

    write = bench.alternate("W7 write", "mysql_write", ["db_pool", "asyncmy", "mariadb_load_data"],
                            {**common, "table": "bench_w7_write", "parquet": str(parquet),
                             "tsv_file": str(tsv), "client": str(find_mariadb_bins().client)},
                            truncate, verify)
    truncate()
    bench.summary.append("- W7 MySQL write (peer time / db_pool time): "
                         + ratio_summary(write, "seconds"))

    plot(bench.png("bench_w7.png"), "W7: MySQL/MariaDB (read, write: lower is better; "
         "point: higher is better)",
         [(f"read {rows:,} rows: time", medians(read, "seconds"), "median seconds"),
          ("point SELECT, c=10", medians(point, "qps"), "median QPS"),
          (f"write {rows:,} rows: time", medians(write, "seconds"), "median seconds")])
    bench.section(
        "W7: MySQL/MariaDB",
        f"A private {version} started by the run (tests/mysql_server.py: loopback TCP, "
        "mysql_native_password, InnoDB with a 1 GB buffer pool, no fsync, binary log "
        "off), the same server for every contender. The table has 8 columns "
        f"({COLUMNS}; t is 32 characters, ts has microseconds); BOOL is TINYINT(1).",
        [f"### Bulk read, {rows:,} rows", "",
         "`SELECT * FROM bench_w7` into a polars DataFrame. db_pool: "
         "`SyncDatabasePool.query` (a prepared statement, rows streamed unbuffered into "
         "Arrow builders); ConnectorX: `pl.read_database_uri(..., engine=\"connectorx\")` "
         "with the mysql:// URL (its time includes connecting, as that call always does; "
         "it widens DECIMAL to Decimal(38,10)); PyMySQL and mysqlclient (MySQLdb): "
         "`cursor.execute` + `fetchall` then `pl.DataFrame` of the tuples. Checksum: as "
         "W2 (per column sums, BOOL and TINYINT alike).", ""]
        + table_time(read)
        + ["### Point queries, concurrency 10", "",
           f"W1's `{SMALL_SQL}` on a MariaDB copy of its table ({KEYS:,} keys), "
           f"{queries:,} queries from 10 asyncio tasks sharing a pool of 10 connections. "
           "db_pool: the async API (a cached server-side prepared statement); asyncmy: "
           "`pool.acquire()` + `cursor.execute` (text protocol, values escaped by the "
           "client) + `fetchall`, raw tuples or made a DataFrame (`_df`). Checksum as W1.",
           ""]
        + table_qps(point)
        + [f"### Bulk write, {rows:,} rows", "",
           "The W7 rows as a DataFrame (read from Parquet before the clock starts) "
           "appended to an empty table with the same columns. db_pool: `write_frame` "
           "(`LOAD DATA LOCAL INFILE` fed from memory, one transaction); asyncmy: "
           "`executemany` of `df.rows()` into `INSERT ... VALUES (%s, ...)` (which it "
           "batches into multi-row INSERTs of about 1 MB) then `commit`. The limit is the "
           "`mariadb` command-line client running `LOAD DATA LOCAL INFILE` of a "
           "tab-separated file of the same rows (written before the clock; its time "
           "includes the client's start-up and connect). The table is truncated before "
           "each write and checked after it (row count and the sum of `CRC32` over each "
           "row's values must equal the source table's).", ""]
        + table_time(write), "bench_w7.png")
