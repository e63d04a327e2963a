"""Error replies of a real Redis server as typed exceptions carrying the
server's text: WRONGTYPE, unknown command, NOAUTH, OOM, READONLY (a
replica), LOADING (DEBUG RELOAD slowed by key-load-delay), BUSY (a script
that loops until SCRIPT KILL). After each the pool is intact (no
connection left in use, the next command works) and the password appears
nowhere."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest
import redis

from db_pool import SyncDatabasePool
from db_pool.errors import (
    AuthenticationError, BusyError, Error, LoadingError, NoEndpointAvailable, NoScriptError,
    OutOfMemoryError, ReadOnlyError, ResponseError, WrongTypeError,
)
from redis_server import PASSWORD, RedisServer

P = "e"


def intact(p: SyncDatabasePool, pool_id: str = P) -> None:
    """No connection left in use and commands work."""
    stats = p.stats(pool_id)
    assert stats["in_use"] == 0, stats
    assert p.command(pool_id, "PING") == "PONG"
    assert p.command(pool_id, "ECHO", "still") == b"still"


def no_secret(exc: BaseException, *more: Any) -> None:
    for text in (str(exc), repr(exc), *map(str, more)):
        assert PASSWORD not in text


def rpy_of(server: RedisServer) -> redis.Redis:
    return redis.Redis(host=server.host, port=server.port, username=server.user or None,
                       password=server.password or None)


@pytest.fixture
def pool(redis_url: str) -> Iterator[SyncDatabasePool]:
    p = SyncDatabasePool()
    p.create_pool(P, url=redis_url, max_size=2)
    yield p
    p.close()


def test_wrongtype(pool: SyncDatabasePool, redis_prefix: str) -> None:
    pool.command(P, "SET", redis_prefix + "s", "x")
    with pytest.raises(WrongTypeError) as info:
        pool.command(P, "HSET", redis_prefix + "s", "f", "v")
    assert isinstance(info.value, ResponseError) and info.value.prefix == "WRONGTYPE"
    assert str(info.value).startswith("WRONGTYPE Operation against a key holding the wrong kind")
    no_secret(info.value)
    intact(pool)


def test_unknown_command_and_noscript(pool: SyncDatabasePool) -> None:
    with pytest.raises(ResponseError) as info:
        pool.command(P, "FROBNICATE", "a")
    assert type(info.value) is ResponseError and "unknown command 'FROBNICATE'" in str(info.value)
    with pytest.raises(NoScriptError, match="NOSCRIPT"):
        pool.command(P, "EVALSHA", "0" * 40, 0)
    with pytest.raises(ResponseError, match="wrong number of arguments"):
        pool.command(P, "GET")
    intact(pool)


def test_noauth(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory()
    with SyncDatabasePool() as p:
        with pytest.raises(AuthenticationError) as info:
            p.create_pool("noauth", url=f"redis://{server.address}/0", connect_timeout=3)
            p.command("noauth", "PING", timeout=3)
        assert "NOAUTH" in str(info.value)
        no_secret(info.value)


def test_oom(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(extra_conf="maxmemory 1mb\nmaxmemory-policy noeviction")
    with SyncDatabasePool() as p:
        p.create_pool(P, url=server.url, max_size=2)
        with pytest.raises(OutOfMemoryError) as info:
            for i in range(100):
                p.command(P, "SET", f"k{i}", b"x" * 100_000)
        assert str(info.value).startswith("OOM command not allowed")
        assert info.value.prefix == "OOM"
        # in a pipeline the slot holds it, the reads around it run
        out = p.pipeline(P, [("GET", "k0"), ("SET", "more", b"y" * 100_000), ("DBSIZE",)],
                         raise_on_error=False)
        assert isinstance(out[1], OutOfMemoryError) and isinstance(out[2], int)
        no_secret(info.value)
        intact(p)
        assert p.command(P, "CONFIG", "SET", "maxmemory", "0") == "OK"
        assert p.command(P, "SET", "k", "v") == "OK"


def test_readonly_replica(redis_server_factory: Callable[..., RedisServer]) -> None:
    primary = redis_server_factory(extra_conf="repl-diskless-sync-delay 0")
    replica = redis_server_factory(extra_conf=f"replicaof 127.0.0.1 {primary.port}")
    deadline = time.monotonic() + 10
    while replica.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, replica.log_tail()
        time.sleep(0.05)
    rpy_of(primary).set("k", "from-primary")
    while replica.command("GET", "k") != "from-primary":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with SyncDatabasePool() as p:
        p.create_pool(P, url=replica.url, max_size=2)
        assert p.command(P, "GET", "k") == b"from-primary"
        # a write the replica refuses (every reply READONLY): the driver
        # offers it to a primary, this pool has none (one endpoint), so
        # NoEndpointAvailable comes back at once with the server's text
        t0 = time.monotonic()
        with pytest.raises(NoEndpointAvailable) as info:
            p.command(P, "SET", "k", "x", timeout=5)
        assert time.monotonic() - t0 < 1
        assert "READONLY You can't write against a read only replica" in str(info.value)
        no_secret(info.value)
        # mixed with a read: the write's slot holds ReadOnlyError, the read ran
        out = p.pipeline(P, [("GET", "k"), ("SET", "k", "x")], raise_on_error=False)
        assert out[0] == b"from-primary" and isinstance(out[1], ReadOnlyError)
        assert "READONLY" in str(out[1])
        with pytest.raises(Error, match="READONLY"):
            p.pipeline(P, [("SET", "k", "x"), ("INCR", "n")], transaction=True, timeout=5)
        intact(p)
    assert primary.command("GET", "k") == "from-primary"


def test_loading(redis_server_factory: Callable[..., RedisServer]) -> None:
    """DEBUG RELOAD with key-load-delay (a debug setting of Redis' own
    tests) keeps the server loading for about a second; meanwhile other
    connections get LOADING."""
    server = redis_server_factory(extra_conf="enable-debug-command yes\n"
                                  "loading-process-events-interval-bytes 1024")
    r = rpy_of(server)
    pipe = r.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"key:{i}", "v" * 100)
    pipe.execute()
    r.config_set("key-load-delay", 500)  # µs per key: 2000 keys, about 1 s of loading
    with SyncDatabasePool() as p:
        p.create_pool(P, url=server.url, max_size=2, min_size=1)
        assert p.command(P, "DBSIZE") == 2000  # a connection open before the reload
        result: list[Any] = []
        t = threading.Thread(target=lambda: result.append(r.execute_command("DEBUG", "RELOAD")))
        t.start()
        try:
            err: LoadingError | None = None
            deadline = time.monotonic() + 5
            while err is None and time.monotonic() < deadline and t.is_alive():
                try:
                    p.command(P, "DBSIZE", timeout=5)
                except LoadingError as exc:
                    err = exc
                time.sleep(0.02)
        finally:
            t.join(30)
        assert result == [True] or result == [b"OK"], result
        assert err is not None, "never saw LOADING while the server reloaded"
        assert str(err).startswith("LOADING") and err.prefix == "LOADING"
        no_secret(err)
        intact(p)
        assert p.command(P, "DBSIZE") == 2000
    r.close()


def test_busy_script(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(extra_conf="busy-reply-threshold 100")
    r = rpy_of(server)
    with SyncDatabasePool() as p:
        p.create_pool(P, url=server.url, max_size=3, min_size=2)
        assert p.command(P, "PING") == "PONG"
        outcome: list[BaseException] = []

        def loop() -> None:
            try:
                r.eval("while true do end", 0)
            except redis.ResponseError as exc:
                outcome.append(exc)

        t = threading.Thread(target=loop)
        t.start()
        try:
            time.sleep(0.3)  # past busy-reply-threshold
            with pytest.raises(BusyError) as info:
                p.command(P, "GET", "k", timeout=5)
            assert str(info.value).startswith("BUSY Redis is busy running a script")
            assert info.value.prefix == "BUSY"
            no_secret(info.value)
            assert p.stats(P)["in_use"] == 0
            assert p.command(P, "SCRIPT", "KILL", timeout=5) == "OK"
        finally:
            t.join(10)
        assert outcome and "killed" in str(outcome[0]).lower()
        intact(p)
    r.close()
