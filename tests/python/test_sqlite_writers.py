"""SQLite writers under concurrency: transaction() begins IMMEDIATE by
default, so two transactions that read and then write wait for each other
(up to busy_timeout_ms) instead of one failing with "database is locked";
when the wait runs out, the error says what to change."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from db_pool import DatabasePool, OperationalError

from conftest import sqlite_url


async def read_then_write(pool: DatabasePool, begin: str, pause: float) -> None:
    async with pool.transaction("db", begin) as tx:
        n = (await tx.query("SELECT count(*) AS n FROM t")).item()
        await asyncio.sleep(pause)  # the other transaction reads meanwhile
        await tx.execute("INSERT INTO t VALUES (?)", [n])


async def test_concurrent_read_then_write_transactions_both_commit(tmp_path: Path) -> None:
    async with DatabasePool() as pool:
        await pool.create_pool("db", url=sqlite_url(tmp_path / "w.db"), max_size=4,
                               busy_timeout_ms=5000)
        await pool.execute("db", "CREATE TABLE t (n INTEGER)")
        await asyncio.gather(*(read_then_write(pool, "", 0.05) for _ in range(4)))
        # each saw the rows of the ones before it: the transactions ran one by one
        assert sorted((await pool.query("db", "SELECT n FROM t"))["n"].to_list()) == [0, 1, 2, 3]


async def test_deferred_transactions_still_available_and_lock_errors_say_what_to_do(tmp_path: Path) -> None:
    async with DatabasePool() as pool:
        await pool.create_pool("db", url=sqlite_url(tmp_path / "d.db"), max_size=4,
                               busy_timeout_ms=200)
        await pool.execute("db", "CREATE TABLE t (n INTEGER)")
        results = await asyncio.gather(*(read_then_write(pool, "DEFERRED", 0.3) for _ in range(2)),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], OperationalError), results
        assert "locked" in str(errors[0])
        assert errors[0].hint is not None and "IMMEDIATE" in errors[0].hint
        assert (await pool.query("db", "SELECT count(*) AS n FROM t")).item() == 1


@pytest.mark.parametrize("begin", ["", "deferred", "IMMEDIATE", "exclusive"])
async def test_begin_modes(tmp_path: Path, begin: str) -> None:
    async with DatabasePool() as pool:
        await pool.create_pool("db", url=sqlite_url(tmp_path / "m.db"))
        async with pool.transaction("db", begin) as tx:
            await tx.execute("CREATE TABLE x (a INTEGER)")
        assert (await pool.query("db", "SELECT count(*) AS n FROM x")).item() == 0


def test_sync_api_waits_for_the_writer(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("db", url=sqlite_url(tmp_path / "s.db"), max_size=4, busy_timeout_ms=5000)
        pool.execute("db", "CREATE TABLE t (n INTEGER)")

        def work(_: Any) -> None:
            with pool.transaction("db") as tx:
                n = tx.query("SELECT count(*) AS n FROM t").item()
                tx.execute("INSERT INTO t VALUES (?)", [n])

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(work, range(8)))
        assert sorted(pool.query("db", "SELECT n FROM t")["n"].to_list()) == list(range(8))
