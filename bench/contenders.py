"""One contender running one workload once, in its own process.

    python bench/contenders.py WORKLOAD CONTENDER JSON_ARGS

Prints one JSON object on its last line: seconds (the timed part only),
rows, checksum (so nobody wins by doing less), peak RSS of this process in
MiB, and workload-specific figures (qps, p50/p99 latency). bench/run.py
calls this in alternating order, compares the checksums and aggregates.

Workloads (one function per contender each):

- read   (W2 PostgreSQL, W4 SQLite): a whole table into a polars DataFrame
  (``_pN``: as N range queries at once, partitioned on a["partition_on"]);
- small  (W1): many 1-row primary-key SELECTs at a concurrency;
- point  (W4 point): the same on SQLite, one caller;
- write  (W3): a DataFrame (read from a Parquet file before the clock
  starts) appended to a table; run.py truncates before and checks after;
- seed   (W5): the seed's own three measurements, with db_pool only;
- many   (W6): execute_many of parameter rows into a table; run.py
  truncates before and checks after;
- waiters (P5): db_pool's small query from many more tasks than connections;
- memory (P4): db_pool's peak memory reading a table into one frame, or
  streaming a long query batch by batch, against the data it holds.

Connections and pools are opened before the clock starts, except where a
peer's own API opens them inside the call (pl.read_database_uri), which is
how that API is used.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Awaitable, Callable

import polars as pl

Args = dict[str, Any]
Result = dict[str, Any]


def checksum(df: pl.DataFrame) -> str:
    """Row count plus one figure per column, comparable across dtypes: a
    numeric(12,2) read as Decimal and as Float64 give the same figure, so
    contenders that choose other dtypes still agree on the values."""
    parts = [str(df.height)]
    for name, dtype in df.schema.items():
        col = df[name]
        if dtype == pl.Boolean or dtype.is_integer():
            v = str(int(col.cast(pl.Int64).sum()))
        elif dtype.is_float() or dtype.is_decimal():
            v = f"{float(col.cast(pl.Float64).sum()):.9e}"
        elif dtype == pl.Date:
            v = str(int(col.cast(pl.Int64).sum()))
        elif isinstance(dtype, pl.Datetime):
            v = str(int(col.dt.epoch("us").sum()))
        elif dtype == pl.String:
            v = f"{int(col.str.len_bytes().sum())}~{col.n_unique()}"
        else:
            v = str(dtype)
        parts.append(f"{name}={v}/{col.null_count()}")
    return " ".join(parts)


def rss_mib(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith(f"{field}:"))
    return kib / 1024


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM: unlike getrusage's ru_maxrss, it does not
    inherit the parent's peak across fork + exec)."""
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kib / 1024


class Clock:
    """Times the block it wraps: ``with clock: ...``; ``clock.seconds``."""

    seconds = 0.0

    def __enter__(self) -> Clock:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def psql(url: str, sql: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          check=True, **kw)


# ---- W2 / W4: a whole table into a DataFrame -------------------------------------------
# Each returns (frame or None, seconds).


def read_db_pool(a: Args) -> tuple[pl.DataFrame, float]:
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
        with Clock() as c:
            df = pool.query("b", a["sql"])
    return df, c.seconds


def read_db_pool_partitioned(a: Args, n: int) -> tuple[pl.DataFrame, float]:
    """n range queries on a["partition_on"] at once, on a pool of n connections.
    The rows arrive in no particular order: sorted after the clock stops, so
    the checksum's float sums add in the same order as everyone else's."""
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=n, max_size=n)
        with Clock() as c:
            df = pool.query("b", a["sql"], partition_on=a["partition_on"], partitions=n)
    return df.sort(a["partition_on"]), c.seconds


def read_connectorx_partitioned(a: Args, n: int) -> tuple[pl.DataFrame, float]:
    """ConnectorX's own partitioning on the same column (MIN/MAX, then n ranges)."""
    with Clock() as c:
        df = pl.read_database_uri(a["sql"], a["cx_url"], engine="connectorx",
                                  partition_on=a["partition_on"], partition_num=n)
    return df.sort(a["partition_on"]), c.seconds


