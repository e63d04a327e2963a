"""command(), pipeline() and MULTI/EXEC against a real Redis server: the
sync and async APIs, logins (ACL user, wrong password, database, unix
socket, client_name), the session reset between callers, refused pub/sub
commands and 100 concurrent asyncio tasks."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Iterator
from urllib.parse import quote

import pytest

import db_pool
from db_pool import DatabasePool, SyncDatabasePool
from db_pool.errors import (
    AuthenticationError, Error, NotSupportedError, ResponseError, WrongTypeError,
)
from redis_server import PASSWORD, RedisServer

P = "c"


def url_db(server: RedisServer, db: int) -> str:
    return server.url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture
def pool(redis_url: str) -> Iterator[SyncDatabasePool]:
    p = SyncDatabasePool()
    p.create_pool(P, url=redis_url, max_size=4)
    yield p
    p.close()


def no_leak(p: SyncDatabasePool | DatabasePool) -> None:
    stats = p.stats(P)
    assert stats["in_use"] == 0, stats


# ---- replies ------------------------------------------------------------------------


def test_command_reply_kinds(pool: SyncDatabasePool, redis_prefix: str) -> None:
    k = redis_prefix
    assert pool.command(P, "SET", k + "s", b"v\x00w") == "OK"          # status -> str
    assert pool.command(P, "GET", k + "s") == b"v\x00w"                 # bulk -> bytes
    assert pool.command(P, "GET", k + "missing") is None                # nil -> None
    assert pool.command(P, "INCRBY", k + "n", 41) == 41                 # integer -> int
    assert pool.command(P, "INCR", k + "n") == 42
    assert pool.command(P, "RPUSH", k + "l", "a", b"b", 3, 1.5) == 4
    assert pool.command(P, "LRANGE", k + "l", 0, -1) == [b"a", b"b", b"3", b"1.5"]
    assert pool.command(P, "LRANGE", k + "empty", 0, -1) == []          # empty array
    nested = pool.command(P, "EVAL", "return {1, 'two', {3}, false}", 0)
    assert nested == [1, b"two", [3], None]


def test_pipeline_order_and_errors(pool: SyncDatabasePool, redis_prefix: str) -> None:
    k = redis_prefix
    out = pool.pipeline(P, [("SET", k + "a", "1"), ("INCR", k + "a"), ("GET", k + "a")])
    assert out == ["OK", 2, b"2"]
    with pytest.raises(WrongTypeError):
        pool.pipeline(P, [("SET", k + "b", "x"), ("LPUSH", k + "b", "y"), ("SET", k + "c", "z")])
    # every command ran although the second failed
    assert pool.command(P, "GET", k + "c") == b"z"
    out = pool.pipeline(P, [("GET", k + "b"), ("LPUSH", k + "b", "y"), ("PING",)],
                        raise_on_error=False)
    assert out[0] == b"x" and isinstance(out[1], WrongTypeError) and out[2] == "PONG"
    assert out[1].prefix == "WRONGTYPE" and "WRONGTYPE" in str(out[1])
    big = pool.pipeline(P, [("INCR", k + "many")] * 5000)
    assert big == list(range(1, 5001))
    no_leak(pool)


def test_transaction(pool: SyncDatabasePool, redis_prefix: str) -> None:
    k = redis_prefix
    out = pool.pipeline(P, [("SET", k + "t", "1"), ("INCR", k + "t"), ("GET", k + "t")],
                        transaction=True)
    assert out == ["OK", 2, b"2"]
    # a runtime error inside EXEC: the others ran, the slot holds the error
    out = pool.pipeline(P, [("INCR", k + "t"), ("LPUSH", k + "t", "x"), ("INCR", k + "t")],
                        transaction=True, raise_on_error=False)
    assert out[0] == 3 and isinstance(out[1], WrongTypeError) and out[2] == 4


def test_transaction_refused_while_queueing_runs_nothing(pool: SyncDatabasePool,
                                                          redis_prefix: str) -> None:
    k = redis_prefix
    with pytest.raises(Error) as info:
        pool.pipeline(P, [("SET", k + "x", "1"), ("NOSUCHCOMMAND", "a"), ("SET", k + "y", "2")],
                      transaction=True)
    assert "unknown command" in str(info.value) and "NOSUCHCOMMAND" in str(info.value)
    with pytest.raises(Error, match="wrong number of arguments"):
        pool.pipeline(P, [("SET", k + "x", "1"), ("GET",)], transaction=True)
    assert pool.command(P, "EXISTS", k + "x", k + "y") == 0
    # the connection is usable after the aborted MULTI (not left inside one)
    assert pool.command(P, "SET", k + "z", "1") == "OK"
    assert pool.command(P, "GET", k + "z") == b"1"
    no_leak(pool)


async def test_async_api(redis_url: str, redis_prefix: str) -> None:
    async with DatabasePool() as p:
        await p.create_pool(P, url=redis_url)
        k = redis_prefix
        assert await p.command(P, "SET", k + "a", "v") == "OK"
        assert await p.command(P, "GET", k + "a") == b"v"
        assert await p.pipeline(P, [("INCR", k + "n"), ("INCR", k + "n")],
                                transaction=True) == [1, 2]
        with pytest.raises(WrongTypeError):
            await p.command(P, "HGET", k + "a", "f")
        no_leak(p)


async def test_100_concurrent_tasks(redis_url: str, redis_prefix: str) -> None:
    async with DatabasePool() as p:
        await p.create_pool(P, url=redis_url, max_size=8)
        k = redis_prefix

        async def one(i: int) -> None:
            for j in range(10):
                await p.command(P, "SET", f"{k}{i}", f"{i}:{j}")
                assert await p.command(P, "GET", f"{k}{i}") == f"{i}:{j}".encode()
                total, echo = await p.pipeline(P, [("INCR", k + "total"), ("ECHO", str(i))])
                assert isinstance(total, int) and echo == str(i).encode()

        await asyncio.gather(*(one(i) for i in range(100)))
        assert await p.command(P, "GET", k + "total") == b"1000"
        stats = p.stats(P)
        assert stats["in_use"] == 0 and stats["size"] <= 8


# ---- logins -----------------------------------------------------------------------------


def test_acl_user_and_default_password(redis_server: RedisServer, redis_prefix: str) -> None:
    with SyncDatabasePool() as p:
        p.create_pool("user", url=redis_server.url)
        assert p.command("user", "ACL", "WHOAMI") == b"dbpool"
        p.create_pool("default", url=f"redis://:{PASSWORD}@{redis_server.address}/0")
        assert p.command("default", "ACL", "WHOAMI") == b"default"


def test_wrong_password(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    secret = "not-the-Secret-42"
    caplog.set_level(logging.DEBUG)
    with SyncDatabasePool() as p:
        with pytest.raises(AuthenticationError) as info:
            p.create_pool("bad", url=f"redis://dbpool:{secret}@{redis_server.address}/0",
                          min_size=1, connect_timeout=3)
            p.command("bad", "PING", timeout=3)
        exc = info.value
        shown = [str(exc), repr(exc), str(exc.__cause__ or ""), caplog.text]
        try:
            shown.append(repr(p.stats("bad")))
        except Error:
            pass
        for text in shown:
            assert secret not in text
            assert PASSWORD not in text
        assert "WRONGPASS" in str(exc) or "invalid" in str(exc).lower()


def test_database_selection(redis_server: RedisServer, redis_prefix: str) -> None:
    k = redis_prefix + "db"
    with SyncDatabasePool() as p:
        p.create_pool("d3", url=url_db(redis_server, 3))
        p.create_pool("d0", url=url_db(redis_server, 0))
        p.command("d3", "SET", k, "three")
        try:
            assert p.command("d0", "GET", k) is None
            assert p.command("d3", "GET", k) == b"three"
            assert p.command("d3", "CLIENT", "INFO").split(b" db=")[1].startswith(b"3 ")
        finally:
            p.command("d3", "DEL", k)


def test_database_out_of_range(redis_server: RedisServer) -> None:
    with SyncDatabasePool() as p:
        t0 = time.monotonic()
        with pytest.raises(Error, match="DB index is out of range"):
            p.create_pool("d99", url=url_db(redis_server, 99), connect_timeout=2)
            p.command("d99", "PING", timeout=3)
        assert time.monotonic() - t0 < 1


def test_password_with_url_special_characters(redis_server: RedisServer) -> None:
    if redis_server.external:
        pytest.skip("creates an ACL user")
    pw = "p@ss:w/rd%20 é#?&"
    redis_server.command("ACL", "SETUSER", "weird", "on", ">" + pw, "~*", "+@all")
    try:
        with SyncDatabasePool() as p:
            p.create_pool("w", url=f"redis://weird:{quote(pw, safe='')}@{redis_server.address}/0")
            assert p.command("w", "ACL", "WHOAMI") == b"weird"
            assert pw not in repr(p.stats("w"))
    finally:
        redis_server.command("ACL", "DELUSER", "weird")


def test_unix_socket(redis_server: RedisServer, redis_prefix: str) -> None:
    if redis_server.external:
        pytest.skip("an external server's unix socket is not known")
    url = redis_server.unix_url.replace("?db=0", "?db=2")
    with SyncDatabasePool() as p:
        p.create_pool("u", url=url)
        info = p.command("u", "CLIENT", "INFO")
        assert b" flags=U " in info and b" db=2 " in info  # U: a unix socket client
        assert f"laddr={redis_server.socket_path}".encode() in info
        assert p.command("u", "SET", redis_prefix + "u", "1") == "OK"
        assert p.command("u", "DEL", redis_prefix + "u") == 1


def test_client_name(redis_url: str) -> None:
    with SyncDatabasePool() as p:
        p.create_pool("n", url=redis_url, client_name="dbpool-test-7")
        assert p.command("n", "CLIENT", "GETNAME") == b"dbpool-test-7"
        names = p.command("n", "CLIENT", "LIST")
        assert b"name=dbpool-test-7" in names


def test_reset_on_release(redis_server: RedisServer, redis_prefix: str) -> None:
    """A SELECT or CLIENT SETNAME by one caller is not seen by the next (one connection)."""
    k = redis_prefix + "r"
    with SyncDatabasePool() as p:
        p.create_pool("one", url=url_db(redis_server, 1), max_size=1, min_size=1,
                      client_name="orig")
        p.command("one", "SET", k, "db1")
        try:
            assert p.command("one", "SELECT", 5) == "OK"
            assert p.command("one", "CLIENT", "SETNAME", "changed") == "OK"
            # the next caller is back on db 1 with the configured name
            assert p.command("one", "GET", k) == b"db1"
            assert p.command("one", "CLIENT", "GETNAME") == b"orig"
            # a RESET sent by a caller logs the connection out: the next one still works
            assert p.command("one", "RESET") == "RESET"
            assert p.command("one", "GET", k) == b"db1"
            # WATCH then nothing: the next caller's MULTI/EXEC is not aborted by it
            p.command("one", "WATCH", k)
            assert p.pipeline("one", [("SET", k, "x")], transaction=True) == ["OK"]
            assert p.stats("one")["created"] == 1  # all on the same connection
        finally:
            p.command("one", "DEL", k)


@pytest.mark.parametrize("cmd", [("SUBSCRIBE", "ch"), ("PSUBSCRIBE", "c*"), ("MONITOR",),
                                 ("subscribe", "ch"), ("SSUBSCRIBE", "ch")])
def test_pubsub_refused(pool: SyncDatabasePool, cmd: tuple[str, ...]) -> None:
    with pytest.raises(NotSupportedError, match="not served"):
        pool.command(P, *cmd)
    with pytest.raises(NotSupportedError, match="not served"):
        pool.pipeline(P, [("PING",), cmd])
    assert pool.command(P, "PING") == "PONG"
    no_leak(pool)


@pytest.mark.parametrize("cmd", [("CLIENT", "REPLY", "OFF"), ("client", "reply", "skip"),
                                 ("HELLO", "3"), ("HELLO", b"3", "SETNAME", "x")])
def test_reply_changing_forms_refused(pool: SyncDatabasePool, cmd: tuple[str, ...]) -> None:
    """Forms after which replies stop coming one per command (or come in
    RESP3) are refused before sending: they would hang the call or break
    the connection."""
    with pytest.raises(NotSupportedError, match="is not served"):
        pool.command(P, *cmd, timeout=2)
    with pytest.raises(NotSupportedError, match="is not served"):
        pool.pipeline(P, [("PING",), cmd], timeout=2)
    assert pool.command(P, "CLIENT", "REPLY", "ON") == "OK"
    assert isinstance(pool.command(P, "HELLO", "2"), list)
    assert pool.command(P, "PING") == "PONG"
    assert pool.stats(P)["created"] == 1  # nothing broke the connection
    no_leak(pool)


def test_argument_kinds(pool: SyncDatabasePool, redis_prefix: str) -> None:
    """Arguments as redis-py sends them: integers of any size as digits,
    floats, bools as 1/0, buffers as bytes, str as UTF-8."""
    k = redis_prefix + "arg"
    for value, stored in [(2**64 - 1, b"18446744073709551615"), (-(2**63), b"-9223372036854775808"),
                          (-(2**70), str(-(2**70)).encode()), (True, b"1"), (1e-7, b"1e-07"),
                          (float("-inf"), b"-inf"), (bytearray(b"\x00a"), b"\x00a"),
                          (memoryview(b"mv"), b"mv"), ("ü", "ü".encode())]:
        assert pool.command(P, "SET", k, value) == "OK"
        assert pool.command(P, "GET", k) == stored, value
    with pytest.raises(db_pool.DataError, match="NaN"):
        pool.command(P, "SET", k, float("nan"))


def test_bad_arguments_refused_before_sending(pool: SyncDatabasePool) -> None:
    with pytest.raises(db_pool.ProgrammingError):
        pool.command(P, "SET", "k", None)
    with pytest.raises(db_pool.ProgrammingError):
        pool.pipeline(P, [])
    with pytest.raises(db_pool.ProgrammingError):
        pool.pipeline(P, ["PING"])
    assert pool.command(P, "PING") == "PONG"


def test_error_reply_is_typed(pool: SyncDatabasePool) -> None:
    with pytest.raises(ResponseError) as info:
        pool.command(P, "NOSUCHCMD", "x")
    assert info.value.prefix == "ERR" and "unknown command" in str(info.value)
    no_leak(pool)
