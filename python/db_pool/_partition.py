"""Partitioned reads: ``query(..., partition_on="col", partitions=N)`` runs
the query as N range queries on N pooled connections at once and stacks
their frames (docs/partitioned_reads.md).

Each partition wraps the caller's SQL as a derived table and keeps the rows
of one range of the column:

    SELECT * FROM (<sql>
    ) AS dbp_part WHERE "col" < b1 OR "col" IS NULL        -- the first
    ... WHERE "col" >= b1 AND "col" < b2                   -- the middle ones
    ... WHERE "col" >= b(N-1)                              -- the last

The first and last ranges are open-ended, so the partitions cover every
value whatever the bounds are: the bounds (from MIN/MAX, or the caller's
partition_range) decide only how evenly the rows spread, never which rows
come back. Bounds are written as literals, not bound parameters: PostgreSQL
reads parameterless queries through COPY, and the caller's parameters keep
their own placeholder style (positional or named) untouched.

The plan (what to look up, then the statements) is shared; the async and
the blocking runners below only differ in how they wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import math
import re
import select
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncGenerator, Callable, Generator, Iterator, cast

import polars as pl

from . import _native
from ._common import StreamDeadline, copy_mode, frame, log_notices
from ._frames import quote_identifier
from .errors import DataError, NotSupportedError, ProgrammingError

if TYPE_CHECKING:
    from ._async import DatabasePool
    from ._sync import SyncDatabasePool

ALIAS = "dbp_part"
#: Longest single wait of the blocking runners for their partitions.
WAIT_SLICE_MS = 200

#: How each engine writes a date, a naive and an aware timestamp bound. SQLite
#: keeps them as ISO 8601 text (what db_pool binds), compared as text.
_TEMPORAL_LITERALS = {
    "postgresql": ("CAST('{}' AS date)", "CAST('{}' AS timestamp)", "CAST('{}' AS timestamptz)"),
    "mssql": ("CAST('{}' AS date)", "CAST('{}' AS datetime2(7))",
              "CAST('{}' AS datetimeoffset(7))"),
    "sqlite": ("'{}'", "'{}'", "'{}'"),
}

_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND = dt.timedelta(microseconds=1)

#: ISO 8601 text of a date or timestamp, as SQLite (and the TDS test server,
#: whose MIN/MAX are untyped) return them.
_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?)?"
    r"\s*(Z|[+-]\d\d:?\d\d)?\s*"
)


#: partition_range=: (low, high), two numbers, dates or datetimes.
PartitionRange = tuple[Any, Any]


@dataclass(frozen=True)
class Partitioning:
    column: str
    partitions: int
    range: tuple[Any, Any] | None


def options(
    partition_on: str | None, partitions: int | None, partition_range: Any
) -> Partitioning | None:
    """The checked partitioning options; None for a plain read. Refuses what
    is wrong before anything runs."""
    if partition_on is None:
        if partitions is not None or partition_range is not None:
            raise ProgrammingError("partitions= and partition_range= need partition_on='column'")
        return None
    if not isinstance(partition_on, str) or not partition_on or "\0" in partition_on:
        raise ProgrammingError(f"partition_on must be a column name, not {partition_on!r}")
    if partitions is None:
        raise ProgrammingError("partition_on= needs partitions=N (the number of range queries)")
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ProgrammingError(f"partitions must be an integer of at least 1, not {partitions!r}")
    if partition_range is not None:
        partition_range = _checked_range(partition_range)
    return Partitioning(partition_on, partitions, partition_range)


def refuse_in_transaction(partition_on: str | None, partitions: int | None,
                          partition_range: Any) -> None:
    if partition_on is not None or partitions is not None or partition_range is not None:
        raise ProgrammingError(
            "a partitioned read runs on several connections at once, so it cannot run inside "
            "a transaction (one connection): use pool.query(..., partition_on=...) outside it"
        )


def _kind_of_value(v: Any) -> str | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, decimal.Decimal):
        return "decimal"
    if isinstance(v, dt.datetime):
        return "datetime"
    if isinstance(v, dt.date):
        return "date"
    return None


def _checked_range(r: Any) -> tuple[Any, Any]:
    if not isinstance(r, (tuple, list)) or len(r) != 2:
        raise ProgrammingError(f"partition_range must be a (low, high) pair, not {r!r}")
    lo, hi = r
    kinds = {_kind_of_value(lo), _kind_of_value(hi)}
    if None in kinds or (len(kinds) > 1 and not kinds <= {"int", "float", "decimal"}):
        raise ProgrammingError(
            "partition_range takes two numbers, two dates or two datetimes, "
            f"not {type(lo).__name__} and {type(hi).__name__}"
        )
    if "float" in kinds and "decimal" in kinds:
        raise ProgrammingError("partition_range: give a float and a Decimal as the same type")
    for v in (lo, hi):
        if (isinstance(v, float) and not math.isfinite(v)) or (
                isinstance(v, decimal.Decimal) and not v.is_finite()):
            raise ProgrammingError(f"partition_range must be finite, not {r!r}")
    if kinds == {"datetime"} and (lo.utcoffset() is None) != (hi.utcoffset() is None):
        raise ProgrammingError("partition_range: both datetimes naive, or both aware")
    if lo > hi:
        raise ProgrammingError(f"partition_range: low {lo!r} is above high {hi!r}")
    return lo, hi


# ---- the plan ------------------------------------------------------------------


def _body(sql: str) -> str:
    """The caller's statement as a derived table's body: without the
    semicolon it may end with. The ")" that follows goes on its own line, so
    a trailing -- comment cannot swallow it."""
    body = sql.rstrip()
    while body.endswith(";"):
        body = body[:-1].rstrip()
    return body


def _kind_of_dtype(dtype: Any) -> tuple[str | None, bool]:
    """(kind, aware) of a column dtype; kind None: no type yet (a SQLite
    expression with no rows), "?" for a type that cannot be partitioned."""
    if dtype == pl.Null:
        return None, False
    if dtype.is_integer():
        return "int", False
    if dtype.is_float():
        return "float", False
    if isinstance(dtype, pl.Decimal):
        return "decimal", False
    if dtype == pl.Date:
        return "date", False
    if isinstance(dtype, pl.Datetime):
        return "datetime", dtype.time_zone is not None
    return "?", False


def _column_kind(probe: pl.DataFrame, column: str) -> tuple[str | None, bool]:
    if column not in probe.columns:
        raise ProgrammingError(
            f"partition_on={column!r} is not a column of the query's result "
            f"(its columns: {', '.join(probe.columns)})"
        )
    kind, aware = _kind_of_dtype(probe.schema[column])
    if kind == "?":
        raise ProgrammingError(
            f"partition column {column!r} is {probe.schema[column]}: partitioned reads split "
            "integer, float, decimal, date and datetime columns only"
        )
    return kind, aware


def _as_kind(value: Any, kind: str, aware: bool, column: str) -> Any:
    """A MIN/MAX (or partition_range) value as the column's kind. SQLite and
    the TDS test server return MIN/MAX of a date column as text."""
    try:
        if kind == "int" and not isinstance(value, (bool, float)):
            return int(value)
        if kind == "float" and not isinstance(value, bool):
            return float(value)
        if kind == "decimal" and not isinstance(value, bool):
            return decimal.Decimal(repr(value) if isinstance(value, float) else str(value))
        if kind in ("date", "datetime"):
            return _as_temporal(value, kind, aware)
    except (ValueError, TypeError, ArithmeticError):
        pass
    raise DataError(f"partition column {column!r}: cannot read {value!r} as a {kind} bound")


def _as_temporal(value: Any, kind: str, aware: bool) -> Any:
    if isinstance(value, str):
        m = _ISO.fullmatch(value)
        if m is None:
            raise ValueError(value)
        y, mo, d, h, mi, s, frac, off = m.groups()
        if kind == "date":
            return dt.date(int(y), int(mo), int(d))
        us = int((frac or "0")[:6].ljust(6, "0"))
        value = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), us)
        if off:
            digits = off[1:].replace(":", "")
            shift = dt.timedelta(hours=int(digits[:2] or 0), minutes=int(digits[2:] or 0))
            value = value.replace(tzinfo=dt.timezone(-shift if off[0] == "-" else shift))
    if kind == "date":
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise TypeError(value)
        return value
    if not isinstance(value, dt.datetime):
        raise TypeError(value)
    if value.utcoffset() is not None:
        value = value.astimezone(dt.timezone.utc)
        return value if aware else value.replace(tzinfo=None)
    return value.replace(tzinfo=dt.timezone.utc) if aware else value


def _split(kind: str, lo: Any, hi: Any, n: int) -> list[Any]:
    """The N-1 inner bounds between lo and hi, strictly increasing and above
    lo (fewer when the range has fewer distinct values than N)."""
    if kind == "date":
        days = _split("int", lo.toordinal(), hi.toordinal(), n)
        return [dt.date.fromordinal(d) for d in days]
    if kind == "datetime":
        epoch = _EPOCH if lo.tzinfo is None else _EPOCH_UTC
        ticks = _split("int", (lo - epoch) // _MICROSECOND, (hi - epoch) // _MICROSECOND, n)
        return [epoch + t * _MICROSECOND for t in ticks]
    if kind == "int":
        span = hi - lo + 1  # integers in [lo, hi]
        points = [lo + span * i // n for i in range(1, n)]
    elif kind == "float":
        points = [lo * (1 - i / n) + hi * (i / n) for i in range(1, n)]
    else:  # decimal: rounded down to the scale of the bounds
        exp = min(int(lo.as_tuple().exponent), int(hi.as_tuple().exponent), 0)
        step = decimal.Decimal((0, (1,), exp))
        with decimal.localcontext() as ctx:
            ctx.prec = 80
            points = [(lo + (hi - lo) * i / n).quantize(step, decimal.ROUND_FLOOR)
                      for i in range(1, n)]
    out: list[Any] = []
    for p in points:
        if p > (out[-1] if out else lo):
            out.append(p)
    return out


def _literal(engine: str, kind: str, v: Any) -> str:
    if kind == "int":
        return str(v)
    if kind == "float":
        return repr(v)
    if kind == "decimal":
        return format(v, "f")
    forms = _TEMPORAL_LITERALS.get(engine)
    if forms is None:  # an engine added later: give it its row above
        raise NotSupportedError(f"partitioned reads on {engine} split numeric columns only")
    date_form, naive_form, aware_form = forms
    if kind == "date":
        return date_form.format(v.isoformat())
    return (naive_form if v.tzinfo is None else aware_form).format(v.isoformat(sep=" "))


_KIND_NAMES = {"int": "an integer", "float": "a float", "decimal": "a decimal", "date": "a date",
               "datetime": "a datetime"}


def _fit_range(r: PartitionRange, kind: str | None, aware: bool,
               column: str) -> tuple[str, bool, Any, Any]:
    """(kind, aware, low, high) of the caller's partition_range, checked
    against the column's kind (None: a SQLite expression with no type yet,
    which the range's own kind stands for)."""
    lo, hi = r
    given = {_kind_of_value(lo), _kind_of_value(hi)}
    if kind is None:
        kind = next(k for k in ("datetime", "date", "float", "decimal", "int") if k in given)
        aware = kind == "datetime" and lo.utcoffset() is not None
    fits = {"int": {"int"}, "float": {"int", "float"}, "decimal": {"int", "float", "decimal"},
            "date": {"date"}, "datetime": {"datetime"}}[kind]
    if not given <= fits:
        raise ProgrammingError(
            f"partition_range: {column!r} is {_KIND_NAMES[kind]} column, the range is "
            f"{type(lo).__name__} to {type(hi).__name__}")
    if kind == "datetime" and (lo.utcoffset() is not None) != aware:
        raise ProgrammingError(
            f"partition_range: {column!r} is a {'zoned' if aware else 'naive'} datetime "
            f"column; give {'aware' if aware else 'naive'} datetimes")
    return kind, aware, lo, hi


