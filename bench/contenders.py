"""One contender running one workload once, in its own process.

    python bench/contenders.py WORKLOAD CONTENDER JSON_ARGS

prints one JSON object: seconds (the timed part only), rows, checksum
(so nobody wins by doing less), peak RSS of this process in MiB, and
workload-specific figures (qps, p50/p99 latency). bench/run.py calls this
in alternating order and aggregates.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Awaitable, Callable

import polars as pl

Args = dict[str, Any]


def checksum(df: pl.DataFrame) -> str:
    """Row count plus per-column sums/counts that every contender must match."""
    parts = [str(df.height)]
    for name, dtype in df.schema.items():
        col = df[name]
        if dtype.is_integer():
            parts.append(str(int(col.sum())))
        elif dtype.is_float():
            parts.append(f"{float(col.sum()):.6e}")
        elif dtype.is_decimal():
            parts.append(str(col.cast(pl.Float64).sum().__round__(2)))
        else:
            parts.append(str(col.null_count()))
    return "/".join(parts)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- W2 / W4: bulk reads into a DataFrame -------------------------------------------


def bulk_db_pool(a: Args) -> pl.DataFrame:
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
        start = time.perf_counter()
        df = pool.query("b", a["sql"])
        a["_seconds"] = time.perf_counter() - start
    return df


def bulk_connectorx(a: Args) -> pl.DataFrame:
    start = time.perf_counter()
    df = pl.read_database_uri(a["sql"], a["cx_url"], engine="connectorx")
    a["_seconds"] = time.perf_counter() - start
    return df


def bulk_adbc(a: Args) -> pl.DataFrame:
    start = time.perf_counter()
    df = pl.read_database_uri(a["sql"], a["adbc_url"], engine="adbc")
    a["_seconds"] = time.perf_counter() - start
    return df


def bulk_sqlite3(a: Args) -> pl.DataFrame:
    import sqlite3

    conn = sqlite3.connect(a["path"])
    start = time.perf_counter()
    df = pl.read_database(a["sql"], conn)
    a["_seconds"] = time.perf_counter() - start
    return df


def bulk_psql_copy(a: Args) -> None:
    """The server's own limit: binary COPY into /dev/null, no DataFrame."""
    cmd = ["psql", a["pg_url"], "-X", "-q", "-c",
           f"COPY ({a['sql']}) TO STDOUT (FORMAT binary)"]
    start = time.perf_counter()
    with open("/dev/null", "wb") as sink:
        subprocess.run(cmd, stdout=sink, check=True)
    a["_seconds"] = time.perf_counter() - start


BULK: dict[str, Callable[[Args], pl.DataFrame | None]] = {
    "db_pool": bulk_db_pool,
    "connectorx": bulk_connectorx,
    "adbc": bulk_adbc,
    "sqlite3": bulk_sqlite3,
    "psql_copy": bulk_psql_copy,
}

# ---- W1 / W5: many small queries at a concurrency ----------------------------------


async def _drive(one: Callable[[int], Awaitable[Any]], a: Args) -> dict[str, Any]:
    """Runs a["queries"] calls of `one` from a["concurrency"] tasks."""
    n, conc = a["queries"], a["concurrency"]
    latencies: list[float] = []
    total = 0

    async def worker(k: int) -> None:
        nonlocal total
        for i in range(k, n, conc):
            t = time.perf_counter()
            value = await one(i % a["keys"] + 1)  # not `total += await`: that loses updates
            total += value
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(conc)))
    seconds = time.perf_counter() - start
    latencies.sort()
    return {
        "_seconds": seconds,
        "qps": n / seconds,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
        "checksum": str(total),
        "rows": n,
    }


async def small_db_pool(a: Args) -> dict[str, Any]:
    from db_pool import DatabasePool

    async with DatabasePool() as pool:
        await pool.create_pool("b", url=a["url"], min_size=a["concurrency"],
                               max_size=a["concurrency"])

        async def one(key: int) -> int:
            df = await pool.query("b", a["sql"], [key])
            return int(df.item(0, 0))

        return await _drive(one, a)