def read_connectorx(a: Args) -> tuple[pl.DataFrame, float]:
    with Clock() as c:
        df = pl.read_database_uri(a["sql"], a["cx_url"], engine="connectorx")
    return df, c.seconds


def read_adbc(a: Args) -> tuple[pl.DataFrame, float]:
    """ADBC hands PostgreSQL numeric over as its text (an opaque Arrow
    extension type); the cast to the column's Decimal is part of the read."""
    with Clock() as c:
        df = pl.read_database_uri(a["sql"], a["adbc_url"], engine="adbc")
        df = df.with_columns(pl.col(name).ext.storage().cast(pl.Decimal(12, 2))
                             for name, dtype in df.schema.items()
                             if isinstance(dtype, pl.Extension))
    return df, c.seconds


def read_sqlite3(a: Args) -> tuple[pl.DataFrame, float]:
    import sqlite3

    conn = sqlite3.connect(a["path"])
    with Clock() as c:
        df = pl.read_database(a["sql"], conn)
    return df, c.seconds


def read_asyncpg(a: Args) -> tuple[pl.DataFrame, float]:
    """asyncpg's records, then a DataFrame built from them."""
    import asyncpg

    async def run() -> tuple[pl.DataFrame, float]:
        conn = await asyncpg.connect(a["pg_url"])
        try:
            with Clock() as c:
                stmt = await conn.prepare(a["sql"])
                names = [att.name for att in stmt.get_attributes()]
                records = await stmt.fetch()
                df = pl.DataFrame([tuple(r) for r in records], schema=names, orient="row")
            return df, c.seconds
        finally:
            await conn.close()

    return asyncio.run(run())


def read_psycopg_copy(a: Args) -> tuple[pl.DataFrame, float]:
    """psycopg's COPY ... TO STDOUT (FORMAT csv), parsed by polars' CSV reader
    with the table's schema (the fast way to get a frame out of psycopg)."""
    import psycopg

    with psycopg.connect(a["pg_url"]) as conn, conn.cursor() as cur:
        with Clock() as c:
            cur.execute(f"SELECT * FROM ({a['sql']}) q LIMIT 0")
            schema = {d.name: PG_CSV_DTYPES[d.type_code] for d in cur.description or []}
            buf = io.BytesIO()
            with cur.copy(f"COPY ({a['sql']}) TO STDOUT (FORMAT csv)") as copy:
                for block in copy:
                    buf.write(block)
            df = pl.read_csv(buf.getvalue(), has_header=False, new_columns=list(schema),
                             schema_overrides={k: pl.String if v == pl.Boolean else v
                                               for k, v in schema.items()})
            bools = [k for k, v in schema.items() if v == pl.Boolean]  # CSV says t / f
            df = df.with_columns(pl.col(b) == "t" for b in bools)
    return df, c.seconds


# PostgreSQL type oids of the W2 table -> the dtype polars' CSV reader is given.
PG_CSV_DTYPES: dict[int, Any] = {23: pl.Int32, 20: pl.Int64, 701: pl.Float64, 1700: pl.Decimal(12, 2),
                 25: pl.String, 1114: pl.Datetime("us"), 16: pl.Boolean, 1082: pl.Date}


def read_psql_copy(a: Args) -> tuple[None, float]:
    """The server's own limit: binary COPY into /dev/null, no DataFrame."""
    with open(os.devnull, "wb") as sink, Clock() as c:
        psql(a["pg_url"], f"COPY ({a['sql']}) TO STDOUT (FORMAT binary)", stdout=sink)
    return None, c.seconds


READ: dict[str, Callable[[Args], tuple[pl.DataFrame | None, float]]] = {
    "db_pool": read_db_pool,
    "connectorx": read_connectorx,
    "adbc": read_adbc,
    "sqlite3": read_sqlite3,
    "asyncpg_df": read_asyncpg,
    "psycopg_copy": read_psycopg_copy,
    "psql_copy": read_psql_copy,
    "db_pool_p2": lambda a: read_db_pool_partitioned(a, 2),
    "db_pool_p4": lambda a: read_db_pool_partitioned(a, 4),
    "connectorx_p2": lambda a: read_connectorx_partitioned(a, 2),
    "connectorx_p4": lambda a: read_connectorx_partitioned(a, 4),
}