Plan = Generator[str, pl.DataFrame, list[str]]


def plan(engine: str, sql: str, part: Partitioning) -> Plan:
    """The statements of a partitioned read, one per partition. First yields
    each look-up it needs (the result's columns, then MIN/MAX unless
    partition_range is given) and is sent its rows. One partition, an empty
    result or a column of NULLs only: the caller's statement alone."""
    body = _body(sql)
    derived = f"({body}\n) AS {ALIAS}"
    col = quote_identifier(engine, part.column)
    kind, aware = _column_kind((yield f"SELECT * FROM {derived} WHERE 1 = 0"), part.column)
    if part.range is not None:
        kind, aware, lo, hi = _fit_range(part.range, kind, aware, part.column)
    elif part.partitions > 1:
        found = yield f"SELECT MIN({col}) AS dbp_lo, MAX({col}) AS dbp_hi FROM {derived}"
        lo, hi = found.row(0)
        if lo is None or hi is None:
            return [sql]  # no rows, or NULL in every row
        if kind is None:  # SQLite: an expression; its values decide
            kind, aware = _kind_of_dtype(found.schema["dbp_lo"])
            if kind in (None, "?"):
                _column_kind(found.rename({"dbp_lo": part.column}), part.column)
    if part.partitions == 1 or kind is None:
        return [sql]
    lo, hi = (_as_kind(v, kind, aware, part.column) for v in (lo, hi))
    if kind == "float" and not (math.isfinite(lo) and math.isfinite(hi)):
        raise DataError(
            f"partition column {part.column!r} holds NaN or infinity (MIN {lo!r}, MAX {hi!r}): "
            "give partition_range=(low, high) to split on")
    bounds = _split(kind, lo, hi, part.partitions)
    if not bounds:
        return [sql]
    lits = [_literal(engine, kind, b) for b in bounds]
    where = [f"{col} < {lits[0]} OR {col} IS NULL"]
    where += [f"{col} >= {a} AND {col} < {b}" for a, b in zip(lits, lits[1:])]
    where.append(f"{col} >= {lits[-1]}")
    return [f"SELECT * FROM {derived} WHERE {w}" for w in where]


