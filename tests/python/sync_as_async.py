"""SyncDatabasePool behind DatabasePool's awaitable signatures, so one test
body checks both APIs. Keyword options (copy=, isolation=, readonly=,
batch_rows=, timeout=) pass through unchanged. The calls block the event loop while
they run, which is fine in tests."""

from __future__ import annotations

from types import TracebackType
from typing import Any, AsyncIterator, Iterable

import polars as pl

from db_pool import SyncDatabasePool, SyncTransaction


class SyncTxAsAsync:
    def __init__(self, tx: SyncTransaction) -> None:
        self._tx = tx

    async def __aenter__(self) -> SyncTxAsAsync:
        self._tx.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._tx.__exit__(exc_type, exc, tb)

    async def query(self, sql: str, params: Any = None, **options: Any) -> pl.DataFrame:
        return self._tx.query(sql, params, **options)

    async def execute(self, sql: str, params: Any = None, **options: Any) -> int:
        return self._tx.execute(sql, params, **options)

    async def execute_many(self, sql: str, rows: Iterable[Any], **options: Any) -> int:
        return self._tx.execute_many(sql, rows, **options)

    async def write_frame(self, frame: Any, table: str, **options: Any) -> int:
        return self._tx.write_frame(frame, table, **options)


class SyncAsAsync:
    """A SyncDatabasePool with DatabasePool's awaitable signatures."""

    is_sync = True

    def __init__(self, pool: SyncDatabasePool) -> None:
        self.pool = pool

    def __repr__(self) -> str:
        return repr(self.pool)

    async def create_pool(self, pool_id: str, *args: Any, **kwargs: Any) -> None:
        self.pool.create_pool(pool_id, *args, **kwargs)

    async def close_pool(self, pool_id: str, **options: Any) -> None:
        self.pool.close_pool(pool_id, **options)

    async def close(self, **options: Any) -> None:
        self.pool.close(**options)

    def list_pools(self) -> list[str]:
        return self.pool.list_pools()

    def stats(self, pool_id: str) -> dict[str, Any]:
        return self.pool.stats(pool_id)

    def metrics(self, pool_id: str | None = None) -> dict[str, Any]:
        return self.pool.metrics(pool_id)

    def prometheus_text(self, pool_id: str | None = None) -> str:
        return self.pool.prometheus_text(pool_id)

    async def query(self, pool_id: str, sql: str, params: Any = None, **options: Any) -> pl.DataFrame:
        return self.pool.query(pool_id, sql, params, **options)

    async def execute(self, pool_id: str, sql: str, params: Any = None, **options: Any) -> int:
        return self.pool.execute(pool_id, sql, params, **options)

    async def execute_many(self, pool_id: str, sql: str, rows: Iterable[Any],
                           **options: Any) -> int:
        return self.pool.execute_many(pool_id, sql, rows, **options)

    async def write_frame(self, pool_id: str, frame: pl.DataFrame, table: str,
                          **options: Any) -> int:
        return self.pool.write_frame(pool_id, frame, table, **options)

    def transaction(self, pool_id: str, begin: str = "", **options: Any) -> SyncTxAsAsync:
        return SyncTxAsAsync(self.pool.transaction(pool_id, begin, **options))

    async def stream(
        self, pool_id: str, sql: str, params: Any = None, **options: Any
    ) -> AsyncIterator[pl.DataFrame]:
        it = self.pool.stream(pool_id, sql, params, **options)
        try:
            for df in it:
                yield df
        finally:
            it.close()
