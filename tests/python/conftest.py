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
from types import TracebackType
from typing import Any, AsyncIterator, Iterable

import polars as pl
import pytest

from db_pool import DatabasePool, SyncDatabasePool, SyncTransaction

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
}


def sqlite_url(path: Path | str) -> str:
    """sqlite:/// URL of an absolute path (sqlite:////abs/path.db)."""
    return f"sqlite:///{path}"


# ---- the sync API behind an awaitable interface -----------------------------------


class _SyncTxAsAsync:
    def __init__(self, tx: SyncTransaction) -> None:
        self._tx = tx

    async def __aenter__(self) -> _SyncTxAsAsync:
        self._tx.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._tx.__exit__(exc_type, exc, tb)

    async def query(self, sql: str, params: Any = None) -> pl.DataFrame:
        return self._tx.query(sql, params)

    async def execute(self, sql: str, params: Any = None) -> int:
        return self._tx.execute(sql, params)

    async def execute_many(self, sql: str, rows: Iterable[Any]) -> int:
        return self._tx.execute_many(sql, rows)


class SyncAsAsync:
    """A SyncDatabasePool with DatabasePool's awaitable signatures. The calls
    block the event loop while they run, which is fine in these tests."""

    def __init__(self, pool: SyncDatabasePool) -> None:
        self.pool = pool

    def __repr__(self) -> str:
        return repr(self.pool)

    async def create_pool(self, pool_id: str, *args: Any, **kwargs: Any) -> None:
        self.pool.create_pool(pool_id, *args, **kwargs)

    async def close_pool(self, pool_id: str) -> None:
        self.pool.close_pool(pool_id)

    async def close(self) -> None:
        self.pool.close()

    def list_pools(self) -> list[str]:
        return self.pool.list_pools()

    def stats(self, pool_id: str) -> dict[str, Any]:
        return self.pool.stats(pool_id)

    async def query(self, pool_id: str, sql: str, params: Any = None) -> pl.DataFrame:
        return self.pool.query(pool_id, sql, params)

    async def execute(self, pool_id: str, sql: str, params: Any = None) -> int:
        return self.pool.execute(pool_id, sql, params)

    async def execute_many(self, pool_id: str, sql: str, rows: Iterable[Any]) -> int:
        return self.pool.execute_many(pool_id, sql, rows)

    async def write_frame(self, pool_id: str, frame: pl.DataFrame, table: str) -> int:
        return self.pool.write_frame(pool_id, frame, table)

    def transaction(self, pool_id: str, begin: str = "") -> _SyncTxAsAsync:
        return _SyncTxAsAsync(self.pool.transaction(pool_id, begin))

    async def stream(
        self, pool_id: str, sql: str, params: Any = None, *, batch_rows: int = 65_536
    ) -> AsyncIterator[pl.DataFrame]:
        it = self.pool.stream(pool_id, sql, params, batch_rows=batch_rows)
        try:
            for df in it:
                yield df
        finally:
            it.close()


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
