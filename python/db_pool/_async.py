"""The asyncio API: DatabasePool.

Requests run on the library's C worker threads. Finished requests are
announced through one eventfd that the event loop watches (loop.add_reader);
each wake-up resolves every finished request's future at once.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any, AsyncIterator, Iterable, Mapping, Sequence

import polars as pl

from . import _native, _redis
from ._frames import FrameInput, IfExists, check_if_exists, create_statements, prepare_frame
from ._partition import PartitionRange, query_async, refuse_in_transaction, stream_async
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
from .errors import Error, InterfaceError, PoolClosed

Params = Sequence[Any] | Mapping[str, Any] | None


class _Completions:
    """The manager's completion queue, bound to one running event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue = _native.CompletionQueue()
        self.closing = False
        self.watching = True
        loop.add_reader(self.queue.fileno(), self._drain)

    def _drain(self) -> None:
        for req in self.queue.drain():
            fut = req.future
            if fut is not None and not fut.done():
                fut.set_result(req)
        if self.closing and self.watching and self.queue.pending == 0:
            self.watching = False
            if not self.loop.is_closed():
                self.loop.remove_reader(self.queue.fileno())

    def close(self) -> None:
        """Stops watching the queue once every request submitted with it came
        back: a request that finished as the manager shut down may still be
        on its way from a worker thread."""
        self.closing = True
        self._drain()


async def _finish(req: _native.Request) -> _native.Request:
    """Waits for a submitted request. If the waiting task is cancelled, the
    request is cancelled too (dequeued, or its statement interrupted). A
    short SQLite read may be done already: it ran inline during submit."""
    try:
        if not req.done():
            await req.future
    except asyncio.CancelledError:
        req.cancel()
        if req.done():  # it finished as the task was cancelled: let go of what it holds
            try:
                req.take_lease().release()
            except Exception:  # noqa: BLE001 - it holds no lease, or ended with an error
                pass
        raise
    log_notices(req)
    req.check()
    return req