def concat(frames: list[pl.DataFrame], rechunk: bool) -> pl.DataFrame:
    """The partitions' frames stacked, their chunks kept unless ``rechunk``.
    A column that is Null in one partition (SQLite: an expression whose
    values there are all NULL) takes the type the others give it."""
    full = [f for f in frames if f.height] or frames[:1]
    types: dict[str, Any] = {}
    for f in full:
        for name, dtype in f.schema.items():
            if dtype != pl.Null:
                types.setdefault(name, dtype)
    full = [f.with_columns(pl.col(n).cast(types[n]) for n, t in f.schema.items()
                           if t == pl.Null and n in types) for f in full]
    try:
        return pl.concat(full, how="vertical", rechunk=rechunk)
    except pl.exceptions.SchemaError as exc:
        raise DataError(
            f"the partitions returned different column types ({exc}); give the columns one "
            "type in the SQL, e.g. with CAST") from None


def _run_plan(steps: Plan, run: Callable[[str], pl.DataFrame]) -> list[str]:
    try:
        sql = next(steps)
        while True:
            sql = steps.send(run(sql))
    except StopIteration as done:
        return list(done.value)


async def _run_plan_async(steps: Plan, run: Callable[[str], Any]) -> list[str]:
    try:
        sql = next(steps)
        while True:
            sql = steps.send(await run(sql))
    except StopIteration as done:
        return list(done.value)


