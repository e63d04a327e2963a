"""The blocking API: SyncDatabasePool, the same methods without ``await``.

Each call submits a request to the C workers and waits with the GIL
released, so other Python threads run meanwhile; Ctrl-C cancels the
statement and raises KeyboardInterrupt.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Iterable, Iterator, Mapping, Sequence

import polars as pl

from . import _native, _redis
from ._async import Params
from ._frames import FrameInput, IfExists, check_if_exists, create_statements, prepare_frame
from ._partition import PartitionRange, query_sync, refuse_in_transaction, stream_sync
from ._partition import options as partition_options
from ._common import (
    engine_params,
    DEFAULT_BATCH_ROWS,
    CopyMode,
    PoolRegistry,
    StreamDeadline,
    begin_options,
    call_timeout,
    close_timeout,
    copy_mode,
    frame,
    log_notices,
    pool_arguments,
    readonly_flag,
    split_watch_options,
    warn_abandoned,
)
from ._config_model import Config, native_arguments
from ._config_sources import ConfigSource, config_from_env, keyword_model, load_config
from ._reload import ReloadReport, reload
from ._alerts import LeaseRecord
from .errors import Error, PoolClosed


def _finish(req: _native.Request) -> _native.Request:
    req.wait()
    log_notices(req)
    req.check()
    return req


class SyncTransaction:
    """A connection held for a transaction: ``with pool.transaction(id) as tx``.

    Commits when the block ends normally, rolls back when it raises.
    ``timeout`` (seconds) bounds each statement, BEGIN and COMMIT included,
    unless a statement gives its own. On a Redis pool it holds the
    connection for WATCH and MULTI/EXEC; see Transaction.
    """

    def __init__(
        self,
        pool: SyncDatabasePool,
        pool_id: str,
        begin: str,
        readonly: int = -1,
        timeout: float | None = None,
    ) -> None:
        self._pool = pool
        self._pool_id = pool_id
        self._begin = begin
        self._readonly = readonly
        self._timeout = call_timeout(timeout)
        self._lease: _native.Lease | None = None
        self._leak: LeaseRecord | None = None
        self._session_only = pool._engine(pool_id) == "redis"  # no BEGIN / COMMIT

    def _run(
        self,
        op: int,
        sql: str | None = None,
        params: Any = None,
        *,
        many: int = False,
        batch_rows: int = 0,
        copy: int = 0,
        input: Any = None,
        timeout: float | None = None,
    ) -> _native.Request:
        if self._lease is None:
            raise PoolClosed("the transaction is not active")
        if self._leak is not None and sql is not None:
            self._leak.sql = sql
        watch = self._pool._slow_watch(self._pool_id, op)
        started = time.monotonic() if watch is not None else 0.0
        sql, params = engine_params(self._pool._engine(self._pool_id), sql, params, many)
        req = self._lease.submit(
            op,
            sql,
            params,
            many=many,
            batch_rows=batch_rows,
            copy=copy,
            input=input,
            timeout=self._timeout if timeout is None else call_timeout(timeout),
        )
        if watch is None:
            return _finish(req)
        try:
            _finish(req)
        except BaseException:
            self._pool._slow_done(watch, req, op, sql, params, started, self._lease.endpoint, True)
            raise
        self._pool._slow_done(watch, req, op, sql, params, started, self._lease.endpoint, False)
        return req

    def query(
        self,
        sql: str,
        params: Params = None,
        *,
        copy: CopyMode = "auto",
        timeout: float | None = None,
        partition_on: str | None = None,
        partitions: int | None = None,
        partition_range: PartitionRange | None = None,
    ) -> pl.DataFrame:
        """Runs a query inside the transaction and returns its rows. (A
        partitioned read needs several connections: ProgrammingError here.)"""
        refuse_in_transaction(partition_on, partitions, partition_range)
        return frame(
            self._run(_native.OP_QUERY, sql, params, copy=copy_mode(copy), timeout=timeout)
        )

    def execute(self, sql: str, params: Params = None, *, timeout: float | None = None) -> int:
        """Runs a statement inside the transaction; returns rows affected."""
        return self._run(_native.OP_EXECUTE, sql, params, timeout=timeout).rows_affected()

    def execute_many(
        self, sql: str, rows: Iterable[Params], *, timeout: float | None = None
    ) -> int:
        """Runs a statement once per parameter row, all or nothing."""
        req = self._run(_native.OP_EXECUTE_MANY, sql, rows, many=True, timeout=timeout)
        return req.rows_affected()

    def write_frame(
        self,
        frame: FrameInput,
        table: str,
        *,
        create: bool = False,
        if_exists: IfExists = "append",
        timeout: float | None = None,
    ) -> int:
        """Writes the rows of ``frame`` inside the transaction; see
        DatabasePool.write_frame."""
        check_if_exists(create, if_exists)
        engine = self._pool._engine(self._pool_id)
        rows, schema = prepare_frame(frame, engine, create=create)
        if create and schema is not None:
            for sql in create_statements(engine, table, schema, if_exists):
                self._run(_native.OP_EXECUTE, sql, timeout=timeout)
        return self._run(_native.OP_WRITE_FRAME, table, input=rows, timeout=timeout).rows_affected()

    def _acquire(self, timeout: float | None = None) -> None:
        req = self._pool._submit(
            self._pool_id,
            _native.OP_LEASE,
            readonly=self._readonly,
            timeout=self._timeout if timeout is None else timeout,
        )
        self._lease = req.take_lease()
        self._leak = self._pool._lease_taken(self._pool_id, self._lease)

    def command(self, *args: Any, timeout: float | None = None) -> Any:
        """Runs one command on the held connection (Redis); see DatabasePool.command."""
        return _redis.single_reply(self._commands([args], "", timeout))

    def pipeline(self, commands: Iterable[_redis.Command], *, transaction: bool = False,
                 raise_on_error: bool = True, timeout: float | None = None) -> list[Any]:
        """Sends several commands on the held connection; see Transaction.pipeline."""
        replies = self._commands(commands, "MULTI" if transaction else "", timeout)
        return _redis.pipeline_replies(replies, raise_on_error)

    def _commands(self, commands: Iterable[_redis.Command], mode: str,
                  timeout: float | None) -> Any:
        cmds, _ = _redis.command_list(commands, None)
        req = self._run(_native.OP_COMMAND, mode, cmds, many=_redis.BIND_COMMANDS,
                        timeout=timeout)
        return req.reply()

    def __enter__(self) -> SyncTransaction:
        self._acquire()
        if self._session_only:
            return self
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
            if not self._session_only:  # else the release resets the session
                self._run(_native.OP_COMMIT if exc_type is None else _native.OP_ROLLBACK)
        finally:
            self._release()

    def _release(self) -> None:
        lease, self._lease = self._lease, None
        leak, self._leak = self._leak, None
        if lease is not None:
            lease.release()
        self._pool._lease_returned(self._pool_id, leak)


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
        many: int = False,
        copy: int = 0,
        input: object = None,
        readonly: int = -1,
        timeout: float | None = None,
    ) -> _native.Request:
        watch = self._slow_watch(pool_id, op)
        started = time.monotonic() if watch is not None else 0.0
        sql, params = engine_params(self._engine(pool_id), sql, params, many)
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
            timeout=call_timeout(timeout),
        )
        if watch is None:
            return _finish(req)
        try:
            _finish(req)
        except BaseException:
            self._slow_done(watch, req, op, sql, params, started, None, True)
            raise
        self._slow_done(watch, req, op, sql, params, started, None, False)
        return req

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
        model = keyword_model(pool_id, db_type, host, port, database, username, password, url,
                              endpoints, **pool_options)
        pool_options, watch = split_watch_options(pool_options)
        engine, settings, options = pool_arguments(
            db_type, host, port, database, username, password, url, pool_options, endpoints
        )
        n = self._create_native(pool_id, engine, settings, options)
        self._registered(pool_id, engine, n, watch, model)

    def close_pool(self, pool_id: str, *, timeout: float | None = None) -> None:
        """Closes one pool within ``timeout`` seconds; see DatabasePool.close_pool."""
        self._engine(pool_id)
        limit = close_timeout(timeout)
        manager = self._manager()
        self._forget(pool_id)
        if not manager.close_pool(pool_id, limit):
            warn_abandoned(f"pool {pool_id!r}", limit)

    def close(self, *, timeout: float | None = None) -> None:
        """Closes every pool within ``timeout`` seconds (default 10) and stops
        the worker threads; see DatabasePool.close. Idempotent."""
        limit = close_timeout(timeout)
        manager, self._native = self._native, None
        if manager is not None:
            self._close_servers()
            self._forget()
            if not manager.close(limit):
                warn_abandoned(f"the {type(self).__name__}", limit)

    # ---- configuration (docs/configuration.md) ----

    @classmethod
    def from_config(cls, source: ConfigSource, *, env: bool = False) -> SyncDatabasePool:
        """A SyncDatabasePool with every pool of a configuration created;
        see DatabasePool.from_config."""
        return cls._from_model(load_config(source, env=env))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SyncDatabasePool:
        """A SyncDatabasePool with the pools the environment names; see
        DatabasePool.from_env."""
        return cls._from_model(config_from_env(environ))

    def reload(self, source: ConfigSource, *, env: bool = False,
               timeout: float | None = None) -> ReloadReport:
        """Applies a new configuration to the running pools as a diff; see
        DatabasePool.reload."""
        return reload(self, load_config(source, env=env), close_timeout(timeout))

    @classmethod
    def _from_model(cls, config: Config) -> SyncDatabasePool:
        pool = cls()
        try:
            for name, pool_config in config.pools.items():
                engine, settings, options, watch = native_arguments(pool_config)
                n = pool._create_native(name, engine, settings, options)
                pool._registered(name, engine, n, watch, pool_config)
        except BaseException:
            pool.close()
            raise
        return pool

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
        timeout: float | None = None,
        partition_on: str | None = None,
        partitions: int | None = None,
        partition_range: PartitionRange | None = None,
        rechunk: bool = False,
        pattern: str | bytes | None = None,
        schema: Mapping[str, Any] | None = None,
        on_error: _redis.OnError = "raise",
        scan_count: int = _redis.DEFAULT_SCAN_COUNT,
    ) -> pl.DataFrame:
        """Runs a query and returns all its rows as a DataFrame; see DatabasePool.query
        (partitioned reads too: the partitions run at once on the C workers; redis
        tabular reads with pattern= and schema=)."""
        if self._engine(pool_id) == "redis":
            sql, spec = _redis.scan_spec(sql, pattern, schema, on_error, scan_count)
            return frame(self._submit(pool_id, _native.OP_QUERY, sql, spec, readonly=1,
                                      timeout=timeout))
        _redis.refuse_sql_options(self._engine(pool_id), pattern=pattern, schema=schema)
        part = partition_options(partition_on, partitions, partition_range)
        if part is not None:
            return query_sync(
                self, pool_id, sql, params, part, copy=copy_mode(copy),
                readonly=readonly_flag(readonly), timeout=timeout, rechunk=rechunk)
        req = self._submit(
            pool_id,
            _native.OP_QUERY,
            sql,
            params,
            copy=copy_mode(copy),
            readonly=readonly_flag(readonly),
            timeout=timeout,
        )
        return frame(req).rechunk() if rechunk else frame(req)

    def command(self, pool_id: str, *args: Any, readonly: bool | None = None,
                timeout: float | None = None) -> Any:
        """Runs one command on a key-value pool (Redis) and returns its reply;
        see DatabasePool.command."""
        return _redis.single_reply(self._commands(pool_id, [args], "", readonly, timeout))

    def pipeline(self, pool_id: str, commands: Iterable[_redis.Command], *,
                 transaction: bool = False, raise_on_error: bool = True,
                 readonly: bool | None = None, timeout: float | None = None) -> list[Any]:
        """Sends several commands in one round trip and returns their replies;
        see DatabasePool.pipeline."""
        replies = self._commands(pool_id, commands, "MULTI" if transaction else "", readonly,
                                 timeout)
        return _redis.pipeline_replies(replies, raise_on_error)

    def _commands(self, pool_id: str, commands: Iterable[_redis.Command], mode: str,
                  readonly: bool | None, timeout: float | None) -> Any:
        cmds, route = _redis.command_list(commands, readonly)
        req = self._submit(pool_id, _native.OP_COMMAND, mode, cmds,
                               many=_redis.BIND_COMMANDS, readonly=route, timeout=timeout)
        return req.reply()

    def execute(
        self, pool_id: str, sql: str, params: Params = None, *, timeout: float | None = None
    ) -> int:
        """Runs a statement (or, without parameters, a script); returns rows changed."""
        req = self._submit(pool_id, _native.OP_EXECUTE, sql, params, timeout=timeout)
        return req.rows_affected()

    def execute_many(
        self,
        pool_id: str,
        sql: str,
        rows: Iterable[Params],
        *,
        timeout: float | None = None,
    ) -> int:
        """Runs one statement per parameter row, all or nothing; returns rows changed."""
        req = self._submit(
            pool_id, _native.OP_EXECUTE_MANY, sql, rows, many=True, timeout=timeout
        )
        return req.rows_affected()

    def write_frame(
        self,
        pool_id: str,
        frame: FrameInput,
        table: str | None = None,
        *,
        create: bool = False,
        if_exists: IfExists = "append",
        timeout: float | None = None,
        key_column: str | None = None,
        prefix: str | None = None,
        kind: _redis.WriteKind = "hash",
        ttl: float | None = None,
    ) -> int:
        """Appends the rows of ``frame`` to ``table``, all or nothing (redis:
        keys from ``prefix`` and ``key_column``); see DatabasePool.write_frame."""
        engine = self._engine(pool_id)
        if engine == "redis":
            target, options = _redis.write_options(key_column, kind, ttl, prefix, table)
            rows = _redis.frame_rows(frame, key_column)
            return self._submit(pool_id, _native.OP_WRITE_FRAME, target, options, input=rows,
                                timeout=timeout).rows_affected()
        _redis.refuse_sql_options(engine, key_column=key_column, prefix=prefix, ttl=ttl)
        if table is None:
            raise TypeError("write_frame() needs the table to write to")
        check_if_exists(create, if_exists)
        if create:
            with self.transaction(pool_id, timeout=timeout) as tx:
                return tx.write_frame(frame, table, create=True, if_exists=if_exists)
        rows, _ = prepare_frame(frame, self._engine(pool_id))
        req = self._submit(pool_id, _native.OP_WRITE_FRAME, table, input=rows, timeout=timeout)
        return req.rows_affected()

    def transaction(
        self,
        pool_id: str,
        begin: str = "",
        *,
        isolation: str | None = None,
        readonly: bool = False,
        timeout: float | None = None,
    ) -> SyncTransaction:
        """A transaction on one connection, as a context manager; see
        DatabasePool.transaction."""
        options = begin_options(self._engine(pool_id), begin, isolation, readonly)
        return SyncTransaction(
            self, pool_id, options, readonly_flag(readonly or None), timeout
        )

    def stream(
        self,
        pool_id: str,
        sql: str,
        params: Params = None,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        copy: CopyMode = "auto",
        readonly: bool = True,
        timeout: float | None = None,
        partition_on: str | None = None,
        partitions: int | None = None,
        partition_range: PartitionRange | None = None,
        pattern: str | bytes | None = None,
        schema: Mapping[str, Any] | None = None,
        on_error: _redis.OnError = "raise",
        scan_count: int = _redis.DEFAULT_SCAN_COUNT,
    ) -> Iterator[pl.DataFrame]:
        """Yields the rows of a query as DataFrames of at most ``batch_rows`` rows;
        see DatabasePool.stream (partitioned: batches interleaved as they arrive)."""
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        if self._engine(pool_id) == "redis":
            sql, params = _redis.scan_spec(sql, pattern, schema, on_error, scan_count)
        else:
            _redis.refuse_sql_options(self._engine(pool_id), pattern=pattern, schema=schema)
        mode = copy_mode(copy)
        part = partition_options(partition_on, partitions, partition_range)
        if part is not None:
            yield from stream_sync(self, pool_id, sql, params, part, batch_rows=batch_rows,
                                   copy=mode, readonly=readonly, timeout=timeout)
            return
        deadline = StreamDeadline(timeout)
        tx = SyncTransaction(self, pool_id, "", int(readonly))
        tx._acquire(deadline.left())
        cursor_open = False
        try:
            tx._run(_native.OP_CURSOR_OPEN, sql, params, copy=mode, timeout=deadline.left())
            cursor_open = True
            while True:
                left = deadline.left()  # may raise: the cursor is open, closed below
                try:
                    req = tx._run(_native.OP_CURSOR_FETCH, batch_rows=batch_rows,
                                      timeout=left)
                except Error:
                    # a failed fetch closed its cursor: closing it again could replace
                    # the call's error with a lost connection's
                    cursor_open = False
                    raise
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
