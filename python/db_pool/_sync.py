"""The blocking API: SyncDatabasePool, the same methods without ``await``.

Each call submits a request to the C workers and waits with the GIL
released, so other Python threads run meanwhile; Ctrl-C cancels the
statement and raises KeyboardInterrupt.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Iterable, Iterator, Mapping, Sequence

import polars as pl

from . import _native
from ._async import Params
from ._common import (
    DEFAULT_BATCH_ROWS,
    CopyMode,
    PoolRegistry,
    begin_options,
    copy_mode,
    frame,
    log_notices,
    pool_arguments,
    readonly_flag,
)
from .errors import PoolClosed


def _finish(req: _native.Request) -> _native.Request:
    req.wait()
    log_notices(req)
    req.check()
    return req


class SyncTransaction:
    """A connection held for a transaction: ``with pool.transaction(id) as tx``.

    Commits when the block ends normally, rolls back when it raises.
    """

    def __init__(
        self, pool: SyncDatabasePool, pool_id: str, begin: str, readonly: int = -1
    ) -> None:
        self._pool = pool
        self._pool_id = pool_id
        self._begin = begin
        self._readonly = readonly
        self._lease: _native.Lease | None = None

    def _run(
        self,
        op: int,
        sql: str | None = None,
        params: Any = None,
        *,
        many: bool = False,
        batch_rows: int = 0,
        copy: int = 0,
    ) -> _native.Request:
        if self._lease is None:
            raise PoolClosed("the transaction is not active")
        req = self._lease.submit(op, sql, params, many=many, batch_rows=batch_rows, copy=copy)
        return _finish(req)

    def query(self, sql: str, params: Params = None, *, copy: CopyMode = "auto") -> pl.DataFrame:
        """Runs a query inside the transaction and returns its rows."""
        return frame(self._run(_native.OP_QUERY, sql, params, copy=copy_mode(copy)))

    def execute(self, sql: str, params: Params = None) -> int:
        """Runs a statement inside the transaction; returns rows affected."""
        return self._run(_native.OP_EXECUTE, sql, params).rows_affected()

    def execute_many(self, sql: str, rows: Iterable[Params]) -> int:
        """Runs a statement once per parameter row, all or nothing."""
        return self._run(_native.OP_EXECUTE_MANY, sql, rows, many=True).rows_affected()

    def _acquire(self) -> None:
        req = self._pool._submit(self._pool_id, _native.OP_LEASE, readonly=self._readonly)
        self._lease = req.take_lease()

    def __enter__(self) -> SyncTransaction:
        self._acquire()
        try:
            self._run(_native.OP_BEGIN, self._begin)
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._run(_native.OP_COMMIT if exc_type is None else _native.OP_ROLLBACK)
        finally:
            self._release()

    def _release(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()


class SyncDatabasePool(PoolRegistry):
    """Named database pools for blocking code; queries return Polars DataFrames.

    >>> with SyncDatabasePool() as pool:
    ...     pool.create_pool("local", url="sqlite:///:memory:")
    ...     df = pool.query("local", "SELECT 1 AS one")
    """

    def _submit(
        self,
        pool_id: str,
        op: int,
        sql: str | None = None,
        params: Any = None,
        *,
        many: bool = False,
        copy: int = 0,
        input: object = None,
        readonly: int = -1,
    ) -> _native.Request:
        req = self._manager().submit(
            pool_id,
            op,
            sql,
            params,
            many=many,
            copy=copy,
            input=input,
            engine=self._engine(pool_id),
            readonly=readonly,
        )
        return _finish(req)

    def create_pool(
        self,
        pool_id: str,
        db_type: str | None = None,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        username: str | None = None,
        password: str | None = None,
        url: str | None = None,
        endpoints: Sequence[str | Mapping[str, Any]] | None = None,
        **pool_options: Any,
    ) -> None:
        """Creates the pool ``pool_id``; see DatabasePool.create_pool."""
        engine, settings, options = pool_arguments(
            db_type, host, port, database, username, password, url, pool_options, endpoints
        )
        self._manager().create_pool(pool_id, engine, settings, options)
        self._registered(pool_id, engine, len(settings))

    def close_pool(self, pool_id: str) -> None:
        """Closes one pool: waiting calls fail with PoolClosed, running ones finish."""
        self._engine(pool_id)
        self._manager().close_pool(pool_id)
        self._forget(pool_id)

    def close(self) -> None:
        """Closes every pool and stops the worker threads. Idempotent."""
        manager, self._native = self._native, None
        if manager is not None:
            manager.close()
            self._forget()

    def __enter__(self) -> SyncDatabasePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def query(
        self,
        pool_id: str,
        sql: str,
        params: Params = None,
        *,
        copy: CopyMode = "auto",
        readonly: bool | None = None,
    ) -> pl.DataFrame:
        """Runs a query and returns all its rows as a DataFrame; see DatabasePool.query."""
        req = self._submit(
            pool_id,
            _native.OP_QUERY,
            sql,
            params,
            copy=copy_mode(copy),
            readonly=readonly_flag(readonly),
        )
        return frame(req)

    def execute(self, pool_id: str, sql: str, params: Params = None) -> int:
        """Runs a statement (or, without parameters, a script); returns rows changed."""
        return self._submit(pool_id, _native.OP_EXECUTE, sql, params).rows_affected()

    def execute_many(self, pool_id: str, sql: str, rows: Iterable[Params]) -> int:
        """Runs one statement per parameter row, all or nothing; returns rows changed."""
        req = self._submit(pool_id, _native.OP_EXECUTE_MANY, sql, rows, many=True)
        return req.rows_affected()

    def write_frame(self, pool_id: str, frame: pl.DataFrame, table: str) -> int:
        """Appends the rows of ``frame`` to ``table``, all or nothing; see
        DatabasePool.write_frame."""
        req = self._submit(pool_id, _native.OP_WRITE_FRAME, table, input=frame)
        return req.rows_affected()

    def transaction(
        self,
        pool_id: str,
        begin: str = "",
        *,
        isolation: str | None = None,
        readonly: bool = False,
    ) -> SyncTransaction:
        """A transaction on one connection, as a context manager; see
        DatabasePool.transaction."""
        options = begin_options(self._engine(pool_id), begin, isolation, readonly)
        return SyncTransaction(self, pool_id, options, readonly_flag(readonly or None))

    def stream(
        self,
        pool_id: str,
        sql: str,
        params: Params = None,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        copy: CopyMode = "auto",
        readonly: bool = True,
    ) -> Iterator[pl.DataFrame]:
        """Yields the rows of a query as DataFrames of at most ``batch_rows`` rows;
        see DatabasePool.stream."""
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        mode = copy_mode(copy)
        tx = SyncTransaction(self, pool_id, "", int(readonly))
        tx._acquire()
        cursor_open = False
        try:
            tx._run(_native.OP_CURSOR_OPEN, sql, params, copy=mode)
            cursor_open = True
            while True:
                req = tx._run(_native.OP_CURSOR_FETCH, batch_rows=batch_rows)
                df = frame(req)
                if df.height:
                    yield df
                if req.cursor_done:
                    cursor_open = False
                    break
        finally:
            try:
                if cursor_open:  # left early: close it here, not on release
                    tx._run(_native.OP_CURSOR_CLOSE)
            finally:
                tx._release()