# ---- W1: many 1-row primary-key SELECTs at a concurrency ------------------------------
# Every query returns (id, name, score) for key k: id = k, name = 'name-k',
# score = k / 2. Each contender turns its answer into id + 2*score + len(name)
# (all exact integers), and the sum over all queries is its checksum.


def row_value(row: tuple[Any, ...] | Any) -> int:
    return int(row[0]) + int(row[2] * 2) + len(row[1])


def figures(seconds: float, latencies: list[float], total: int, n: int) -> Result:
    latencies.sort()
    return {"seconds": seconds, "qps": n / seconds,
            "mean_ms": statistics.fmean(latencies) * 1e3,
            "p50_ms": statistics.median(latencies) * 1e3,
            "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1e3,
            "checksum": str(total), "rows": n}


async def drive_async(one: Callable[[int], Awaitable[int]], a: Args) -> Result:
    """Runs a["queries"] calls of `one` from a["concurrency"] asyncio tasks,
    after an untimed warm-up that touches every connection (a["warmup"]
    calls, 4 per task by default)."""
    n, conc, keys = a["queries"], a["concurrency"], a["keys"]
    warmup = a.get("warmup", 4 * conc)

    async def worker(k: int, count: int, latencies: list[float]) -> int:
        total = 0
        for i in range(k, count, conc):
            t = time.perf_counter()
            total += await one(i % keys + 1)
            latencies.append(time.perf_counter() - t)
        return total

    await asyncio.gather(*(worker(k, warmup, []) for k in range(min(conc, warmup))))
    latencies: list[float] = []
    start = time.perf_counter()
    totals = await asyncio.gather(*(worker(k, n, latencies) for k in range(conc)))
    return figures(time.perf_counter() - start, latencies, sum(totals), n)


def drive_threads(ones: list[Callable[[int], int]], a: Args) -> Result:
    """The same from one thread per concurrent caller; ones[k] is thread k's call."""
    n, conc, keys = a["queries"], a["concurrency"], a["keys"]
    latencies: list[list[float]] = [[] for _ in range(conc)]
    totals = [0] * conc
    go = threading.Barrier(conc + 1)

    def worker(k: int) -> None:
        for i in range(k, 4 * conc, conc):  # warm-up
            ones[k](i % keys + 1)
        go.wait()
        go.wait()
        for i in range(k, n, conc):
            t = time.perf_counter()
            totals[k] += ones[k](i % keys + 1)
            latencies[k].append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
    for t in threads:
        t.start()
    go.wait()  # everyone warmed up
    start = time.perf_counter()
    go.wait()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return figures(seconds, [x for part in latencies for x in part], sum(totals), n)


async def small_db_pool(a: Args) -> Result:
    from db_pool import DatabasePool

    async with DatabasePool() as pool:
        await pool.create_pool("b", url=a["url"], min_size=a["concurrency"],
                               max_size=a["concurrency"], **a.get("pool_options", {}))

        async def one(key: int) -> int:
            return row_value((await pool.query("b", a["sql"], [key])).row(0))

        return await drive_async(one, a)


def small_db_pool_sync(a: Args) -> Result:
    """The blocking API, one thread per concurrent caller, one shared pool."""
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=a["concurrency"], max_size=a["concurrency"])

        def one(key: int) -> int:
            return row_value(pool.query("b", a["sql"], [key]).row(0))

        return drive_threads([one] * a["concurrency"], a)


async def small_asyncpg(a: Args, frame: bool) -> Result:
    import asyncpg

    pool = await asyncpg.create_pool(a["pg_url"], min_size=a["concurrency"],
                                     max_size=a["concurrency"])
    try:
        async def one(key: int) -> int:
            records = await pool.fetch(a["sql"], key)
            if frame:
                df = pl.DataFrame([tuple(r) for r in records], schema=list(records[0].keys()),
                                  orient="row")
                return row_value(df.row(0))
            return row_value(records[0])

        return await drive_async(one, a)
    finally:
        await pool.close()


