"""transaction() on a Redis pool: one connection held for WATCH and
MULTI/EXEC (optimistic check-and-set), against a real server. A change by
another client between WATCH and EXEC makes EXEC answer nil: WatchError,
and nothing of the transaction ran. The session (WATCH, a MULTI left open)
is reset when the block ends, so the next caller of that connection starts
clean."""

from __future__ import annotations

import asyncio
from typing import Iterator

import pytest

from conftest import wait_idle, wait_idle_sync
from db_pool import ConfigurationError, DatabasePool, SyncDatabasePool
from db_pool.errors import WatchError

P = "w"


@pytest.fixture
def pool(redis_url: str) -> Iterator[SyncDatabasePool]:
    p = SyncDatabasePool()
    p.create_pool(P, url=redis_url, min_size=1, max_size=1)  # one connection: reuse is certain
    yield p
    p.close()


def test_check_and_set_commits_when_nothing_changed(pool: SyncDatabasePool,
                                                    redis_prefix: str) -> None:
    k = redis_prefix + "balance"
    pool.command(P, "SET", k, 100)
    with pool.transaction(P) as tx:
        assert tx.command("WATCH", k) == "OK"
        balance = int(tx.command("GET", k))
        assert tx.pipeline([("SET", k, balance - 30), ("GET", k)], transaction=True) == \
            ["OK", b"70"]
    assert pool.command(P, "GET", k) == b"70"
    wait_idle_sync(pool, P)  # returned (its reset may still be under way just after)


def test_a_change_after_watch_aborts_the_transaction(redis_url: str, redis_prefix: str) -> None:
    k = redis_prefix + "balance"
    with SyncDatabasePool() as pool:
        pool.create_pool(P, url=redis_url, max_size=2)
        pool.command(P, "SET", k, 100)
        with pool.transaction(P) as tx:
            tx.command("WATCH", k)
            balance = int(tx.command("GET", k))
            pool.command(P, "INCRBY", k, 5)  # another client, on the other connection
            with pytest.raises(WatchError, match="WATCHed"):
                tx.pipeline([("SET", k, balance - 30), ("SET", k + ":log", "x")],
                            transaction=True)
            # the connection is still usable inside the block; a retry succeeds
            tx.command("WATCH", k)
            balance = int(tx.command("GET", k))
            tx.pipeline([("SET", k, balance - 30)], transaction=True)
        assert pool.command(P, "GET", k) == b"75"
        assert pool.command(P, "EXISTS", k + ":log") == 0  # nothing of the aborted one ran


def test_the_session_is_reset_when_the_block_ends(pool: SyncDatabasePool,
                                                  redis_prefix: str) -> None:
    k = redis_prefix + "k"
    with pytest.raises(RuntimeError):
        with pool.transaction(P) as tx:
            tx.command("WATCH", k)
            assert tx.command("MULTI") == "OK"
            assert tx.command("SET", k, "queued") == "QUEUED"
            raise RuntimeError("the block fails before EXEC")
    assert pool.command(P, "EXISTS", k) == 0  # the queued SET was discarded
    # the same (only) connection: not inside a MULTI, not watching anymore
    assert pool.command(P, "SET", k, "1") == "OK"
    with pool.transaction(P) as tx:
        tx.command("WATCH", k)
        pool_conn_id = tx.command("CLIENT", "ID")
    out = pool.pipeline(P, [("CLIENT", "ID"), ("SET", k, "2")], transaction=True)
    assert out[0] == pool_conn_id and out[1] == "OK"  # the old WATCH did not abort it


def test_transaction_takes_no_sql_options(pool: SyncDatabasePool) -> None:
    for kwargs in ({"begin": "IMMEDIATE"}, {"isolation": "serializable"}, {"readonly": True}):
        with pytest.raises(ConfigurationError, match="WATCH"):
            pool.transaction(P, **kwargs)  # type: ignore[arg-type]


async def test_async_check_and_set_under_contention(redis_url: str, redis_prefix: str) -> None:
    """20 tasks each add 1 with WATCH/GET/MULTI SET/EXEC, retrying on
    WatchError: no increment is lost."""
    k = redis_prefix + "counter"
    async with DatabasePool() as pool:
        await pool.create_pool(P, url=redis_url, max_size=5)
        await pool.command(P, "SET", k, 0)
        conflicts = 0

        async def add_one() -> None:
            nonlocal conflicts
            while True:
                async with pool.transaction(P) as tx:
                    await tx.command("WATCH", k)
                    value = int(await tx.command("GET", k))
                    await asyncio.sleep(0.005)  # the others EXEC meanwhile: conflicts
                    try:
                        await tx.pipeline([("SET", k, value + 1)], transaction=True)
                        return
                    except WatchError:
                        conflicts += 1

        await asyncio.wait_for(asyncio.gather(*(add_one() for _ in range(20))), 60)
        assert await pool.command(P, "GET", k) == b"20"
        assert conflicts > 0  # the tasks did contend: the check was exercised
        await wait_idle(pool, P)
