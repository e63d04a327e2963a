"""W8 Redis contenders: one contender running one Redis workload once, in
its own process (bench/run.py runs this file for workloads named redis_*).

    python bench/redis_contenders.py WORKLOAD CONTENDER JSON_ARGS

Prints one JSON object on its last line, as bench/contenders.py does (whose
checksum, clock and async driver it reuses):

- redis_scan:     the hashes matching a pattern into a polars DataFrame
  (a `_key` column and one typed column per field), sorted by key after
  the clock stops so every contender's checksum adds in the same order;
- redis_get:      GET of one key from many asyncio tasks;
- redis_pipeline: pipelines of `depth` GETs of one key from `concurrency`
  tasks (or redis-benchmark -P depth -t get, the limit);
- redis_write:    a DataFrame (read from Parquet before the clock starts)
  written as one hash per row; bench/redis_bench.py flushes before and
  checks after.

Arguments: url (redis://, for db_pool), host, port, db (for the others),
and pattern / fields / key / parquet / prefix / ... per workload.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any, Callable

import polars as pl

from contenders import Args, Clock, Result, checksum, drive_async, figures, peak_rss_mib

DTYPES = {"Int64": pl.Int64, "Float64": pl.Float64, "Utf8": pl.Utf8}


def schema_of(a: Args) -> dict[str, Any]:
    """The fields to read and their dtypes, from their names in the JSON args."""
    return {name: DTYPES[t] for name, t in a["fields"].items()}


def check_hiredis() -> None:
    """redis-py must parse with hiredis, as its users are told to install it."""
    from redis.utils import HIREDIS_AVAILABLE

    if not HIREDIS_AVAILABLE:
        raise SystemExit("redis-py has no hiredis parser: pip install hiredis (make bench-deps)")


def redis_py(a: Args, **kw: Any) -> Any:
    import redis

    check_hiredis()
    return redis.Redis(host=a["host"], port=a["port"], db=a["db"], **kw)


# ---- redis_scan: hashes into a DataFrame -----------------------------------------------


def scan_db_pool(a: Args) -> tuple[pl.DataFrame, float]:
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
        with Clock() as c:
            df = pool.query("b", "HGETALL", pattern=a["pattern"], schema=schema_of(a),
                            scan_count=a["scan_count"])
    return df, c.seconds


def hashes_redis_py(r: Any, pattern: str, schema: dict[str, Any], count: int) -> pl.DataFrame:
    """SCAN + one pipeline of HGETALL per SCAN page, the replies gathered in
    one list per field and cast by polars: how a redis-py user builds the
    frame (decode_responses=True: hiredis decodes the strings)."""
    keys: list[str] = []
    cols: dict[str, list[Any]] = {f: [] for f in schema}
    seen: set[str] = set()  # SCAN may return a key twice
    cursor = 0
    while True:
        cursor, page = r.scan(cursor, match=pattern, count=count)
        page = [k for k in page if k not in seen]
        seen.update(page)
        pipe = r.pipeline(transaction=False)
        for k in page:
            pipe.hgetall(k)
        for k, h in zip(page, pipe.execute()):
            if not h:  # gone since its SCAN
                continue
            keys.append(k)
            for f, col in cols.items():
                col.append(h.get(f))
        if cursor == 0:
            break
    return pl.DataFrame([pl.Series("_key", keys, dtype=pl.Utf8)]
                        + [pl.Series(f, cols[f], dtype=pl.Utf8).cast(t)
                           for f, t in schema.items()])


def scan_redis_py(a: Args) -> tuple[pl.DataFrame, float]:
    r = redis_py(a, decode_responses=True)
    r.ping()
    with Clock() as c:
        df = hashes_redis_py(r, a["pattern"], schema_of(a), a["scan_count"])
    r.close()
    return df, c.seconds


SCAN: dict[str, Callable[[Args], tuple[pl.DataFrame, float]]] = {
    "db_pool": scan_db_pool,
    "redis_py": scan_redis_py,
}


# ---- redis_get: GET of one key at a concurrency ----------------------------------------


async def get_db_pool(a: Args) -> Result:
    from db_pool import DatabasePool

    async with DatabasePool() as pool:
        await pool.create_pool("b", url=a["url"], min_size=a["concurrency"],
                               max_size=a["concurrency"])

        async def one(_: int) -> int:
            return len(await pool.command("b", "GET", a["key"]))

        return await drive_async(one, a)


async def get_redis_py(a: Args) -> Result:
    import redis.asyncio

    check_hiredis()
    pool = redis.asyncio.BlockingConnectionPool(host=a["host"], port=a["port"], db=a["db"],
                                                max_connections=a["concurrency"])
    r = redis.asyncio.Redis(connection_pool=pool)
    try:
        async def one(_: int) -> int:
            value = await r.get(a["key"])
            assert isinstance(value, bytes)
            return len(value)

        return await drive_async(one, a)
    finally:
        await r.aclose()
        await pool.disconnect()


GET: dict[str, Callable[[Args], Any]] = {
    "db_pool": get_db_pool,
    "redis_py": get_redis_py,
}


# ---- redis_pipeline: pipelines of `depth` GETs ------------------------------------------


async def pipeline_db_pool(a: Args) -> Result:
    from db_pool import DatabasePool

    cmds = [("GET", a["key"])] * a["depth"]
    async with DatabasePool() as pool:
        await pool.create_pool("b", url=a["url"], min_size=a["concurrency"],
                               max_size=a["concurrency"])

        async def one(_: int) -> int:
            return sum(map(len, await pool.pipeline("b", cmds)))

        return per_command(await drive_async(one, a), a)


async def pipeline_redis_py(a: Args) -> Result:
    import redis.asyncio

    check_hiredis()
    pool = redis.asyncio.BlockingConnectionPool(host=a["host"], port=a["port"], db=a["db"],
                                                max_connections=a["concurrency"])
    r = redis.asyncio.Redis(connection_pool=pool)
    try:
        async def one(_: int) -> int:
            pipe = r.pipeline(transaction=False)
            for _ in range(a["depth"]):
                pipe.get(a["key"])
            return sum(map(len, await pipe.execute()))

        return per_command(await drive_async(one, a), a)
    finally:
        await r.aclose()
        await pool.disconnect()


def per_command(r: Result, a: Args) -> Result:
    """drive_async counts pipelines: report commands per second (qps) as
    redis-benchmark does, keeping the pipelines' latencies."""
    r["pipelines_per_s"] = r["qps"]
    r["qps"] *= a["depth"]
    r["checksum"] = f"{a['queries'] * a['depth']} {r['checksum']}"
    return r