async def small_psycopg(a: Args, frame: bool) -> Result:
    from psycopg_pool import AsyncConnectionPool

    sql = a["sql"].replace("$1", "%s")
    async with AsyncConnectionPool(a["pg_url"], min_size=a["concurrency"],
                                   max_size=a["concurrency"], open=False) as pool:
        await pool.wait()

        async def one(key: int) -> int:
            async with pool.connection() as conn:
                cur = await conn.execute(sql, (key,), prepare=True)
                rows = await cur.fetchall()
                names = [d.name for d in cur.description or []]
            if frame:
                return row_value(pl.DataFrame(rows, schema=names, orient="row").row(0))
            return row_value(rows[0])

        return await drive_async(one, a)


def small_adbc(a: Args) -> Result:
    """pl.read_database on a kept-open ADBC connection per thread."""
    import adbc_driver_postgresql.dbapi as adbc

    conns = [adbc.connect(a["pg_url"]) for _ in range(a["concurrency"])]
    try:
        def caller(conn: Any) -> Callable[[int], int]:
            def one(key: int) -> int:
                df = pl.read_database(a["sql"], conn, execute_options={"parameters": (key,)})
                return row_value(df.row(0))
            return one

        return drive_threads([caller(c) for c in conns], a)
    finally:
        for c in conns:
            c.close()


def small_pgbench(a: Args) -> Result:
    """The server's own limit: pgbench -M prepared running the same SELECT
    (what -S does, on our table) with the same number of clients for
    a["seconds"]; latencies from its per-transaction log."""
    conc = a["concurrency"]
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "select.sql")
        with open(script, "w") as f:
            f.write(f"\\set id random(1, {a['keys']})\n{a['sql'].replace('$1', ':id')};\n")
        out = subprocess.run(
            ["pgbench", "-n", "-M", "prepared", "-c", str(conc), "-j", str(min(2, conc)),
             "-T", str(a["seconds"]), "-f", script, "-l", "--log-prefix", f"{tmp}/log",
             a["pg_url"]],
            capture_output=True, text=True, check=True, cwd=tmp,
        ).stdout
        latencies = []
        for log in os.listdir(tmp):
            if log.startswith("log"):
                with open(os.path.join(tmp, log)) as f:
                    latencies += [int(line.split()[2]) / 1e6 for line in f]
    tps = float(next(line for line in out.splitlines() if line.startswith("tps")).split()[2])
    result = figures(len(latencies) / tps, latencies, 0, len(latencies))
    return {**result, "qps": tps, "checksum": "n/a"}


# ---- W4 point: 1-row primary-key SELECTs on SQLite, one caller ------------------------
# The same rows and checksum as W1 (table bench_small in a SQLite file).


def point_sqlite3(a: Args) -> Result:
    """Python's sqlite3, each answer made a DataFrame as db_pool does."""
    import sqlite3

    conn = sqlite3.connect(a["path"], check_same_thread=False)
    sql = a["sql"].replace("$1", "?")

    def one(key: int) -> int:
        cur = conn.execute(sql, (key,))
        rows = cur.fetchall()
        df = pl.DataFrame(rows, schema=[d[0] for d in cur.description], orient="row")
        return row_value(df.row(0))

    try:
        return drive_threads([one], a)
    finally:
        conn.close()


async def point_aiosqlite(a: Args) -> Result:
    import aiosqlite

    sql = a["sql"].replace("$1", "?")
    async with aiosqlite.connect(a["path"]) as conn:
        async def one(key: int) -> int:
            async with conn.execute(sql, (key,)) as cur:
                rows = await cur.fetchall()
                names = [d[0] for d in cur.description]
            return row_value(pl.DataFrame(rows, schema=names, orient="row").row(0))

        return await drive_async(one, a)


