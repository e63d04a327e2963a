"""Integers as the driver writes them (its own decimal formatting, not
printf): in command arguments, in the RESP length headers of long
arguments, and in write_frame's cells, at the edges of the 64-bit range."""

from __future__ import annotations

import polars as pl
import redis

from db_pool import SyncDatabasePool

EDGES = [0, 1, -1, 9, 10, -10, 99, 100, 12345678901, -(2**63), 2**63 - 1]


def test_integer_arguments_round_trip(redis_url: str, redis_prefix: str) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("r", url=redis_url)
        for i, v in enumerate(EDGES):
            key = f"{redis_prefix}i{i}"
            assert pool.command("r", "SET", key, v) == "OK"
            assert pool.command("r", "GET", key) == str(v).encode()
        # argument lengths 0, 1, 9, 10, 99, 100, 1000, 100000: each a length header
        for n in (0, 1, 9, 10, 99, 100, 1000, 100_000):
            key = f"{redis_prefix}s{n}"
            pool.command("r", "SET", key, b"x" * n)
            assert pool.command("r", "STRLEN", key) == n
            assert pool.command("r", "GET", key) == b"x" * n


def test_write_frame_integers_and_booleans(redis_url: str, redis_prefix: str) -> None:
    frame = pl.DataFrame({"id": list(range(len(EDGES))), "v": EDGES,
                          "small": pl.Series([v % 100 - 50 for v in EDGES], dtype=pl.Int16),
                          "b": [i % 2 == 0 for i in range(len(EDGES))]})
    with SyncDatabasePool() as pool:
        pool.create_pool("r", url=redis_url)
        assert pool.write_frame("r", frame, key_column="id", prefix=redis_prefix) == frame.height
    r = redis.Redis.from_url(redis_url)
    try:
        for row in frame.iter_rows(named=True):
            assert r.hgetall(f"{redis_prefix}{row['id']}") == {
                b"v": str(row["v"]).encode(), b"small": str(row["small"]).encode(),
                b"b": b"1" if row["b"] else b"0"}
    finally:
        r.close()
