"""write_frame on Redis, read back with redis-py: hashes and strings, TTLs,
nulls (HDEL of a null field, DEL when every value is null), a null key
refused before anything is written, 100k rows, every supported dtype, and
an error reply mid-batch leaving the connection in step."""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Iterator

import polars as pl
import pytest
import redis

from db_pool import SyncDatabasePool
from db_pool.errors import Error, ProgrammingError
from redis_server import RedisServer

P = "w"


@pytest.fixture
def rpy(redis_server: RedisServer) -> Iterator[redis.Redis]:
    r = redis.Redis(host=redis_server.host, port=redis_server.port,
                    username=redis_server.user or None, password=redis_server.password or None,
                    db=redis_server.database)
    yield r
    r.close()


@pytest.fixture
def pool(redis_url: str) -> Iterator[SyncDatabasePool]:
    p = SyncDatabasePool()
    p.create_pool(P, url=redis_url, max_size=1)
    yield p
    p.close()


def test_hash_types_round_trip(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    ts = dt.datetime(2024, 2, 29, 1, 2, 3, 456789)
    df = pl.DataFrame({
        "id": [1, 2, 3],
        "i": [9223372036854775807, -9223372036854775808, 0],
        "f": [1.1, float("nan"), float("-inf")],
        "b": [True, False, None],
        "d": [dt.date(2024, 2, 29), dt.date(1, 1, 1), dt.date(9999, 12, 31)],
        "t": [ts, dt.datetime(1969, 12, 31, 23, 59, 59), None],
        "u": ["żółw 🐢", "", None],
        "bin": [b"\x00a\xff", b"", None],
    }).with_columns(tz=pl.col("t").dt.replace_time_zone("UTC"))
    assert pool.write_frame(P, df, key_column="id", prefix=redis_prefix) == 3
    h1 = rpy.hgetall(redis_prefix + "1")
    assert h1 == {b"i": b"9223372036854775807", b"f": b"1.1", b"b": b"1", b"d": b"2024-02-29",
                  b"t": b"2024-02-29 01:02:03.456789", b"tz": b"2024-02-29 01:02:03.456789Z",
                  b"u": "żółw 🐢".encode(), b"bin": b"\x00a\xff"}
    h2 = rpy.hgetall(redis_prefix + "2")
    assert h2[b"f"] == b"nan" and h2[b"b"] == b"0" and h2[b"u"] == b"" and h2[b"bin"] == b""
    assert h2[b"d"] == b"0001-01-01" and h2[b"i"] == b"-9223372036854775808"
    h3 = rpy.hgetall(redis_prefix + "3")
    assert set(h3) == {b"i", b"f", b"d"} and h3[b"f"] == b"-inf"  # nulls are not stored
    # and our own typed read gives the frame back
    schema = {c: t for c, t in df.schema.items() if c != "id"}
    back = pool.query(P, "HGETALL", pattern=redis_prefix + "*", schema=schema).sort("_key")
    assert back.drop("_key").equals(df.drop("id"))
    assert math.isnan(back["f"][1])


def test_floats_exact(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    values = [0.1, 1 / 3, 1e-310, 1.7976931348623157e308, -0.0, 123456789.125, 2.0**60]
    df = pl.DataFrame({"k": list(range(len(values))), "v": values})
    pool.write_frame(P, df, key_column="k", prefix=redis_prefix, kind="string")
    for i, v in enumerate(values):
        text = rpy.get(f"{redis_prefix}{i}")
        assert text is not None and float(text) == v and math.copysign(1, float(text)) == math.copysign(1, v)


def test_nulls_hdel_and_del(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    k = redis_prefix
    rpy.hset(k + "a", mapping={"x": "old", "y": "old", "keep": "me"})
    rpy.hset(k + "b", mapping={"x": "old", "y": "old"})
    rpy.set(k + "s", "old")
    df = pl.DataFrame({"id": ["a", "b"], "x": ["new", None], "y": [None, None]})
    assert pool.write_frame(P, df, key_column="id", prefix=k) == 2
    assert rpy.hgetall(k + "a") == {b"x": b"new", b"keep": b"me"}  # y deleted, keep untouched
    assert rpy.exists(k + "b") == 0                                   # every value null: DEL
    strings = pl.DataFrame({"id": ["s", "t"], "v": [None, "new"]})
    assert pool.write_frame(P, strings, key_column="id", prefix=k, kind="string") == 2
    assert rpy.exists(k + "s") == 0 and rpy.get(k + "t") == b"new"


def test_null_key_refused_before_writing(pool: SyncDatabasePool, rpy: redis.Redis,
                                         redis_prefix: str) -> None:
    df = pl.DataFrame({"id": ["a", "b", None, "d"], "v": [1, 2, 3, 4]})
    with pytest.raises(ProgrammingError, match="null 'id'"):
        pool.write_frame(P, df, key_column="id", prefix=redis_prefix)
    assert list(rpy.scan_iter(match=redis_prefix + "*")) == []
    with pytest.raises(ProgrammingError, match="no key column"):
        pool.write_frame(P, df, key_column="nope", prefix=redis_prefix)
    with pytest.raises(Error, match="exactly one value column"):
        pool.write_frame(P, df.with_columns(w=pl.lit(1)).drop_nulls(), key_column="id",
                         prefix=redis_prefix, kind="string")
    assert list(rpy.scan_iter(match=redis_prefix + "*")) == []


def test_ttl(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    df = pl.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    pool.write_frame(P, df, key_column="id", prefix=redis_prefix + "h:", ttl=100)
    pool.write_frame(P, df, key_column="id", prefix=redis_prefix + "s:", kind="string", ttl=50)
    for key, most in ((redis_prefix + "h:1", 100), (redis_prefix + "s:2", 50)):
        assert most - 5 <= rpy.ttl(key) <= most
    assert rpy.hget(redis_prefix + "h:1", "v") == b"a" and rpy.get(redis_prefix + "s:2") == b"b"
    pool.write_frame(P, df, key_column="id", prefix=redis_prefix + "x:", kind="string", ttl=1)
    time.sleep(1.1)
    assert rpy.exists(redis_prefix + "x:1", redis_prefix + "x:2") == 0
    for bad in (0, 1.5, -1, True):
        with pytest.raises(ProgrammingError):
            pool.write_frame(P, df, key_column="id", prefix=redis_prefix, ttl=bad)


def test_binary_and_unicode_keys(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    df = pl.DataFrame({"id": [b"\x00raw\xff", "ключ".encode()], "v": [b"\x00", b"1" * (1 << 20)]})
    pool.write_frame(P, df, key_column="id", prefix=redis_prefix, kind="string")
    assert rpy.get(redis_prefix.encode() + b"\x00raw\xff") == b"\x00"
    assert rpy.get(redis_prefix + "ключ") == b"1" * (1 << 20)


def test_100k_rows(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    n = 100_000
    df = pl.DataFrame({"id": pl.arange(0, n, eager=True), "name": [f"n{i}" for i in range(n)],
                       "score": pl.arange(0, n, eager=True) * 0.5})
    t0 = time.monotonic()
    assert pool.write_frame(P, df, key_column="id", prefix=redis_prefix) == n
    took = time.monotonic() - t0
    assert took < 15, took
    assert rpy.hgetall(f"{redis_prefix}99999") == {b"name": b"n99999", b"score": b"49999.5"}
    back = pool.query(P, "HGETALL", pattern=redis_prefix + "*",
                      schema={"name": pl.Utf8, "score": pl.Float64}, scan_count=5000)
    assert back.height == n
    back = back.with_columns(id=pl.col("_key").str.slice(len(redis_prefix)).cast(pl.Int64))
    assert back.sort("id").select(df.columns).equals(df)


def test_error_reply_mid_batch_keeps_connection_in_step(
        pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    """A WRONGTYPE for one row: the error names it, the other rows of the
    batch are written (Redis cannot undo), and the next command on the one
    connection gets its own reply, not a stale one of the batch."""
    rpy.set(redis_prefix + "x3", "a string")
    df = pl.DataFrame({"id": [f"x{i}" for i in range(6)], "v": list(range(6))})
    with pytest.raises(Error, match="WRONGTYPE") as info:
        pool.write_frame(P, df, key_column="id", prefix=redis_prefix)
    assert "stopped after 0 rows" in str(info.value)
    for _ in range(3):
        assert pool.command(P, "PING") == "PONG"
    assert pool.command(P, "ECHO", "mine") == b"mine"
    assert rpy.get(redis_prefix + "x3") == b"a string"
    assert rpy.hget(redis_prefix + "x5", "v") == b"5"
    stats = pool.stats(P)
    assert stats["in_use"] == 0 and stats["created"] == 1