async def point_db_pool(a: Args) -> Result:
    from db_pool import DatabasePool

    async with DatabasePool() as pool:
        await pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
        sql = a["sql"].replace("$1", "?")

        async def one(key: int) -> int:
            return row_value((await pool.query("b", sql, [key])).row(0))

        return await drive_async(one, a)


def point_db_pool_sync(a: Args) -> Result:
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=1, max_size=1, **a.get("pool_options", {}))
        sql = a["sql"].replace("$1", "?")

        def one(key: int) -> int:
            return row_value(pool.query("b", sql, [key]).row(0))

        return drive_threads([one], a)


POINT: dict[str, Callable[[Args], Any]] = {
    "db_pool": point_db_pool,
    "db_pool_sync": point_db_pool_sync,
    "sqlite3_df": point_sqlite3,
    "aiosqlite_df": point_aiosqlite,
}


SMALL: dict[str, Callable[[Args], Any]] = {
    "db_pool": small_db_pool,
    "db_pool_sync": small_db_pool_sync,
    "asyncpg": lambda a: small_asyncpg(a, frame=False),
    "asyncpg_df": lambda a: small_asyncpg(a, frame=True),
    "psycopg_pool": lambda a: small_psycopg(a, frame=False),
    "psycopg_pool_df": lambda a: small_psycopg(a, frame=True),
    "adbc": small_adbc,
    "pgbench": small_pgbench,
}


async def waiters_db_pool(a: Args) -> Result:
    """W1's query from a["concurrency"] tasks sharing a["pool_size"]
    connections: each query's latency is mostly its wait for a connection."""
    from db_pool import DatabasePool

    async with DatabasePool() as pool:
        await pool.create_pool("b", url=a["url"], min_size=a["pool_size"],
                               max_size=a["pool_size"], max_waiting=a["concurrency"],
                               acquire_timeout=600)

        async def one(key: int) -> int:
            return row_value((await pool.query("b", a["sql"], [key])).row(0))

        return await drive_async(one, {**a, "warmup": 10 * a["pool_size"]})


WAITERS: dict[str, Callable[[Args], Any]] = {
    "db_pool_100_tasks": lambda a: waiters_db_pool({**a, "concurrency": 100}),
    "db_pool_10000_tasks": lambda a: waiters_db_pool({**a, "concurrency": 10_000}),
}


# ---- W3: a DataFrame into a table ------------------------------------------------------
# Each returns the seconds of the write; run.py truncates the table before
# and checks count + checksum after.


def write_db_pool(a: Args, df: pl.DataFrame) -> float:
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
        with Clock() as c:
            pool.write_frame("b", df, a["table"])
    return c.seconds


def write_adbc(a: Args, df: pl.DataFrame) -> float:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(a["pg_url"]) as conn:
        with Clock() as c:
            df.write_database(a["table"], conn, engine="adbc", if_table_exists="append")
    return c.seconds


def write_asyncpg(a: Args, df: pl.DataFrame) -> float:
    import asyncpg

    async def run() -> float:
        conn = await asyncpg.connect(a["pg_url"])
        try:
            with Clock() as c:
                await conn.copy_records_to_table(a["table"], records=df.iter_rows(),
                                                 columns=df.columns)
            return c.seconds
        finally:
            await conn.close()

    return asyncio.run(run())


