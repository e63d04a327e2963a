"""W8: the Redis workloads of bench/run.py, on a private redis-server
started for the run (tests/redis_server.py), peers side by side on the same
server in alternating rounds, every result checked:

- W8 scan:     100k hashes of 6 fields (ints, floats, short strings) into
  a DataFrame (db_pool's query(..., "HGETALL", pattern=, schema=), redis-py
  with hiredis: SCAN + pipelined HGETALL + pl.DataFrame);
- W8 GET:      GET of one key from 50 asyncio tasks (db_pool's command,
  redis.asyncio with a pool of 50);
- W8 pipeline: pipelines of 100 GETs (db_pool's pipeline, redis-py's, and
  redis-benchmark -P 100 -t get as the limit);
- W8 write:    write_frame of 100k rows as hashes (db_pool, redis-py
  pipelines of HSET in batches of 1000), read back and compared.

The contenders live in bench/redis_contenders.py.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from report import medians, plot, ratio_summary, table_qps, table_time

from redis_server import RedisServer  # tests/ is on sys.path (run.py)
from redis_contenders import DTYPES, hashes_redis_py

# The hashes' fields, in the frame's column order, and their dtypes.
FIELDS = {"id": "Int64", "big": "Int64", "score": "Float64", "ratio": "Float64",
          "name": "Utf8", "city": "Utf8"}
READ_PREFIX, WRITE_PREFIX = "w8:user:", "w8:out:"
WRITE_DB = 1  # flushed before each write
GET_KEY = "key:__rand_int__"  # what redis-benchmark -t get reads (no -r)
VALUE = b"v" * 100
CITIES = ["Oslo", "Lima", "Kyoto", "Accra", "Quito", "Perth", "Turku"]


def source_frame(n: int) -> pl.DataFrame:
    """The rows every hash holds: ids 1..n, a large int, two floats (one
    with a long decimal expansion), a short name and a city."""
    i = pl.col("id")
    return pl.DataFrame({"id": pl.int_range(1, n + 1, eager=True)}).with_columns(
        big=i * 1_000_003 - 7,
        score=i.cast(pl.Float64) / 7,
        ratio=(i % 1000).cast(pl.Float64) * 0.25,
        name=pl.format("name-{}", i),
        city=pl.Series([CITIES[k % len(CITIES)] for k in range(n)]),
    )


def redis_py(server: RedisServer, db: int, **kw: Any) -> Any:
    import redis

    return redis.Redis(host=server.host, port=server.port, db=db, **kw)


def load(server: RedisServer, frame: pl.DataFrame) -> None:
    """The scanned hashes (db 0) and the GET key, with redis-py pipelines."""
    r = redis_py(server, 0)
    pipe = r.pipeline(transaction=False)
    for n, row in enumerate(frame.iter_rows(named=True), 1):
        pipe.hset(f"{READ_PREFIX}{row['id']}", mapping=row)
        if n % 1000 == 0:
            pipe.execute()
    pipe.set(GET_KEY, VALUE)
    pipe.execute()
    if r.dbsize() != frame.height + 1:
        raise SystemExit(f"W8: loaded {r.dbsize()} keys, expected {frame.height + 1}")
    r.close()


def read_back(server: RedisServer, frame: pl.DataFrame) -> str:
    """The written hashes read back (SCAN + HGETALL), compared value for value
    with the frame written: what a write must leave behind."""
    r = redis_py(server, WRITE_DB, decode_responses=True)
    schema = {f: DTYPES[t] for f, t in FIELDS.items() if f != "id"}
    got = hashes_redis_py(r, f"{WRITE_PREFIX}*", schema, 1000)
    r.close()
    got = (got.with_columns(pl.col("_key").str.strip_prefix(WRITE_PREFIX).cast(pl.Int64)
                            .alias("id"))
           .select(frame.columns).sort("id"))
    if not got.equals(frame):
        diff = got.join(frame, on="id", how="full", suffix="_sent").head(3)
        raise SystemExit(f"W8 write: the hashes read back ({got.height}) differ from the "
                         f"frame written ({frame.height}):\n{diff}")
    return f"{got.height} rows equal"


def w8(bench: Any) -> None:
    """Runs W8 on a private redis-server and adds its section to the report."""
    # No password: redis-benchmark would need it on its command line.
    server = RedisServer.start_private(auth=False, prefix="dbpool-bench-redis-")
    try:
        run(bench, server)
    finally:
        server.cleanup()


def run(bench: Any, server: RedisServer) -> None:
    import redis
    from redis.utils import HIREDIS_AVAILABLE

    if not HIREDIS_AVAILABLE:
        raise SystemExit("W8: redis-py has no hiredis parser (make bench-deps installs it)")
    keys = 20_000 if bench.quick else 100_000
    frame = source_frame(keys)
    print(f"loading {keys:,} W8 hashes into redis ...", flush=True)
    load(server, frame)
    version = server.info("server")["redis_version"]
    common = {"url": f"redis://{server.host}:{server.port}/0", "host": server.host,
              "port": server.port, "db": 0}

    scan = bench.alternate("W8 scan", "redis_scan", ["db_pool", "redis_py"],
                           {**common, "pattern": f"{READ_PREFIX}*", "fields": FIELDS,
                            "scan_count": 1000})
    bench.summary.append(f"- W8 Redis scan {keys:,} hashes (peer time / db_pool time): "
                         + ratio_summary(scan, "seconds"))

    queries = 20_000 if bench.quick else 100_000
    get = bench.alternate("W8 GET c=50", "redis_get", ["db_pool", "redis_py"],
                          {**common, "key": GET_KEY, "queries": queries, "keys": 1,
                           "concurrency": 50})
    bench.summary.append("- W8 Redis GET c=50 (db_pool ops/s / peer ops/s): "
                         + ratio_summary(get, "qps"))

    pipelines = 2_000 if bench.quick else 10_000
    pipe = bench.alternate("W8 pipeline", "redis_pipeline",
                           ["db_pool", "redis_py", "redis_benchmark"],
                           {**common, "key": GET_KEY, "queries": pipelines, "keys": 1,
                            "depth": 100, "concurrency": 4})
    bench.summary.append("- W8 Redis pipelines of 100 GET, 4 connections (db_pool ops/s / "
                         "peer ops/s): " + ratio_summary(pipe, "qps"))

    parquet = bench.tmp / "w8.parquet"
    frame.write_parquet(parquet)
    out = redis.Redis(host=server.host, port=server.port, db=WRITE_DB)

    def flush() -> None:
        out.flushdb()

    def verify(r: dict[str, Any]) -> None:
        r["checksum"] = read_back(server, frame)

    write = bench.alternate("W8 write", "redis_write", ["db_pool", "redis_py"],
                            {**common, "url": f"redis://{server.host}:{server.port}/{WRITE_DB}",
                             "db": WRITE_DB, "parquet": str(parquet), "key_column": "id",
                             "prefix": WRITE_PREFIX, "batch": 1000}, flush, verify)
    flush()
    out.close()
    bench.summary.append(f"- W8 Redis write {keys:,} hashes (peer time / db_pool time): "
                         + ratio_summary(write, "seconds"))
    report(bench, version, keys, queries, pipelines, scan, get, pipe, write)


def report(bench: Any, version: str, keys: int, queries: int, pipelines: int,
           scan: Any, get: Any, pipe: Any, write: Any) -> None:
    plot(bench.png("bench_w8.png"), "W8: Redis (scan, write: lower is better; GET, pipeline: "
         "higher is better)",
         [(f"scan {keys:,} hashes: time", medians(scan, "seconds"), "median seconds"),
          ("GET, c=50", medians(get, "qps"), "median ops/s"),
          ("pipelines of 100 GET", medians(pipe, "qps"), "median ops/s"),
          (f"write {keys:,} hashes: time", medians(write, "seconds"), "median seconds")])
    fields = ", ".join(f"{f} {t}" for f, t in FIELDS.items())
    bench.section(
        "W8: Redis",
        f"A private redis-server {version} started by the run (tests/redis_server.py: "
        "loopback TCP, no persistence, no password, as redis-benchmark would otherwise "
        "need it on its command line), the same server for every contender. redis-py "
        "parses with hiredis (checked: `redis.utils.HIREDIS_AVAILABLE`).",
        [f"### Hashes into a DataFrame, {keys:,} keys", "",
         f"`{READ_PREFIX}<id>` hashes of 6 fields ({fields}; name is `name-<id>`, city one "
         "of 7 short words) read into a DataFrame with a `_key` column and the 6 typed "
         "columns. db_pool: `SyncDatabasePool.query(pool, \"HGETALL\", pattern=..., "
         "schema=...)` (SCAN COUNT 1000, each page's HGETALLs pipelined with the next "
         "SCAN, values parsed in C into Arrow builders); redis-py: `scan(cursor, match, "
         "count=1000)` then a `pipeline(transaction=False)` of the page's `hgetall`, the "
         "replies (`decode_responses=True`) gathered in one list per field, then "
         "`pl.Series(..., pl.Utf8).cast(dtype)` per column. Checksum: as W2, on the frame "
         "sorted by key.", ""]
        + table_time(scan)
        + ["### GET of one key, concurrency 50", "",
           f"{queries:,} `GET` of one 100-byte value from 50 asyncio tasks sharing a pool of "
           "50 connections. db_pool: `await DatabasePool.command(pool, \"GET\", key)`; "
           "redis-py: `await redis.asyncio.Redis.get(key)` on a "
           "`BlockingConnectionPool(max_connections=50)`. QPS here is GETs per second. "
           "Checksum: the bytes read.", ""]
        + table_qps(get)
        + ["### Pipelines of 100 GET", "",
           f"{pipelines:,} pipelines of 100 `GET` of the same key from 4 asyncio tasks on 4 "
           "connections. db_pool: `await pool.pipeline(pool, [(\"GET\", key)] * 100)`; "
           "redis-py: `pipeline(transaction=False)` with 100 `get` then `execute()`. The "
           "limit is `redis-benchmark -c 4 -P 100 -t get` on the same key and as many "
           "GETs (its own C client, reading replies without building values; its figures "
           "are its own CSV output). QPS is GETs per second; p50/p99 are per pipeline.", ""]
        + table_qps(pipe)
        + [f"### DataFrame written as hashes, {keys:,} rows", "",
           "The same rows as a DataFrame (read from Parquet before the clock starts) "
           f"written as one hash per row, `{WRITE_PREFIX}<id>` with the 5 other columns, "
           f"into an empty database. db_pool: `write_frame(pool, df, key_column=\"id\", "
           "prefix=..., kind=\"hash\")`; redis-py: `hset(key, mapping=...)` per row of "
           "`df.iter_rows()` in `pipeline(transaction=False)` batches of 1000. The database "
           "is flushed before each write and read back after it (SCAN + HGETALL, parsed to "
           "the frame's dtypes): every row must equal the frame written.", ""]
        + table_time(write), "bench_w8.png")

