"""Deadlines and faults on a real Redis server: a blocking command past its
timeout, the fault proxy (tests/faults/proxy.py) going silent at connect
and mid-command or cutting a big reply, a restarted, killed and frozen
server, and an asyncio task cancelled mid-command. Each failure surfaces
within its bound (tests/faults/bounds.py), typed; the connection that saw
it is never reused with a stale reply; the pool works afterwards.
``pytest -s`` prints "fault:" lines."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Iterator

import pytest

from db_pool import DatabasePool, SyncDatabasePool
from db_pool.errors import OperationalError, QueryTimeout
from faults.bounds import SLACK, fails_within, report
from faults.keepalive import keepalive_seconds
from faults.proxy import FaultProxy
from redis_server import RedisServer

P = "d"


def via(server: RedisServer, port: int) -> str:
    return server.url.replace(f":{server.port}/", f":{port}/")


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[FaultProxy]:
    if redis_server.external and redis_server.host not in ("127.0.0.1", "localhost"):
        pytest.skip("the proxy needs a local server")
    with FaultProxy(redis_server.host, redis_server.port) as p:
        yield p


@pytest.fixture
async def pool(redis_server: RedisServer, proxy: FaultProxy) -> AsyncIterator[DatabasePool]:
    """Through the proxy: max_size 2, connect_timeout 1."""
    p = DatabasePool()
    await p.create_pool(P, url=via(redis_server, proxy.port), max_size=2, connect_timeout=1)
    try:
        yield p
    finally:
        proxy.pass_through()
        await p.close(timeout=5)


async def recovered(pool: DatabasePool, proxy: FaultProxy | None = None) -> None:
    """The fault is gone: nothing left in use, commands get their own replies."""
    if proxy is not None:
        proxy.pass_through()
    deadline = time.monotonic() + 5
    while pool.stats(P)["in_use"] and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert pool.stats(P)["in_use"] == 0
    for i in range(4):
        assert await pool.command(P, "ECHO", f"r{i}", timeout=5) == f"r{i}".encode()


async def test_blocking_command_timeout(redis_url: str, redis_server: RedisServer,
                                        redis_prefix: str) -> None:
    """BLPOP blocks 30 s on the server; timeout=0.5 ends it, and the
    connection is dropped: when the list gets a value later, nobody reads
    the pop's late reply as their own."""
    key = redis_prefix + "list"
    async with DatabasePool() as p:
        await p.create_pool(P, url=redis_url, max_size=1, min_size=1)
        assert await p.command(P, "PING") == "PONG"
        exc, took = await fails_within(0.5 + SLACK, QueryTimeout,
                                       p.command(P, "BLPOP", key, 30, timeout=0.5))
        assert took >= 0.45
        report("redis BLPOP 30 with timeout=0.5", took)
        redis_server.command("RPUSH", key, "late")
        for i in range(3):
            assert await p.command(P, "ECHO", f"e{i}") == f"e{i}".encode()
        # the old connection is closed: the value stays in the list
        assert await p.command(P, "LRANGE", key, 0, -1) == [b"late"]
        stats = p.stats(P)
        assert stats["in_use"] == 0 and stats["created"] == 2 and stats["query_timeouts"] >= 1


async def test_blackhole_during_connect(redis_server: RedisServer, proxy: FaultProxy) -> None:
    async with DatabasePool() as p:
        await p.create_pool(P, url=via(redis_server, proxy.port), min_size=0, connect_timeout=1)
        proxy.blackhole()  # TCP connects (to the proxy), the login gets no reply
        exc, took = await fails_within(1 + SLACK, OperationalError,
                                       p.command(P, "PING", timeout=3))
        report("redis blackhole during connect (connect_timeout=1)", took)
        await recovered(p, proxy)