def write_psycopg_copy(a: Args, df: pl.DataFrame) -> float:
    """polars writes CSV, psycopg sends it with COPY ... FROM STDIN."""
    import psycopg

    with psycopg.connect(a["pg_url"]) as conn:
        with Clock() as c, conn.cursor() as cur:
            cols = ", ".join(df.columns)
            with cur.copy(f"COPY {a['table']} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(df.write_csv(include_header=False))
    return c.seconds


def write_psql_copy(a: Args, df: pl.DataFrame) -> float:
    """The server's own limit: psql COPY FROM a binary COPY file of the same rows."""
    with open(a["binary_file"], "rb") as src, Clock() as c:
        psql(a["pg_url"], f"COPY {a['table']} FROM STDIN (FORMAT binary)", stdin=src)
    return c.seconds


WRITE: dict[str, Callable[[Args, pl.DataFrame], float]] = {
    "db_pool": write_db_pool,
    "adbc": write_adbc,
    "asyncpg": write_asyncpg,
    "psycopg_copy": write_psycopg_copy,
    "psql_copy": write_psql_copy,
}


# ---- W6: execute_many of parameter rows --------------------------------------------------
# Each returns the seconds of the call (one transaction); run.py truncates the
# table before and checks count + checksum after.


def many_rows(a: Args) -> list[tuple[int, str, float]]:
    return [(i, f"name-{i}", i * 0.5) for i in range(1, a["rows"] + 1)]


def many_db_pool(a: Args) -> float:
    from db_pool import DatabasePool

    rows = many_rows(a)

    async def run() -> float:
        async with DatabasePool() as pool:
            await pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
            with Clock() as c:
                await pool.execute_many("b", f"INSERT INTO {a['table']} VALUES ($1, $2, $3)",
                                        rows)
            return c.seconds

    return asyncio.run(run())


def many_asyncpg(a: Args) -> float:
    import asyncpg

    rows = many_rows(a)

    async def run() -> float:
        conn = await asyncpg.connect(a["pg_url"])
        try:
            with Clock() as c:  # atomic: asyncpg runs it in one implicit transaction
                await conn.executemany(f"INSERT INTO {a['table']} VALUES ($1, $2, $3)", rows)
            return c.seconds
        finally:
            await conn.close()

    return asyncio.run(run())


def many_psycopg(a: Args) -> float:
    """psycopg 3's executemany, which pipelines the statements (libpq >= 14)."""
    import psycopg

    rows = many_rows(a)
    with psycopg.connect(a["pg_url"]) as conn:
        with Clock() as c:
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {a['table']} VALUES (%s, %s, %s)", rows)
            conn.commit()
    return c.seconds


MANY: dict[str, Callable[[Args], float]] = {
    "db_pool": many_db_pool,
    "asyncpg": many_asyncpg,
    "psycopg": many_psycopg,
}


# ---- P4: peak memory against the data held -------------------------------------------


def idle_mib(pool: Any) -> float:
    """The process's RSS once a first tiny query has run: polars starts its
    thread pool and allocator arenas on the first DataFrame, which is the
    interpreter's baseline, not the cost of the read being measured."""
    pool.query("b", "SELECT 1 AS warm")
    return rss_mib()


def memory_query(a: Args) -> Result:
    """The whole table into one DataFrame."""
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
        idle = idle_mib(pool)
        with Clock() as c:
            df = pool.query("b", a["sql"])
        peak = peak_rss_mib()  # before the checksum, whose sorting and hashing cost memory too
        return {"seconds": c.seconds, "rows": df.height, "checksum": checksum(df),
                "idle_mib": idle, "data_mib": df.estimated_size() / 2**20, "read_peak_mib": peak}


def memory_stream(a: Args) -> Result:
    """A long query through stream(), each batch dropped once summed: memory
    should stay at a few batches whatever the row count."""
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
        idle = idle_mib(pool)
        rows, total, largest = 0, 0, 0.0
        with Clock() as c:
            for batch in pool.stream("b", a["sql"], batch_rows=a["batch_rows"]):
                rows += batch.height
                total += int(batch["i"].sum())
                largest = max(largest, batch.estimated_size() / 2**20)
        return {"seconds": c.seconds, "rows": rows, "checksum": f"{rows}/{total}",
                "idle_mib": idle, "data_mib": largest, "read_peak_mib": peak_rss_mib()}


MEMORY: dict[str, Callable[[Args], Result]] = {
    "db_pool_query": memory_query,
    "db_pool_stream": memory_stream,
}


# ---- W5: the seed's own workload, db_pool on one engine --------------------------------


async def seed_db_pool(a: Args) -> Result:
    """The seed's three figures: a simple query one at a time, the same query
    from 10 concurrent tasks, and 20-row batch inserts one after another.
    On PostgreSQL also the simple query with copy=False (no COPY path)."""
    from db_pool import DatabasePool

    n, batches = a["queries"], a["batches"]
    pg = a["url"].startswith("postgres")
    async with DatabasePool() as pool:
        await pool.create_pool("b", url=a["url"], min_size=10, max_size=10)

        async def one(key: int) -> int:
            return int((await pool.query("b", a["sql"])).item(0, 0))

        async def one_nocopy(key: int) -> int:
            return int((await pool.query("b", a["sql"], copy=False)).item(0, 0))

        simple = await drive_async(one, {**a, "concurrency": 1})
        concurrent = await drive_async(one, {**a, "concurrency": 10})
        nocopy = await drive_async(one_nocopy, {**a, "concurrency": 1}) if pg else simple
        await pool.execute("b", a["reset"])
        start = time.perf_counter()
        for b in range(batches):
            rows = [(b * 20 + i, f"row {b * 20 + i}", i * 0.5) for i in range(20)]
            await pool.execute_many("b", a["insert"], rows)
        batch_seconds = time.perf_counter() - start
        count = (await pool.query("b", a["count"])).item(0, 0)
    return {"seconds": simple["seconds"] + concurrent["seconds"] + batch_seconds,
            "simple_qps": simple["qps"], "simple_ms": simple["mean_ms"],
            "concurrent_qps": concurrent["qps"], "concurrent_ms": concurrent["mean_ms"],
            "simple_nocopy_qps": nocopy["qps"],
            "batches_per_s": batches / batch_seconds, "batch_ms": batch_seconds / batches * 1e3,
            "batch_rows_per_s": batches * 20 / batch_seconds,
            "rows": n, "checksum": f"{simple['checksum']}/{concurrent['checksum']}/{count}"}


# ---- metrics overhead: db_pool against itself built without metrics --------------------
# "CONTENDER@VARIANT" runs CONTENDER on the package built into a[VARIANT's
# build] (run.py builds both the same way, only -Dmetrics differs), with
# leak detection on for the _leak variants.

LEAK_OPTIONS = {"leak_detection_threshold": 60.0}
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "metrics_off": ("build_off", {}),
    "metrics_on": ("build_on", {}),
    "metrics_off_leak": ("build_off", LEAK_OPTIONS),
    "metrics_on_leak": ("build_on", LEAK_OPTIONS),
}