def small_db_pool_sync(a: Args) -> dict[str, Any]:
    """The blocking API from a thread per concurrent caller."""
    from concurrent.futures import ThreadPoolExecutor

    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=a["concurrency"], max_size=a["concurrency"])
        n, conc = a["queries"], a["concurrency"]
        latencies: list[list[float]] = [[] for _ in range(conc)]

        def worker(k: int) -> int:
            total = 0
            for i in range(k, n, conc):
                t = time.perf_counter()
                total += int(pool.query("b", a["sql"], [i % a["keys"] + 1]).item(0, 0))
                latencies[k].append(time.perf_counter() - t)
            return total

        start = time.perf_counter()
        with ThreadPoolExecutor(conc) as ex:
            total = sum(ex.map(worker, range(conc)))
        seconds = time.perf_counter() - start
    lat = sorted(x for part in latencies for x in part)
    return {"_seconds": seconds, "qps": n / seconds, "p50_ms": statistics.median(lat) * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3, "checksum": str(total), "rows": n}


async def _asyncpg(a: Args, frame: bool) -> dict[str, Any]:
    import asyncpg

    pool = await asyncpg.create_pool(a["pg_url"], min_size=a["concurrency"],
                                     max_size=a["concurrency"])
    try:
        async def one(key: int) -> int:
            records = await pool.fetch(a["sql"], key)
            if frame:
                df = pl.DataFrame([dict(r) for r in records])
                return int(df.item(0, 0))
            return int(records[0][0])

        return await _drive(one, a)
    finally:
        await pool.close()


async def small_psycopg(a: Args) -> dict[str, Any]:
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
            df = pl.DataFrame(rows, schema=names, orient="row")
            return int(df.item(0, 0))

        return await _drive(one, a)


def small_pgbench(a: Args) -> dict[str, Any]:
    """The server's own limit: pgbench -S -M prepared on the same table."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(f"\\set id random(1, {a['keys']})\n")
        script.write(a["sql"].replace("$1", ":id") + ";\n")
        script.flush()
        seconds = a.get("pgbench_seconds", 5)
        out = subprocess.run(
            ["pgbench", "-n", "-S", "-M", "prepared", "-c", str(a["concurrency"]), "-j", "2",
             "-T", str(seconds), "-f", script.name, "-r", a["pg_url"]],
            capture_output=True, text=True, check=True,
        ).stdout
    tps = float(next(line for line in out.splitlines() if line.startswith("tps")).split()[2])
    lat = float(next(line for line in out.splitlines() if "latency average" in line).split()[3])
    return {"_seconds": seconds, "qps": tps, "p50_ms": lat, "p99_ms": float("nan"),
            "checksum": "n/a", "rows": int(tps * seconds)}


SMALL: dict[str, Callable[[Args], Any]] = {
    "db_pool": small_db_pool,
    "db_pool_sync": small_db_pool_sync,
    "asyncpg": lambda a: _asyncpg(a, frame=False),
    "asyncpg_df": lambda a: _asyncpg(a, frame=True),
    "psycopg_pool_df": small_psycopg,
    "pgbench": small_pgbench,
}


def main() -> None:
    workload, contender, raw = sys.argv[1], sys.argv[2], sys.argv[3]
    a: Args = json.loads(raw)
    result: dict[str, Any]
    if workload == "bulk":
        df = BULK[contender](a)
        result = {"seconds": a["_seconds"], "rows": df.height if df is not None else None,
                  "checksum": checksum(df) if df is not None else "n/a"}
    else:
        out = SMALL[contender](a)
        if asyncio.iscoroutine(out):
            out = asyncio.run(out)
        result = {k.lstrip("_"): v for k, v in out.items()}
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