class Transaction:
    """A connection held for a transaction: ``async with pool.transaction(id) as tx``.

    Commits when the block ends normally, rolls back when it raises.
    ``timeout`` (seconds) bounds each statement, BEGIN and COMMIT included,
    unless a statement gives its own. On a Redis pool it holds the
    connection for WATCH and MULTI/EXEC (docs/redis.md): nothing is begun
    or committed, and the session is reset when the block ends.
    """

    def __init__(
        self,
        pool: DatabasePool,
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
        self._last: _native.Request | None = None
        self._in_use = False  # a task awaits a statement on it
        self._leak: LeaseRecord | None = None
        self._session_only = pool._engine(pool_id) == "redis"  # no BEGIN / COMMIT

    async def _run(
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
        if self._in_use:  # a second task would take over the first one's future
            raise InterfaceError(
                "the transaction is in use by another task: one statement at a time, "
                "await the running one first"
            )
        self._in_use = True
        if self._leak is not None and sql is not None:
            self._leak.sql = sql
        watch = self._pool._slow_watch(self._pool_id, op)
        try:
            await self._settle()
            started = time.monotonic() if watch is not None else 0.0
            completions = self._pool._loop_completions()
            fut = completions.loop.create_future()
            sql, params = engine_params(self._pool._engine(self._pool_id), sql, params, many)
            req = self._lease.submit(
                op,
                sql,
                params,
                many=many,
                batch_rows=batch_rows,
                copy=copy,
                input=input,
                queue=completions.queue,
                future=fut,
                timeout=self._timeout if timeout is None else call_timeout(timeout),
            )
            self._last = req
            if watch is None:
                return await _finish(req)
            endpoint = self._lease.endpoint
            try:
                await _finish(req)
            except BaseException:
                self._pool._slow_done(watch, req, op, sql, params, started, endpoint, True)
                raise
            self._pool._slow_done(watch, req, op, sql, params, started, endpoint, False)
            return req
        finally:
            self._in_use = False

    async def _settle(self) -> None:
        """Waits until a cancelled earlier request has left the connection."""
        last = self._last
        if last is not None and not last.done():
            fut = self._pool._loop_completions().loop.create_future()
            last.future = fut
            if not last.done():
                await asyncio.shield(fut)

    async def query(
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
        req = await self._run(_native.OP_QUERY, sql, params, copy=copy_mode(copy), timeout=timeout)
        return frame(req)

    async def execute(
        self, sql: str, params: Params = None, *, timeout: float | None = None
    ) -> int:
        """Runs a statement inside the transaction; returns rows affected."""
        return (await self._run(_native.OP_EXECUTE, sql, params, timeout=timeout)).rows_affected()

    async def execute_many(
        self, sql: str, rows: Iterable[Params], *, timeout: float | None = None
    ) -> int:
        """Runs a statement once per parameter row, all or nothing."""
        req = await self._run(_native.OP_EXECUTE_MANY, sql, rows, many=True, timeout=timeout)
        return req.rows_affected()

    async def write_frame(
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
                await self._run(_native.OP_EXECUTE, sql, timeout=timeout)
        req = await self._run(_native.OP_WRITE_FRAME, table, input=rows, timeout=timeout)
        return req.rows_affected()

    async def command(self, *args: Any, timeout: float | None = None) -> Any:
        """Runs one command on the held connection (Redis); see DatabasePool.command."""
        return _redis.single_reply(await self._commands([args], "", timeout))

    async def pipeline(self, commands: Iterable[_redis.Command], *, transaction: bool = False,
                       raise_on_error: bool = True, timeout: float | None = None) -> list[Any]:
        """Sends several commands on the held connection; see
        DatabasePool.pipeline. A transaction whose WATCHed keys changed
        raises WatchError."""
        replies = await self._commands(commands, "MULTI" if transaction else "", timeout)
        return _redis.pipeline_replies(replies, raise_on_error)

    async def _commands(self, commands: Iterable[_redis.Command], mode: str,
                        timeout: float | None) -> Any:
        cmds, _ = _redis.command_list(commands, None)
        req = await self._run(_native.OP_COMMAND, mode, cmds, many=_redis.BIND_COMMANDS,
                              timeout=timeout)
        return req.reply()

    async def __aenter__(self) -> Transaction:
        req = await self._pool._submit(
            self._pool_id, _native.OP_LEASE, readonly=self._readonly, timeout=self._timeout
        )
        self._taken(req.take_lease())
        if self._session_only:
            return self
        try:
            await self._run(_native.OP_BEGIN, self._begin)
        except BaseException:
            self._release()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._session_only:
                pass  # the release resets the session (UNWATCH, DISCARD)
            elif exc_type is None:
                await self._run(_native.OP_COMMIT)
            else:
                await self._run(_native.OP_ROLLBACK)
        finally:
            self._release()

    def _taken(self, lease: _native.Lease) -> None:
        self._lease = lease
        self._leak = self._pool._lease_taken(self._pool_id, lease)

    def _release(self) -> None:
        lease, self._lease = self._lease, None
        leak, self._leak = self._leak, None
        if lease is not None:
            lease.release()  # rolls back anything left open
        self._pool._lease_returned(self._pool_id, leak)


class DatabasePool(PoolRegistry):
    """Named database pools for asyncio code; queries return Polars DataFrames.

    >>> pool = DatabasePool()
    >>> await pool.create_pool("local", url="sqlite:///app.db")
    >>> df = await pool.query("local", "SELECT * FROM users WHERE id = ?", [1])
    """

    def __init__(self) -> None:
        super().__init__()
        self._completions: _Completions | None = None

    # ---- plumbing ----

    def _loop_completions(self) -> _Completions:
        loop = asyncio.get_running_loop()
        if self._completions is None:
            self._completions = _Completions(loop)
        elif self._completions.loop is not loop:
            raise RuntimeError("a DatabasePool is bound to the event loop that first used it")
        return self._completions

    async def _submit(
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
        completions = self._loop_completions()
        fut = completions.loop.create_future()
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
            queue=completions.queue,
            future=fut,
            engine=self._engine(pool_id),
            readonly=readonly,
            timeout=call_timeout(timeout),
        )
        if watch is None:
            return await _finish(req)
        try:
            await _finish(req)
        except BaseException:
            self._slow_done(watch, req, op, sql, params, started, None, True)
            raise
        self._slow_done(watch, req, op, sql, params, started, None, False)
        return req

    # ---- pools ----

    async def create_pool(
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
        """Creates the pool ``pool_id`` and opens its first ``min_size`` connections.

        Give either ``db_type`` with connection keywords or a ``url``
        (``sqlite:///path.db``, ``sqlite:///:memory:``). Pool options:
        ``min_size``, ``max_size``, ``max_waiting``, ``acquire_timeout``,
        ``idle_timeout``, ``max_lifetime`` (seconds), ``lifetime_jitter``,
        ``validate_after``; other keywords are engine settings.

        Several endpoints of one database (a primary and its replicas):
        ``endpoints=[url1, url2, ...]`` (URLs or dicts of settings), a
        multi-host URL ``postgresql://h1:p1,h2:p2/db`` or ``host="h1,h2"``.
        Each endpoint gets its own connections (sizes are per endpoint) and
        its role is probed; writes go to the primary. Options:
        ``read_from`` ("primary", "replicas", "any"), ``balance``
        ("round_robin", "least_busy"), ``failover_timeout``,
        ``probe_interval`` and ``max_replica_lag`` (seconds).

        Deadlines (seconds; docs/timeouts.md): ``query_timeout`` (every
        call's default deadline, none unless set), ``connect_timeout`` (10)
        and ``cancel_grace`` (2: how long a cancelled statement may take to
        stop before its connection is discarded).

        Alerts and forensics (docs/observability.md): ``alerts`` (a list of
        rules such as ``{"rule": "saturation", "threshold": 0.9, "for": 30}``),
        ``on_alert`` (called with each event, on the alerts thread),
        ``alert_interval`` (seconds between evaluations, 1),
        ``leak_detection_threshold`` and ``slow_query_threshold`` (seconds),
        ``log_parameters`` (False: the slow-query log never shows parameters).
        """
        model = keyword_model(pool_id, db_type, host, port, database, username, password, url,
                              endpoints, **pool_options)
        pool_options, watch = split_watch_options(pool_options)
        engine, settings, options = pool_arguments(
            db_type, host, port, database, username, password, url, pool_options, endpoints
        )
        n = await asyncio.to_thread(self._create_native, pool_id, engine, settings, options)
        self._registered(pool_id, engine, n, watch, model)

    async def close_pool(self, pool_id: str, *, timeout: float | None = None) -> None:
        """Closes one pool: waiting calls fail with PoolClosed, running
        statements are cancelled (their callers get PoolClosed), and the
        pool's connections close. Waits up to ``timeout`` seconds (default
        10) for statements to stop; any still stuck in the engine then is
        abandoned (logged). The event loop keeps running meanwhile."""
        self._engine(pool_id)
        limit = close_timeout(timeout)
        manager = self._manager()
        self._forget(pool_id)
        if not await asyncio.to_thread(manager.close_pool, pool_id, limit):
            warn_abandoned(f"pool {pool_id!r}", limit)

    async def close(self, *, timeout: float | None = None) -> None:
        """Closes every pool as close_pool does, within one ``timeout``
        (default 10 s), and stops the worker threads. Idempotent."""
        limit = close_timeout(timeout)
        manager, self._native = self._native, None
        if manager is None:
            return
        self._close_servers()
        self._forget()
        if not await asyncio.to_thread(manager.close, limit):
            warn_abandoned("the DatabasePool", limit)
        if self._completions is not None:
            self._completions.close()

    # ---- configuration (docs/configuration.md) ----

    @classmethod
    async def from_config(cls, source: ConfigSource, *, env: bool = False) -> DatabasePool:
        """A DatabasePool with every pool of a configuration created:
        ``pool = await DatabasePool.from_config("db.toml")`` (a TOML file, a
        dict ``{"pools": {"orders": {"url": ..., "max_size": 10}}}`` or a
        Config). ``env=True`` lets DB_POOL_<POOL>_<KEY> variables override
        it. The whole configuration is checked first (ConfigurationError
        lists every problem, nothing connects); a pool that then fails to
        open closes those already made."""
        config = await asyncio.to_thread(load_config, source, env=env)
        return await cls._from_model(config)

    @classmethod
    async def from_env(cls, environ: Mapping[str, str] | None = None) -> DatabasePool:
        """A DatabasePool with the pools the environment names (DATABASE_URL
        is the pool "default"; DB_POOL_<POOL>_URL, DB_POOL_<POOL>_<KEY>)."""
        config = await asyncio.to_thread(config_from_env, environ)
        return await cls._from_model(config)

    async def reload(self, source: ConfigSource, *, env: bool = False,
                     timeout: float | None = None) -> ReloadReport:
        """Applies a new configuration (a TOML path, a dict or a Config, as
        from_config takes) to the running pools as a diff, and returns what
        changed. Pools added are created, pools removed are closed within
        ``timeout`` (their running statements finish or are cancelled as
        close_pool does), and pools changed are changed in place without
        cutting any statement short: sizes and timeouts apply to new work,
        endpoints added are probed before they take work, endpoints removed
        and connections opened with replaced settings (a rotated password)
        close as they come back to the pool. A configuration with any
        problem, or a change that cannot apply to a running pool (its
        engine), raises ConfigurationError and changes nothing; a pool that
        fails to open undoes the reload. Logged at INFO, and recorded in the
        pools' events, without secrets (docs/configuration.md, "Reload")."""
        config = await asyncio.to_thread(load_config, source, env=env)
        limit = close_timeout(timeout)
        return await asyncio.to_thread(reload, self, config, limit)

    @classmethod
    async def _from_model(cls, config: Config) -> DatabasePool:
        pool = cls()
        try:
            for name, pool_config in config.pools.items():
                engine, settings, options, watch = native_arguments(pool_config)
                n = await asyncio.to_thread(pool._create_native, name, engine, settings, options)
                pool._registered(name, engine, n, watch, pool_config)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def __aenter__(self) -> DatabasePool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- statements ----

    async def query(
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
        """Runs a query and returns all its rows as a DataFrame.

        Parameters use the engine's placeholders (SQLite: ``?`` with a
        sequence, ``:name`` with a dict; PostgreSQL: ``$1``, ``$2``, ...)
        and are bound by the engine. ``copy`` chooses PostgreSQL's bulk path
        (COPY ... TO STDOUT (FORMAT binary)): "auto" uses it for
        parameterless SELECT/WITH/VALUES/TABLE statements.

        With several endpoints a query is a read and follows ``read_from``;
        ``readonly=False`` sends it to the primary (INSERT ... RETURNING),
        ``readonly=True`` also lets it run again on another endpoint if its
        connection breaks.

        ``timeout`` (seconds) is this call's deadline, the wait for a
        connection included; when it passes the statement is cancelled on
        the server and QueryTimeout raised (default: the pool's
        ``query_timeout``). Every method takes it.

        ``partition_on="col", partitions=N`` reads the rows as N range
        queries on ``col`` (integer, float, decimal, date or datetime) run
        at once on N pooled connections, and stacks their frames without
        copying (``rechunk=True`` makes each column one contiguous chunk).
        The ranges split MIN..MAX of the column, or ``partition_range=(low,
        high)``; the first and last are open-ended and NULLs go to the
        first, so every row comes back once, in no particular order.
        ``timeout`` bounds the whole call. See docs/partitioned_reads.md.

        Redis pools read keys as rows: ``sql`` is HGETALL, HMGET, MGET or
        ZRANGE, ``pattern`` the keys to SCAN for, ``schema`` the fields and
        their dtypes, ``on_error="null"`` turns values that do not parse
        into nulls (docs/redis.md).
        """
        if self._engine(pool_id) == "redis":
            return await self._submit_frame(
                pool_id, *_redis.scan_spec(sql, pattern, schema, on_error, scan_count),
                timeout=timeout)
        _redis.refuse_sql_options(self._engine(pool_id), pattern=pattern, schema=schema)
        part = partition_options(partition_on, partitions, partition_range)
        if part is not None:
            return await query_async(
                self, pool_id, sql, params, part, copy=copy_mode(copy),
                readonly=readonly_flag(readonly), timeout=timeout, rechunk=rechunk)
        req = await self._submit(
            pool_id,
            _native.OP_QUERY,
            sql,
            params,
            copy=copy_mode(copy),
            readonly=readonly_flag(readonly),
            timeout=timeout,
        )
        return frame(req).rechunk() if rechunk else frame(req)

    async def _submit_frame(self, pool_id: str, sql: str, params: list[Any], *,
                            timeout: float | None) -> pl.DataFrame:
        req = await self._submit(pool_id, _native.OP_QUERY, sql, params, readonly=1,
                                 timeout=timeout)
        return frame(req)

    async def command(self, pool_id: str, *args: Any, readonly: bool | None = None,
                      timeout: float | None = None) -> Any:
        """Runs one command on a key-value pool (Redis) and returns its reply:
        bytes, int, str for a status such as "OK", None, or a list; an error
        reply raises ResponseError (WrongTypeError, ReadOnlyError, ...).

        ``await pool.command("cache", "SET", "k", b"v", "EX", 60)``.
        Commands that only read (GET, HGETALL, ...) follow ``read_from``
        unless ``readonly`` says otherwise. See docs/redis.md."""
        return _redis.single_reply(await self._commands(pool_id, [args], "", readonly, timeout))

    async def pipeline(self, pool_id: str, commands: Iterable[_redis.Command], *,
                       transaction: bool = False, raise_on_error: bool = True,
                       readonly: bool | None = None, timeout: float | None = None
                       ) -> list[Any]:
        """Sends several commands in one round trip and returns their replies
        in order. ``transaction=True`` wraps them in MULTI/EXEC (all run, or
        none if one is refused while queueing). After every command ran, the
        first error reply is raised unless ``raise_on_error=False``, which
        leaves the ResponseError in its slot instead."""
        replies = await self._commands(pool_id, commands, "MULTI" if transaction else "",
                                       readonly, timeout)
        return _redis.pipeline_replies(replies, raise_on_error)

    async def _commands(self, pool_id: str, commands: Iterable[_redis.Command], mode: str,
                        readonly: bool | None, timeout: float | None) -> Any:
        cmds, route = _redis.command_list(commands, readonly)
        req = await self._submit(pool_id, _native.OP_COMMAND, mode, cmds,
                                     many=_redis.BIND_COMMANDS, readonly=route, timeout=timeout)
        return req.reply()

    async def execute(
        self, pool_id: str, sql: str, params: Params = None, *, timeout: float | None = None
    ) -> int:
        """Runs a statement and returns the number of rows it changed.

        Without parameters the SQL may hold several statements (a script).
        """
        req = await self._submit(pool_id, _native.OP_EXECUTE, sql, params, timeout=timeout)
        return req.rows_affected()

    async def execute_many(
        self,
        pool_id: str,
        sql: str,
        rows: Iterable[Params],
        *,
        timeout: float | None = None,
    ) -> int:
        """Runs one statement per parameter row, all or nothing; returns rows changed."""
        req = await self._submit(
            pool_id, _native.OP_EXECUTE_MANY, sql, rows, many=True, timeout=timeout
        )
        return req.rows_affected()

    async def write_frame(
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
        """Appends the rows of ``frame`` to ``table``, all or nothing; returns
        the rows written.

        ``frame`` is a polars DataFrame, a LazyFrame (collected) or a dict of
        columns; its column names are the table's columns. ``table`` may be
        schema-qualified and is quoted for you. With ``create=True`` a
        missing table is created from the frame's schema, and an existing
        one is appended to (``if_exists="append"``), refused (``"fail"``)
        or dropped and created anew (``"replace"``), all in one transaction.
        The bulk path is the engine's own (SQLite: one prepared INSERT per
        row in a savepoint; PostgreSQL: COPY ... FROM STDIN; MSSQL: bulk copy
        into a staging table, then one INSERT ... SELECT). Struct columns go
        as JSON text, List columns as arrays (PostgreSQL) or JSON text.

        Redis pools write each row as the key ``prefix`` + its
        ``key_column`` value: a hash of the other columns (``kind="hash"``)
        or a string of the one other column (``kind="string"``), with an
        optional ``ttl`` in seconds; not all or nothing (docs/redis.md).
        """
        engine = self._engine(pool_id)
        if engine == "redis":
            target, options = _redis.write_options(key_column, kind, ttl, prefix, table)
            rows = _redis.frame_rows(frame, key_column)
            req = await self._submit(pool_id, _native.OP_WRITE_FRAME, target, options,
                                     input=rows, timeout=timeout)
            return req.rows_affected()
        _redis.refuse_sql_options(engine, key_column=key_column, prefix=prefix, ttl=ttl)
        if table is None:
            raise TypeError("write_frame() needs the table to write to")
        check_if_exists(create, if_exists)
        if create:
            async with self.transaction(pool_id, timeout=timeout) as tx:
                return await tx.write_frame(frame, table, create=True, if_exists=if_exists)
        rows, _ = prepare_frame(frame, self._engine(pool_id))
        req = await self._submit(pool_id, _native.OP_WRITE_FRAME, table, input=rows, timeout=timeout)
        return req.rows_affected()

    def transaction(
        self,
        pool_id: str,
        begin: str = "",
        *,
        isolation: str | None = None,
        readonly: bool = False,
        timeout: float | None = None,
    ) -> Transaction:
        """A transaction on one connection, as an async context manager.

        ``begin`` is the engine's transaction mode (SQLite: "", "DEFERRED",
        "IMMEDIATE", "EXCLUSIVE"). PostgreSQL takes ``isolation`` ("read
        committed", "repeatable read", "serializable") and ``readonly``;
        MSSQL takes ``isolation`` (also "snapshot"). ``timeout`` bounds
        each statement (BEGIN, COMMIT and ROLLBACK included) that does not
        give its own.
        """
        options = begin_options(self._engine(pool_id), begin, isolation, readonly)
        return Transaction(self, pool_id, options, readonly_flag(readonly or None), timeout)

    async def stream(
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
    ) -> AsyncIterator[pl.DataFrame]:
        """Yields the rows of a query as DataFrames of at most ``batch_rows`` rows.

        Only one batch is held in memory at a time; the connection stays
        checked out until the iteration ends or the iterator is closed.
        A stream is a read (it follows ``read_from``) unless ``readonly=False``.
        ``timeout`` bounds the whole stream (each batch gets what is left;
        time the caller spends between batches counts too); the pool's
        ``query_timeout`` bounds each batch.

        ``partition_on``, ``partitions`` and ``partition_range`` split it as
        query() does: N streams on N connections, whose batches are yielded
        as they arrive, interleaved (at most two batches per partition held).

        Redis pools stream a tabular read (see query()) the same way.
        """
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        if self._engine(pool_id) == "redis":
            sql, params = _redis.scan_spec(sql, pattern, schema, on_error, scan_count)
        else:
            _redis.refuse_sql_options(self._engine(pool_id), pattern=pattern, schema=schema)
        copy_mode(copy)  # a bad value fails before a connection is taken
        part = partition_options(partition_on, partitions, partition_range)
        if part is not None:
            parts = stream_async(self, pool_id, sql, params, part, batch_rows=batch_rows,
                                 copy=copy, readonly=readonly, timeout=timeout)
            try:
                async for df in parts:
                    yield df
            finally:
                await parts.aclose()
            return
        deadline = StreamDeadline(timeout)
        tx = Transaction(self, pool_id, "")
        req = await self._submit(
            pool_id, _native.OP_LEASE, readonly=int(readonly), timeout=deadline.left()
        )
        tx._taken(req.take_lease())
        cursor_open = False
        try:
            await tx._run(
                _native.OP_CURSOR_OPEN, sql, params, copy=copy_mode(copy), timeout=deadline.left()
            )
            cursor_open = True
            while True:
                left = deadline.left()  # may raise: the cursor is open, closed below
                try:
                    req = await tx._run(_native.OP_CURSOR_FETCH, batch_rows=batch_rows,
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
                    await tx._run(_native.OP_CURSOR_CLOSE)
            finally:
                tx._release()