async def test_blackhole_mid_command(pool: DatabasePool, proxy: FaultProxy,
                                     redis_prefix: str) -> None:
    assert await pool.command(P, "SET", redis_prefix + "k", "v") == "OK"
    proxy.blackhole()
    _, took = await fails_within(1 + SLACK, QueryTimeout,
                                 pool.command(P, "GET", redis_prefix + "k", timeout=1))
    report("redis blackhole mid-command (timeout=1)", took)
    _, took = await fails_within(1 + SLACK, QueryTimeout, pool.pipeline(
        P, [("INCR", redis_prefix + "n")] * 100, transaction=True, timeout=1))
    report("redis blackhole mid-pipeline (timeout=1)", took)
    await recovered(pool, proxy)
    assert await pool.command(P, "GET", redis_prefix + "k") == b"v"


async def test_blackhole_mid_stream(pool: DatabasePool, proxy: FaultProxy,
                                    redis_server: RedisServer, redis_prefix: str) -> None:
    pipe = [("SET", f"{redis_prefix}s{i}", i) for i in range(3000)]
    await pool.pipeline(P, pipe)
    batches = 0

    async def consume() -> None:
        nonlocal batches
        async for _ in pool.stream(P, "MGET", pattern=redis_prefix + "s*", batch_rows=100,
                                   scan_count=100, timeout=1.5):
            batches += 1
            if batches == 1:
                proxy.blackhole()

    _, took = await fails_within(1.5 + SLACK, QueryTimeout, consume())
    assert batches >= 1
    report("redis blackhole mid-stream (timeout=1.5)", took)
    await recovered(pool, proxy)


def test_blackhole_mid_stream_sync(redis_server: RedisServer, proxy: FaultProxy,
                                   redis_prefix: str) -> None:
    """The sync stream too: the deadline's QueryTimeout, not an error of
    closing the cursor on the connection it broke."""
    with SyncDatabasePool() as p:
        p.create_pool(P, url=via(redis_server, proxy.port), max_size=2, connect_timeout=1)
        p.pipeline(P, [("SET", f"{redis_prefix}s{i}", i) for i in range(3000)])
        batches = 0
        t0 = time.monotonic()
        with pytest.raises(QueryTimeout):
            for _ in p.stream(P, "MGET", pattern=redis_prefix + "s*", batch_rows=100,
                              scan_count=100, timeout=1):
                batches += 1
                if batches == 1:
                    proxy.blackhole()
        took = time.monotonic() - t0
        assert batches >= 1 and took <= 1 + SLACK, took
        report("redis blackhole mid-stream, sync (timeout=1)", took)
        proxy.pass_through()
        assert p.stats(P)["in_use"] == 0
        assert p.command(P, "ECHO", "ok") == b"ok"


async def test_blackhole_mid_write_frame(pool: DatabasePool, proxy: FaultProxy,
                                         redis_prefix: str) -> None:
    """write_frame sends batches while the server is silent: the socket
    fills and the deadline ends the load."""
    import polars as pl

    assert await pool.command(P, "PING") == "PONG"
    df = pl.DataFrame({"id": range(200_000), "v": ["x" * 50] * 200_000})
    proxy.blackhole()
    _, took = await fails_within(1 + SLACK, QueryTimeout, pool.write_frame(
        P, df, key_column="id", prefix=redis_prefix, timeout=1))
    report("redis blackhole mid-write_frame (timeout=1)", took)
    await recovered(pool, proxy)


async def test_drop_mid_reply(pool: DatabasePool, proxy: FaultProxy, redis_prefix: str) -> None:
    big = b"z" * (4 << 20)
    await pool.command(P, "SET", redis_prefix + "big", big)
    proxy.drop_after(100_000)  # the connection is closed 100 kB into the 4 MB reply
    exc, took = await fails_within(SLACK, OperationalError,
                                   pool.command(P, "GET", redis_prefix + "big", timeout=5))
    assert not isinstance(exc, QueryTimeout)
    assert "closed the connection" in str(exc) or "reset" in str(exc).lower(), exc
    report("redis connection dropped 100 kB into a 4 MB reply", took)
    await recovered(pool, proxy)
    assert await pool.command(P, "GET", redis_prefix + "big") == big


