"""Fixtures shared by the db_pool Python tests.

Most tests run against both APIs through the ``api`` fixture: it yields a
DatabasePool, or a SyncDatabasePool behind the same awaitable interface
(``SyncAsAsync``), so one test body checks both. Tests of things only one API
has (cancellation, ``with`` blocks, generator closing) use the ``apool`` /
``spool`` fixtures directly.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

import pytest

from db_pool import DatabasePool, SyncDatabasePool
from sync_as_async import SyncAsAsync

#: A statement that never ends on its own (until interrupted).
SLOW_SQL = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"

#: Keys DatabasePool.stats() returns.
STATS_KEYS = {
    "engine",
    "size",
    "idle",
    "in_use",
    "opening",
    "waiting",
    "min_size",
    "max_size",
    "acquired",
    "timeouts",
    "rejected",
    "created",
    "closed",
    "connect_failures",
    "validation_failures",
    "requests",
    "errors",
    "cancelled",
    "acquire_wait_ms_total",
    "topology_generation",
    "failovers",
    "retries",
    "query_timeouts",
    "abandoned",
}


def sqlite_url(path: Path | str) -> str:
    """sqlite:/// URL of an absolute path (sqlite:////abs/path.db)."""
    return f"sqlite:///{path}"


# ---- fixtures ------------------------------------------------------------------


@pytest.fixture
async def apool() -> AsyncIterator[DatabasePool]:
    """A DatabasePool (no pools yet), closed after the test."""
    pool = DatabasePool()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def spool() -> Iterable[SyncDatabasePool]:
    """A SyncDatabasePool (no pools yet), closed after the test."""
    pool = SyncDatabasePool()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(params=["async", "sync"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """DatabasePool or SyncDatabasePool behind the same awaitable methods."""
    if request.param == "async":
        pool: Any = DatabasePool()
    else:
        pool = SyncAsAsync(SyncDatabasePool())
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def mem(api: Any) -> Any:
    """``api`` with a pool "db" on a private in-memory database (max_size=4)."""
    await api.create_pool("db", url="sqlite:///:memory:", max_size=4)
    return api


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.db"


# ---- helpers -------------------------------------------------------------------


async def wait_idle(pool: Any, pool_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """Polls stats until no connection is in use and nobody waits; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        stats = pool.stats(pool_id)
        if stats["in_use"] == 0 and stats["waiting"] == 0:
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"pool {pool_id!r} still busy after {timeout}s: {stats}")
        await asyncio.sleep(0.01)


async def assert_healthy(pool: Any, pool_id: str) -> None:
    """No leaked connection, and the pool still answers queries."""
    stats = pool.stats(pool_id)
    assert stats["in_use"] == 0, stats
    assert stats["waiting"] == 0, stats
    df = await pool.query(pool_id, "SELECT 41 + 1 AS answer")
    assert df.to_dict(as_series=False) == {"answer": [42]}
    assert pool.stats(pool_id)["in_use"] == 0


def wait_idle_sync(pool: SyncDatabasePool, pool_id: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = pool.stats(pool_id)
        if stats["in_use"] == 0 and stats["waiting"] == 0:
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"pool {pool_id!r} still busy after {timeout}s: {stats}")
        time.sleep(0.01)
