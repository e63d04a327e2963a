"""Typed tabular reads (query/stream with HGETALL, HMGET, MGET, ZRANGE)
compared with redis-py reading the same keys: every value our driver puts
in a frame must equal what redis-py returns, converted by the strict rules
below (docs/redis.md): 0 differences. Also every reply type of command()
against redis-py's, stream batches, and SCAN repeats."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Callable, Iterator

import polars as pl
import pytest
import redis

from db_pool import SyncDatabasePool
from db_pool.errors import DataError
from redis_server import RedisServer

P = "t"
MB = 1 << 20
I64_MAX, I64_MIN = 2**63 - 1, -(2**63)

_INT = re.compile(rb"-?[0-9]+\Z")


def strict_int(b: bytes, lo: int, hi: int) -> int:
    if not _INT.match(b):
        raise ValueError(b)
    v = int(b)
    if not lo <= v <= hi:
        raise ValueError(b)
    return v


def strict_float(b: bytes) -> float:
    if not b or b[:1].isspace() or b[-1:].isspace() or b"_" in b:
        raise ValueError(b)
    return float(b)


def strict_bool(b: bytes) -> bool:
    low = b.lower()
    if low in (b"1", b"true"):
        return True
    if low in (b"0", b"false"):
        return False
    raise ValueError(b)


def strict_ts(b: bytes, utc: bool) -> dt.datetime:
    t = dt.datetime.fromisoformat(b.decode())
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return t.replace(tzinfo=dt.timezone.utc) if utc else t


CONVERT: dict[Any, Callable[[bytes], Any]] = {
    pl.Utf8: lambda b: b.decode("utf-8"),
    pl.Binary: lambda b: b,
    pl.Int64: lambda b: strict_int(b, I64_MIN, I64_MAX),
    pl.Int32: lambda b: strict_int(b, -(2**31), 2**31 - 1),
    pl.Int8: lambda b: strict_int(b, -128, 127),
    pl.UInt64: lambda b: strict_int(b, 0, 2**64 - 1),
    pl.UInt8: lambda b: strict_int(b, 0, 255),
    pl.Float64: strict_float,
    pl.Boolean: strict_bool,
    pl.Date: lambda b: dt.date.fromisoformat(b.decode()),
}


def convert(dtype: Any, raw: bytes | None, null_on_error: bool) -> Any:
    if raw is None:
        return None
    if dtype == pl.Datetime("us", "UTC"):
        fn: Callable[[bytes], Any] = lambda b: strict_ts(b, True)  # noqa: E731
    elif dtype == pl.Datetime("us"):
        fn = lambda b: strict_ts(b, False)  # noqa: E731
    else:
        fn = CONVERT[dtype]
    try:
        return fn(raw)
    except (ValueError, UnicodeDecodeError):
        if null_on_error:
            return None
        raise


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return type(a) is type(b) and a == b if a is not None and b is not None else a is b


def differences(df: pl.DataFrame, expected: dict[bytes, dict[str, Any]],
                key_dtype: Any = pl.Utf8) -> list[str]:
    """Rows of df (one per key) against {key: {column: value}}."""
    out = []
    got_keys = df["_key"].to_list()
    if len(got_keys) != len(set(got_keys)):
        out.append("duplicate keys")
    want_keys = {k.decode() if key_dtype == pl.Utf8 else k for k in expected}
    if set(got_keys) != want_keys:
        out.append(f"keys differ: {set(got_keys) ^ want_keys}")
    for row in df.iter_rows(named=True):
        key = row["_key"]
        want = expected.get(key.encode() if isinstance(key, str) else key, {})
        for col, value in row.items():
            if col != "_key" and not same(value, want.get(col)):
                out.append(f"{key!r}.{col}: got {str(value)[:60]!r}, redis-py {str(want.get(col))[:60]!r}")
    return out


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
    p.create_pool(P, url=redis_url, max_size=2)
    yield p
    p.close()


# ---- the data --------------------------------------------------------------------------

UNICODE = "zażółć gęślą jaźń 🐍 日本語 \u00e9\u0301"
BINARY = bytes(range(256)) + b"\x00\x00end"
HASHES: dict[str, dict[str, bytes]] = {
    "full": {"s": UNICODE.encode(), "b": BINARY, "i": str(I64_MAX).encode(), "f": b"1.5",
             "ok": b"1", "d": b"2024-02-29", "ts": b"2024-02-29T12:34:56.123456",
             "tz": b"2024-02-29 23:00:00+02:00", "u8": b"255", "i8": b"-128",
             "u64": b"18446744073709551615", "i32": b"-2147483648"},
    "min": {"s": b"", "b": b"\x00", "i": str(I64_MIN).encode(), "f": b"-inf", "ok": b"false",
            "d": b"1970-01-01", "ts": b"1969-12-31 23:59:59.999999", "tz": b"2000-01-01T00:00:00Z",
            "u8": b"0", "i8": b"127", "u64": b"0", "i32": b"2147483647"},
    "nan": {"f": b"nan", "ok": b"TRUE", "i": b"0"},
    "inf": {"f": b"inf", "ok": b"0", "i": b"-0"},
    "exp": {"f": b"-1.25e-300", "ok": b"False", "d": b"9999-12-31", "ts": b"0001-01-01 00:00"},
    "negzero": {"f": b"-0.0", "s": "ä".encode()},
    "empty-ish": {"other": b"x"},  # none of the schema's fields: all null
    "big": {"s": ("é" * (MB // 2)).encode(), "b": b"\x00\xff" * (MB // 2)},
}
SCHEMA = {"s": pl.Utf8, "b": pl.Binary, "i": pl.Int64, "f": pl.Float64, "ok": pl.Boolean,
          "d": pl.Date, "ts": pl.Datetime("us"), "tz": pl.Datetime("us", "UTC"),
          "u8": pl.UInt8, "i8": pl.Int8, "u64": pl.UInt64, "i32": pl.Int32}


def load_hashes(rpy: redis.Redis, prefix: str) -> None:
    pipe = rpy.pipeline(transaction=False)
    for name, fields in HASHES.items():
        pipe.hset(prefix + "h:" + name, mapping=fields)  # type: ignore[arg-type]
    pipe.set(prefix + "h:not-a-hash", b"string")  # SCAN TYPE hash skips it
    pipe.execute()


def expected_hashes(rpy: redis.Redis, pattern: str, schema: dict[str, Any],
                    null_on_error: bool = False) -> dict[bytes, dict[str, Any]]:
    out = {}
    for key in rpy.scan_iter(match=pattern, _type="hash", count=1000):
        raw = rpy.hgetall(key)
        out[key] = {c: convert(t, raw.get(c.encode()), null_on_error) for c, t in schema.items()}
    return out


def test_hashes_match_redis_py(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    load_hashes(rpy, redis_prefix)
    pattern = redis_prefix + "h:*"
    want = expected_hashes(rpy, pattern, SCHEMA)
    assert len(want) == len(HASHES)
    for read in ("HGETALL", "HMGET"):
        df = pool.query(P, read, pattern=pattern, schema=SCHEMA)
        assert df.schema == pl.Schema({"_key": pl.Utf8, **SCHEMA})
        assert differences(df, want) == [], read
    # the key column as Binary
    df = pool.query(P, "HGETALL", pattern=pattern, schema={"_key": pl.Binary, "i": pl.Int64})
    want_bin = {k: {"i": v["i"]} for k, v in want.items()}
    assert differences(df, want_bin, pl.Binary) == []


def test_stream_equals_query(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    load_hashes(rpy, redis_prefix)
    pipe = rpy.pipeline(transaction=False)
    for i in range(500):
        pipe.hset(f"{redis_prefix}h:n{i}", mapping={"i": i, "s": f"v{i}"})
    pipe.execute()
    pattern = redis_prefix + "h:*"
    whole = pool.query(P, "HGETALL", pattern=pattern, schema=SCHEMA, scan_count=37)
    for batch_rows in (1, 7, 100, 10_000):
        batches = list(pool.stream(P, "HGETALL", pattern=pattern, schema=SCHEMA,
                                   batch_rows=batch_rows, scan_count=37))
        assert all(0 < b.height <= batch_rows for b in batches), [b.height for b in batches]
        streamed = pl.concat(batches)
        assert streamed.sort("_key").equals(whole.sort("_key")), batch_rows
    assert whole.height == len(HASHES) + 500


def test_int64_one_past_limit(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    rpy.hset(redis_prefix + "over", mapping={"n": str(I64_MAX + 1), "m": "1"})
    rpy.hset(redis_prefix + "under", mapping={"n": str(I64_MIN - 1), "m": "2"})
    rpy.hset(redis_prefix + "fine", mapping={"n": str(I64_MAX), "m": "3"})
    schema = {"n": pl.Int64, "m": pl.Int64}
    with pytest.raises(DataError) as info:
        pool.query(P, "HGETALL", pattern=redis_prefix + "*", schema=schema)
    text = str(info.value)
    assert "'n'" in text and (redis_prefix + "over" in text or redis_prefix + "under" in text)
    assert "Int64" in text
    df = pool.query(P, "HGETALL", pattern=redis_prefix + "*", schema=schema, on_error="null")
    want = expected_hashes(rpy, redis_prefix + "*", schema, null_on_error=True)
    assert differences(df, want) == []
    assert df.filter(pl.col("n").is_null()).height == 2
    assert pool.stats(P)["in_use"] == 0


@pytest.mark.parametrize("dtype,bad", [
    (pl.Int64, b" 1"), (pl.Int64, b"1.0"), (pl.Int64, b"+1"), (pl.Int64, b""),
    (pl.UInt64, b"-1"), (pl.UInt64, b"18446744073709551616"), (pl.Int8, b"128"),
    (pl.Float64, b"1.5x"), (pl.Float64, b" 1.5"), (pl.Float64, b""), (pl.Float64, b"1\x002"),
    (pl.Boolean, b"yes"), (pl.Boolean, b"2"), (pl.Date, b"2023-02-29"), (pl.Date, b"2024-1-1"),
    (pl.Datetime("us"), b"2024-01-01T25:00"), (pl.Utf8, b"\xff\xfe"), (pl.Utf8, b"\xc3"),
])
def test_bad_values(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str,
                    dtype: Any, bad: bytes) -> None:
    rpy.hset(redis_prefix + "k", mapping={"v": bad, "w": b"1"})
    schema = {"v": dtype, "w": pl.Int64}
    with pytest.raises(DataError, match=re.escape(redis_prefix + "k") + ".*'v'"):
        pool.query(P, "HGETALL", pattern=redis_prefix + "*", schema=schema)
    df = pool.query(P, "HMGET", pattern=redis_prefix + "*", schema=schema, on_error="null")
    assert df.rows() == [(redis_prefix + "k", None, 1)]


def test_mget_matches_redis_py(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    values = {"a": b"1", "b": b"-7", "c": str(I64_MAX).encode(), "nul": b"\x00", "uni": UNICODE.encode(),
              "big": b"x" * MB, "bin": BINARY}
    rpy.mset({redis_prefix + "s:" + k: v for k, v in values.items()})
    rpy.hset(redis_prefix + "s:hash", "f", "v")  # SCAN TYPE string skips it
    pattern = redis_prefix + "s:*"
    for dtype, null in ((pl.Binary, False), (pl.Utf8, True), (pl.Int64, True), (pl.Float64, True)):
        df = pool.query(P, "MGET", pattern=pattern, schema={"value": dtype},
                        on_error="null" if null else "raise")
        keys = list(rpy.scan_iter(match=pattern, _type="string"))
        want = {k: {"value": convert(dtype, rpy.get(k), null)} for k in keys}
        assert differences(df, want) == [], dtype
    with pytest.raises(DataError) as info:  # the default schema: value as Utf8
        pool.query(P, "MGET", pattern=pattern)
    # the value's bytes are shown escaped (it starts with a NUL)
    assert "s:bin' field 'value': '\\x00\\x01\\x02" in str(info.value)
    assert "is not a valid Utf8" in str(info.value)
    df = pool.query(P, "MGET", pattern=pattern, on_error="null")
    assert df.columns == ["_key", "value"] and df.schema["value"] == pl.Utf8
    assert df.height == len(values)
    # invalid UTF-8 under Utf8 with on_error="null"
    assert df.filter(pl.col("_key") == redis_prefix + "s:bin")["value"][0] is None


def test_zrange_matches_redis_py(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    rpy.zadd(redis_prefix + "z:a", {"one": 1, "two": 2.5, "neg": -1e300, UNICODE: float("inf")})
    rpy.zadd(redis_prefix + "z:b", {b"\x00bin": 0, "m": float("-inf")})
    df = pool.query(P, "ZRANGE", pattern=redis_prefix + "z:*",
                    schema={"member": pl.Binary, "score": pl.Float64})
    got = sorted((k, m, s) for k, m, s in df.iter_rows())
    want = sorted((k.decode(), m, s) for k in rpy.scan_iter(match=redis_prefix + "z:*")
                  for m, s in rpy.zrange(k, 0, -1, withscores=True))
    assert got == want
    df = pool.query(P, "ZRANGE", pattern=redis_prefix + "z:*")  # default: member Utf8
    assert df.height == 6


def test_zrange_stream_batches(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    """A sorted set is many rows: a batch still holds at most batch_rows of them."""
    rpy.zadd(redis_prefix + "z:big", {f"m{i}": i for i in range(250)})
    rpy.zadd(redis_prefix + "z:small", {"x": 1})
    pattern = redis_prefix + "z:*"
    whole = pool.query(P, "ZRANGE", pattern=pattern)
    assert whole.height == 251
    batches = list(pool.stream(P, "ZRANGE", pattern=pattern, batch_rows=100))
    assert all(b.height <= 100 for b in batches), [b.height for b in batches]
    assert pl.concat(batches).sort("_key", "member").equals(whole.sort("_key", "member"))


def test_scan_keys_unique(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str) -> None:
    """20k keys, and more added while the scan runs (the dict grows and
    rehashes, when SCAN may return a key twice): every key once."""
    n = 20_000
    pipe = rpy.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"{redis_prefix}k:{i}", i)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    pattern = redis_prefix + "k:*"
    seen: list[str] = []
    extra = 0
    for batch in pool.stream(P, "MGET", pattern=pattern, schema={"value": pl.Int64},
                             batch_rows=2000, scan_count=500):
        seen += batch["_key"].to_list()
        if extra < 40_000:  # grow the keyspace mid-scan
            pipe = rpy.pipeline(transaction=False)
            for j in range(10_000):
                pipe.set(f"{redis_prefix}k:x{extra + j}", -1)
            pipe.execute()
            extra += 10_000
    assert len(seen) == len(set(seen))
    assert {f"{redis_prefix}k:{i}" for i in range(n)} <= set(seen)
    df = pool.query(P, "MGET", pattern=pattern, schema={"value": pl.Int64}, scan_count=100)
    assert df.height == n + extra and df["_key"].n_unique() == df.height


# ---- command() replies against redis-py's -------------------------------------------


def test_command_replies_match_redis_py(pool: SyncDatabasePool, rpy: redis.Redis,
                                        redis_prefix: str) -> None:
    k = redis_prefix
    rpy.set(k + "s", BINARY)
    rpy.set(k + "big", b"\x00" * MB)
    rpy.hset(k + "h", mapping={"a": "1", "b": UNICODE})
    rpy.rpush(k + "l", "x", "", b"\x00")
    rpy.zadd(k + "z", {"a": 1.5})
    cases: list[tuple[Any, ...]] = [
        ("GET", k + "s"), ("GET", k + "big"), ("GET", k + "none"), ("STRLEN", k + "big"),
        ("HGETALL", k + "h"), ("HMGET", k + "h", "a", "zz"), ("LRANGE", k + "l", 0, -1),
        ("ZRANGE", k + "z", 0, -1, "WITHSCORES"), ("EXISTS", k + "s", k + "none"),
        ("ECHO", UNICODE), ("TYPE", k + "h"), ("PING",), ("GETRANGE", k + "s", 0, 3), ("LLEN", k + "l"),
        ("EVAL", "return {1, {2, {'x', false}}, -9223372036854775807}", 0),
        ("EVAL", "return redis.status_reply('FINE')", 0),
        ("OBJECT", "ENCODING", k + "h"),
    ]
    for cmd in cases:
        ours = pool.command(P, *cmd)
        theirs = rpy.execute_command(*cmd, **{"NEVER_DECODE": True})
        if isinstance(ours, str):  # a status: redis-py gives bytes or True
            assert theirs in (ours.encode(), True), cmd
        elif cmd[0] == "HGETALL":
            assert dict(zip(ours[::2], ours[1::2])) == theirs, cmd
        elif cmd[0] == "ZRANGE":
            assert [[ours[0], float(ours[1])]] == [list(t) for t in theirs], cmd
        else:
            assert ours == theirs, cmd


@pytest.mark.parametrize("read", ["HGETALL", "HMGET", "ZRANGE"])
def test_keys_changed_mid_stream(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str,
                                 read: str) -> None:
    """Keys deleted or replaced by another type between their SCAN and their
    read give no row (HMGET: a deleted hash gives nulls); the stream goes on."""
    n = 40
    pipe = rpy.pipeline(transaction=False)
    for i in range(n):
        if read == "ZRANGE":
            pipe.zadd(f"{redis_prefix}{i}", {"m": i})
        else:
            pipe.hset(f"{redis_prefix}{i}", "v", i)
    pipe.execute()
    schema = None if read == "ZRANGE" else {"v": pl.Int64}
    seen: list[str] = []
    changed: set[str] = set()
    for batch in pool.stream(P, read, pattern=redis_prefix + "*", schema=schema, batch_rows=5,
                             scan_count=1000):  # one SCAN page: the rest is read later
        seen += batch["_key"].to_list()
        if not changed:
            rest = [f"{redis_prefix}{i}" for i in range(n)]
            rest = [k for k in rest if k not in seen]
            pipe = rpy.pipeline(transaction=False)
            for j, key in enumerate(rest):
                pipe.delete(key)
                if j % 2:
                    pipe.set(key, "now a string")
            pipe.execute()
            changed = set(rest)
    assert len(seen) == len(set(seen))
    assert changed and len(seen) <= n
    if read != "HMGET":
        assert not set(seen) & changed


@pytest.mark.parametrize("on_error", ["raise", "null"])
def test_key_not_utf8(pool: SyncDatabasePool, rpy: redis.Redis, redis_prefix: str,
                      on_error: str) -> None:
    """A key that is not UTF-8 under a Utf8 _key: an error naming it (its
    bytes escaped) even with on_error="null" (a row's key is never null);
    as Binary it reads."""
    bad = redis_prefix.encode() + b"\xff\x00k"
    rpy.set(bad, "1")
    with pytest.raises(DataError, match=r"\\xff\\x00k' is not valid UTF-8.*_key column as Binary"):
        pool.query(P, "MGET", pattern=redis_prefix + "*", schema={"value": pl.Int64},
                   on_error=on_error)  # type: ignore[arg-type]
    df = pool.query(P, "MGET", pattern=redis_prefix + "*",
                    schema={"_key": pl.Binary, "value": pl.Int64}, on_error=on_error)  # type: ignore[arg-type]
    assert df.rows() == [(bad, 1)]


async def test_async_stream_left_early(redis_url: str, rpy: redis.Redis, redis_prefix: str) -> None:
    """An async stream closed after its first batch leaves its connection
    clean for the next caller (no SCAN state or reply left behind)."""
    from db_pool import DatabasePool

    rpy.mset({f"{redis_prefix}{i}": i for i in range(300)})
    async with DatabasePool() as p:
        await p.create_pool(P, url=redis_url, max_size=1, min_size=1)
        stream = p.stream(P, "MGET", pattern=redis_prefix + "*", schema={"value": pl.Int64},
                          batch_rows=50, scan_count=100)
        async for batch in stream:
            assert batch.height == 50
            break
        await stream.aclose()
        df = await p.query(P, "MGET", pattern=redis_prefix + "*", schema={"value": pl.Int64})
        assert df.height == 300 and sorted(df["value"].to_list()) == list(range(300))
        assert await p.command(P, "ECHO", "x") == b"x"
        stats = p.stats(P)
        assert stats["created"] == 1 and stats["in_use"] == 0