# ---- asyncio -------------------------------------------------------------------


async def query_async(pool: DatabasePool, pool_id: str, sql: str, params: Any,
                      part: Partitioning, *, copy: int, readonly: int,
                      timeout: float | None, rechunk: bool) -> pl.DataFrame:
    """The partitions as concurrent tasks; the first error cancels the rest."""
    deadline = StreamDeadline(timeout, "the partitioned query")
    engine = pool._engine(pool_id)

    async def one(q: str) -> pl.DataFrame:
        req = await pool._submit(pool_id, _native.OP_QUERY, q, params, copy=copy,
                                 readonly=readonly, timeout=deadline.left())
        return frame(req)

    statements = await _run_plan_async(plan(engine, sql, part), one)
    tasks = [asyncio.ensure_future(one(q)) for q in statements]
    try:
        frames = await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()  # cancels its statement too
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return concat(list(frames), rechunk)


async def stream_async(pool: DatabasePool, pool_id: str, sql: str, params: Any,
                       part: Partitioning, *, batch_rows: int, copy: Any, readonly: bool,
                       timeout: float | None) -> AsyncGenerator[pl.DataFrame, None]:
    """One stream() per partition; batches are yielded as they arrive. Each
    stream is asked for its next batch when its last one is handed on, so
    at most one batch per partition waits here."""
    deadline = StreamDeadline(timeout)

    async def one(q: str) -> pl.DataFrame:
        req = await pool._submit(pool_id, _native.OP_QUERY, q, params, copy=copy_mode(copy),
                                 readonly=int(readonly), timeout=deadline.left())
        return frame(req)

    statements = await _run_plan_async(plan(pool._engine(pool_id), sql, part), one)
    left = deadline.left()
    streams = [cast(AsyncGenerator[pl.DataFrame, None], pool.stream(
        pool_id, q, params, batch_rows=batch_rows, copy=copy, readonly=readonly, timeout=left))
        for q in statements]
    waiting: dict[asyncio.Future[pl.DataFrame], AsyncGenerator[pl.DataFrame, None]] = {
        asyncio.ensure_future(s.__anext__()): s for s in streams}
    try:
        while waiting:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                stream = waiting.pop(task)
                try:
                    df = task.result()
                except StopAsyncIteration:
                    continue
                waiting[asyncio.ensure_future(stream.__anext__())] = stream
                yield df
    finally:
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        for s in streams:
            try:
                await s.aclose()
            except Exception:  # noqa: BLE001 - the connection is reset on release anyway
                pass


# ---- blocking ------------------------------------------------------------------


