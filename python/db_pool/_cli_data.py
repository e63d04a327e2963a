"""`db-pool query` and `db-pool load`: a query's rows printed or written to
a file, and a CSV or Parquet file bulk-loaded into a table through
write_frame.

On a terminal both show a progress line (rows and bytes): the query then
reads through stream() batch by batch, and the load writes the file in
slices, all in one transaction, so it is still all or nothing. Without a
terminal the query is one query() and the load one write_frame().
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import polars as pl

from . import _cli_output as out
from ._cli_base import EXIT_OK, UsageError, info
from ._cli_pools import for_pool, opened
from ._cli_progress import Progress
from ._frames import IfExists
from ._async import DatabasePool
from .errors import Error

#: Rows per batch of a read with a progress line.
READ_BATCH_ROWS = 65536
#: Rows per slice of a load with a progress line.
LOAD_SLICE_ROWS = 100_000
#: Rows pl.read_csv looks at to choose each column's type.
CSV_INFER_ROWS = 10_000

_INPUT_KINDS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


# ---- query ----------------------------------------------------------------------------


async def run_query(args: argparse.Namespace) -> int:
    fmt = out.choose_format(args.format, args.output)
    config, pool_id = for_pool(args, args.pool)
    progress = Progress("query", enabled=False if args.no_progress else None)
    async with opened(config) as pool:
        df = await read(pool, pool_id, args.sql, args.timeout, progress)
    out.write_frame(df, fmt, args.output, args.max_rows)
    if args.output is not None and args.output != "-":
        info(f"wrote {df.height:,} rows ({fmt}) to {args.output}")
    return EXIT_OK


async def read(pool: DatabasePool, pool_id: str, sql: str, timeout: float | None,
               progress: Progress) -> pl.DataFrame:
    """The query's rows: one query() call, or, when the progress line may
    show, stream() batches counted as they come and stacked."""
    if not progress.enabled:
        return await pool.query(pool_id, sql, timeout=timeout)
    batches = []
    with progress:
        async for batch in pool.stream(pool_id, sql, batch_rows=READ_BATCH_ROWS, timeout=timeout):
            batches.append(batch)
            progress.add(batch.height, batch.estimated_size())
    if batches:
        # relaxed: a batch of only NULLs may have typed a column less precisely
        return pl.concat(batches, how="vertical_relaxed", rechunk=False)
    return await _empty_result(pool, pool_id, sql, timeout)


async def _empty_result(pool: DatabasePool, pool_id: str, sql: str,
                        timeout: float | None) -> pl.DataFrame:
    """The columns of a query that streamed no rows (stream() yields no
    batch then), so the output is the same as query()'s: read again as a
    subquery limited to no rows, which never runs a second write (a write
    is refused in a subquery). Without it, a frame of no columns."""
    body = re.sub(r"[;\s]+\Z", "", sql)
    if pool._engine(pool_id) == "mssql":
        probe = f"SELECT TOP 0 * FROM (\n{body}\n) AS db_pool_q"
    else:
        probe = f"SELECT * FROM (\n{body}\n) AS db_pool_q LIMIT 0"
    try:
        return await pool.query(pool_id, probe, timeout=timeout)
    except Error:
        return pl.DataFrame()


# ---- load -----------------------------------------------------------------------------


def input_kind(path: str) -> str:
    """csv or parquet, from the file's extension; UsageError otherwise or
    when the file cannot be read."""
    kind = _INPUT_KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise UsageError(f"{path!r}: expected a .csv or .parquet file")
    if not os.path.isfile(path):
        raise UsageError(f"{path!r}: no such file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{path!r}: not readable")
    return kind


def read_input(path: str, kind: str) -> pl.DataFrame:
    """The file's rows. CSV columns get the types Polars infers from the
    first CSV_INFER_ROWS rows, ISO dates and times included."""
    if kind == "parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema_length=CSV_INFER_ROWS, try_parse_dates=True)


async def run_load(args: argparse.Namespace) -> int:
    kind = input_kind(args.file)
    mode: IfExists = args.mode
    create = bool(args.create) or mode != "append"  # fail / replace are about creating it
    df = read_input(args.file, kind)
    config, pool_id = for_pool(args, args.pool)
    progress = Progress("load", total_rows=df.height,
                        enabled=False if args.no_progress else None)
    async with opened(config) as pool:
        n = await load(pool, pool_id, args.table, df, create, mode, args.timeout, progress)
    print(f"{n:,} rows loaded into {args.table}", flush=True)
    return EXIT_OK


async def load(pool: DatabasePool, pool_id: str, table: str, df: pl.DataFrame, create: bool,
               mode: IfExists, timeout: float | None, progress: Progress,
               slice_rows: int = LOAD_SLICE_ROWS) -> int:
    """Writes every row of ``df`` into ``table``, all or nothing; returns the
    rows written. With the progress line: slices in one transaction (the
    first creates the table), counted as each is written."""
    if not progress.enabled or df.height <= slice_rows:
        n = await pool.write_frame(pool_id, df, table, create=create, if_exists=mode,
                                   timeout=timeout)
        progress.add(df.height, df.estimated_size())
        return n
    written = 0
    with progress:
        async with pool.transaction(pool_id, timeout=timeout) as tx:
            for i, part in enumerate(df.iter_slices(slice_rows)):
                first = i == 0
                written += await tx.write_frame(part, table, create=create and first,
                                                if_exists=mode if first else "append")
                progress.add(part.height, part.estimated_size())
    return written