def use_build(path: str) -> None:
    """Imports db_pool from `path` instead of the editable install (whose
    finder sits first on sys.meta_path)."""
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not type(f).__module__.startswith("_db_pool_editable")]
    sys.path.insert(0, path)


def main() -> None:
    workload, contender, a = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    contender, _, variant = contender.partition("@")
    if variant:
        build, options = VARIANTS[variant]
        use_build(a[build])
        a = {**a, "pool_options": options}
    result: Result
    if workload == "read":
        df, seconds = READ[contender](a)
        peak = peak_rss_mib()  # the read's, not the checksum's
        result = {"seconds": seconds, "rows": df.height if df is not None else None,
                  "checksum": checksum(df) if df is not None else "n/a"}
    elif workload == "write":
        frame = pl.read_parquet(a["parquet"])
        result = {"seconds": WRITE[contender](a, frame), "rows": frame.height}
    elif workload == "memory":
        result = MEMORY[contender](a)
    elif workload == "many":
        result = {"seconds": MANY[contender](a), "rows": a["rows"]}
    elif workload in ("small", "point", "waiters"):
        out = {"small": SMALL, "point": POINT, "waiters": WAITERS}[workload][contender](a)
        result = asyncio.run(out) if asyncio.iscoroutine(out) else out
    elif workload == "seed":
        result = asyncio.run(seed_db_pool(a))
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    # the limits run in a psql / pgbench child: this process's memory says nothing
    if workload == "read":
        result["peak_rss_mib"] = peak
    elif workload == "memory":
        result["peak_rss_mib"] = result.pop("read_peak_mib")
    else:
        result["peak_rss_mib"] = peak_rss_mib()
    if contender.endswith(("psql_copy", "pgbench")):
        result["peak_rss_mib"] = float("nan")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