def _wait_any(queue: _native.CompletionQueue) -> list[_native.Request]:
    """Blocks (GIL released, Ctrl-C honoured) until requests submitted with
    ``queue`` finished; returns them. Each request carries its own deadline;
    the wait itself is sliced like Request.wait's, never unbounded."""
    poller = select.poll()
    poller.register(queue.fileno(), select.POLLIN)
    while True:
        done = queue.drain()
        if done:
            return done
        poller.poll(WAIT_SLICE_MS)


def _stop(reqs: list[_native.Request | None]) -> None:
    """Cancels the requests still running and waits until each has stopped
    (the janitor answers a cancel within the pool's cancel_grace)."""
    for r in reqs:
        if r is not None:
            r.cancel()
    for r in reqs:
        if r is not None:
            r.wait()


def query_sync(pool: SyncDatabasePool, pool_id: str, sql: str, params: Any,
               part: Partitioning, *, copy: int, readonly: int, timeout: float | None,
               rechunk: bool) -> pl.DataFrame:
    """The partitions submitted at once and collected as they finish; the
    first error cancels the rest."""
    deadline = StreamDeadline(timeout, "the partitioned query")
    engine = pool._engine(pool_id)
    statements = _run_plan(plan(engine, sql, part), lambda q: frame(pool._submit(
        pool_id, _native.OP_QUERY, q, params, copy=copy, readonly=readonly,
        timeout=deadline.left())))
    queue = _native.CompletionQueue()
    reqs: list[_native.Request | None] = []
    frames: list[pl.DataFrame | None] = [None] * len(statements)
    try:
        for i, q in enumerate(statements):
            reqs.append(pool._manager().submit(
                pool_id, _native.OP_QUERY, q, params, copy=copy, queue=queue, future=i,
                engine=engine, readonly=readonly, timeout=deadline.left()))
        while any(f is None for f in frames):
            for req in _wait_any(queue):
                reqs[req.future] = None
                log_notices(req)
                frames[req.future] = frame(req)
    except BaseException:
        _stop(reqs)
        raise
    return concat([f for f in frames if f is not None], rechunk)


class _Reader:
    """One partition of a blocking partitioned stream: its lease, and the
    request in flight on it (stage: "lease", "open", "fetch")."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.stage = "lease"
        self.lease: _native.Lease | None = None
        self.req: _native.Request | None = None

    def release(self) -> None:
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.release()  # a worker closes a cursor left open


def stream_sync(pool: SyncDatabasePool, pool_id: str, sql: str, params: Any,
                part: Partitioning, *, batch_rows: int, copy: int, readonly: bool,
                timeout: float | None) -> Iterator[pl.DataFrame]:
    """Every partition's cursor runs at once on its own lease; batches are
    yielded as they arrive. A partition's next batch is asked for as its
    last one is handed on, so at most two of its batches are held."""
    deadline = StreamDeadline(timeout)
    engine = pool._engine(pool_id)
    statements = _run_plan(plan(engine, sql, part), lambda q: frame(pool._submit(
        pool_id, _native.OP_QUERY, q, params, copy=copy, readonly=int(readonly),
        timeout=deadline.left())))
    queue = _native.CompletionQueue()
    readers = [_Reader(q) for q in statements]
    try:
        for r in readers:
            r.req = pool._manager().submit(pool_id, _native.OP_LEASE, queue=queue, future=r,
                                           engine=engine, readonly=int(readonly),
                                           timeout=deadline.left())
        while any(r.stage != "done" for r in readers):
            for req in _wait_any(queue):
                r = req.future
                r.req = None
                log_notices(req)
                req.check()
                if r.stage == "lease":
                    r.lease, r.stage = req.take_lease(), "open"
                    r.req = r.lease.submit(_native.OP_CURSOR_OPEN, r.sql, params, copy=copy,
                                           queue=queue, future=r, timeout=deadline.left())
                    continue
                df = frame(req) if r.stage == "fetch" else None
                if r.stage == "fetch" and req.cursor_done:
                    r.stage = "done"
                    r.release()
                else:
                    assert r.lease is not None
                    r.stage = "fetch"
                    r.req = r.lease.submit(_native.OP_CURSOR_FETCH, batch_rows=batch_rows,
                                           queue=queue, future=r, timeout=deadline.left())
                if df is not None and df.height:
                    yield df
    finally:
        _stop([r.req for r in readers])
        for r in readers:
            if r.stage == "lease" and r.req is not None and r.req.done():
                try:
                    r.lease = r.req.take_lease()  # won the race with its cancel
                except Exception:  # noqa: BLE001 - it failed: nothing to give back
                    pass
            r.release()