async def test_reset_mid_command(pool: DatabasePool, proxy: FaultProxy, redis_prefix: str) -> None:
    await pool.command(P, "PING")
    task = asyncio.ensure_future(pool.command(P, "BLPOP", redis_prefix + "q", 5, timeout=5))
    await asyncio.sleep(0.2)
    proxy.reset()
    _, took = await fails_within(SLACK, OperationalError, task)
    report("redis connection reset mid-command", took)
    await recovered(pool, proxy)


@pytest.mark.parametrize("mode", ["clean", "kill"])
async def test_server_restart(redis_private_server: RedisServer, mode: str,
                              redis_prefix: str) -> None:
    """Idle connections to a restarted server are found dead (is_usable)
    when taken: the next command works without an error."""
    async with DatabasePool() as p:
        await p.create_pool(P, url=redis_private_server.url, max_size=3, min_size=3)
        await asyncio.gather(*(p.command(P, "PING") for _ in range(3)))
        created = p.stats(P)["created"]
        redis_private_server.restart(mode)
        await asyncio.sleep(0.05)  # the FIN/RST reaches the idle sockets
        for i in range(5):
            assert await p.command(P, "ECHO", str(i), timeout=5) == str(i).encode()
        stats = p.stats(P)
        assert stats["created"] > created and stats["in_use"] == 0


async def test_frozen_server(redis_private_server: RedisServer) -> None:
    async with DatabasePool() as p:
        await p.create_pool(P, url=redis_private_server.url, max_size=2, min_size=1,
                            connect_timeout=1)
        assert await p.command(P, "PING") == "PONG"
        redis_private_server.freeze()
        try:
            _, took = await fails_within(1 + SLACK, QueryTimeout,
                                         p.command(P, "PING", timeout=1))
            report("redis frozen server (timeout=1)", took)
            # a new connection: the kernel completes the handshake, the login hangs
            _, took = await fails_within(1 + SLACK, OperationalError, asyncio.gather(
                p.command(P, "PING", timeout=1), p.command(P, "PING", timeout=1)))
        finally:
            redis_private_server.thaw()
        await recovered(p)


async def test_cancel_task_mid_command(redis_url: str, redis_server: RedisServer,
                                       redis_prefix: str) -> None:
    key = redis_prefix + "q"
    async with DatabasePool() as p:
        await p.create_pool(P, url=redis_url, max_size=1, min_size=1)
        assert await p.command(P, "PING") == "PONG"
        task = asyncio.ensure_future(p.command(P, "BLPOP", key, 30))
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        report("redis task cancelled mid-BLPOP", time.monotonic() - t0)
        assert time.monotonic() - t0 < SLACK
        deadline = time.monotonic() + 5
        while p.stats(P)["in_use"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert p.stats(P)["in_use"] == 0
        redis_server.command("RPUSH", key, "late")
        for i in range(3):
            assert await p.command(P, "ECHO", f"c{i}") == f"c{i}".encode()
        assert await p.command(P, "LLEN", key) == 1  # nobody popped it


def test_connections_probe_a_silent_peer_after_10_s(redis_server: RedisServer) -> None:
    """TCP keepalives (10 s idle, then 3 probes 5 s apart) and a 30 s
    TCP_USER_TIMEOUT find a vanished server without any deadline."""
    with SyncDatabasePool() as pool:
        pool.create_pool("k", url=redis_server.url, min_size=1, max_size=1)
        info = pool.command("k", "CLIENT", "INFO").decode()
        local_port = int(info.split(" addr=", 1)[1].split(" ", 1)[0].rsplit(":", 1)[1])
        timer = keepalive_seconds(local_port)
        assert timer is not None and 0 < timer <= 10.5, timer