async def pipeline_redis_benchmark(a: Args) -> Result:
    """redis-benchmark's own GET test on the same key (it sends the key
    `key:__rand_int__` literally without -r), the same pipeline depth and
    number of connections; its CSV line gives requests per second and
    latencies (ms)."""
    n = a["queries"] * a["depth"]
    cmd = ["redis-benchmark", "-h", a["host"], "-p", str(a["port"]), "--dbnum", str(a["db"]),
           "-c", str(a["concurrency"]), "-P", str(a["depth"]), "-n", str(n), "-t", "get",
           "--csv"]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    seconds = time.perf_counter() - start
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",...
    head, row = [line for line in out.splitlines() if line.strip()][-2:]
    values = dict(zip(json.loads(f"[{head}]"), json.loads(f"[{row}]")))
    return {"seconds": seconds, "qps": float(values["rps"]),
            "p50_ms": float(values["p50_latency_ms"]), "p99_ms": float(values["p99_latency_ms"]),
            "rows": n, "checksum": "n/a", "peak_rss_mib": float("nan")}


PIPELINE: dict[str, Callable[[Args], Any]] = {
    "db_pool": pipeline_db_pool,
    "redis_py": pipeline_redis_py,
    "redis_benchmark": pipeline_redis_benchmark,
}


# ---- redis_write: a DataFrame as hashes ---------------------------------------------------


def write_db_pool(a: Args, df: pl.DataFrame) -> float:
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
        with Clock() as c:
            written = pool.write_frame("b", df, key_column=a["key_column"], prefix=a["prefix"],
                                       kind="hash")
    if written != df.height:
        raise SystemExit(f"db_pool wrote {written} rows of {df.height}")
    return c.seconds


def write_redis_py(a: Args, df: pl.DataFrame) -> float:
    """One HSET key field value ... per row, sent in pipelines of `batch`
    (no MULTI): redis-py's documented way to load many keys."""
    r = redis_py(a)
    r.ping()
    key_at = df.columns.index(a["key_column"])
    fields = [(i, name) for i, name in enumerate(df.columns) if i != key_at]
    prefix, batch = a["prefix"], a["batch"]
    with Clock() as c:
        pipe = r.pipeline(transaction=False)
        for n, row in enumerate(df.iter_rows(), 1):
            pipe.hset(f"{prefix}{row[key_at]}",
                      mapping={name: row[i] for i, name in fields if row[i] is not None})
            if n % batch == 0:
                pipe.execute()
        pipe.execute()
    r.close()
    return c.seconds


WRITE: dict[str, Callable[[Args, pl.DataFrame], float]] = {
    "db_pool": write_db_pool,
    "redis_py": write_redis_py,
}


def main() -> None:
    workload, contender, a = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    result: Result
    if workload == "redis_scan":
        df, seconds = SCAN[contender](a)
        peak = peak_rss_mib()  # the read's, not the checksum's
        result = {"seconds": seconds, "rows": df.height, "peak_rss_mib": peak,
                  "checksum": checksum(df.sort("_key")), "dtypes": str(df.dtypes)}
    elif workload == "redis_get":
        result = asyncio.run(GET[contender](a))
        result["peak_rss_mib"] = peak_rss_mib()
    elif workload == "redis_pipeline":
        result = asyncio.run(PIPELINE[contender](a))
        if contender != "redis_benchmark":
            result["peak_rss_mib"] = peak_rss_mib()
    elif workload == "redis_write":
        frame = pl.read_parquet(a["parquet"])
        result = {"seconds": WRITE[contender](a, frame), "rows": frame.height,
                  "peak_rss_mib": peak_rss_mib()}
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
