"""How `db-pool` prints and writes what it read: a frame as Polars' own
table, CSV, JSON (an array of row objects), NDJSON or Parquet, to stdout
or to a file written whole or not at all (a temporary file renamed into
place); and plain data (stats, metrics) as JSON that any parser reads.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import polars as pl

from ._cli_base import UsageError

FORMATS = ("table", "csv", "json", "ndjson", "parquet")
#: -o FILE's extension gives the format when --format is not given.
EXTENSIONS = {".csv": "csv", ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson",
              ".parquet": "parquet", ".txt": "table"}
#: Rows of the table format when --max-rows is not given (Polars shows the
#: first and last halves of a longer frame).
DEFAULT_TABLE_ROWS = 25
#: Width of the table format when stdout is not a terminal (no wrapping).
PIPE_WIDTH = 1000


def choose_format(given: str | None, output: str | None) -> str:
    """The format to write: --format, else -o's extension, else a table.
    Checked before anything runs (UsageError)."""
    fmt = given
    if fmt is None and output is not None:
        fmt = EXTENSIONS.get(Path(output).suffix.lower())
        if fmt is None:
            raise UsageError(f"cannot tell the format from the name {output!r}: give --format "
                             f"({', '.join(FORMATS)})")
    fmt = fmt or "table"
    if fmt == "parquet" and output is None and sys.stdout.isatty():
        raise UsageError("parquet is binary: give -o FILE, or redirect stdout to a file")
    return fmt


def table_text(df: pl.DataFrame, max_rows: int) -> str:
    """The frame as Polars prints it, every column shown, at most
    ``max_rows`` rows (-1: all), as wide as the terminal (not wrapped when
    stdout is not one)."""
    width = shutil.get_terminal_size((PIPE_WIDTH, 24)).columns if _stdout_is_terminal() \
        else PIPE_WIDTH
    with pl.Config(tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=width):
        return str(df)


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _writer(df: pl.DataFrame, fmt: str, max_rows: int) -> Callable[[BinaryIO], None]:
    """A function writing the frame in ``fmt`` to a binary file."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}")  # argparse lets only FORMATS through

    def write(f: BinaryIO) -> None:
        target: Any = f  # Polars' stubs name IOBase; a binary file is one
        if fmt == "csv":
            df.write_csv(target)
        elif fmt == "json":
            df.write_json(target)
        elif fmt == "ndjson":
            df.write_ndjson(target)
        elif fmt == "parquet":
            df.write_parquet(target)
        else:
            f.write((table_text(df, max_rows) + "\n").encode())

    return write


def write_frame(df: pl.DataFrame, fmt: str, output: str | None, max_rows: int) -> None:
    """Writes the frame to ``output`` (whole or not at all) or to stdout."""
    write = _writer(df, fmt, max_rows)
    if output is None or output == "-":
        sys.stdout.flush()
        try:
            write(sys.stdout.buffer)
        except Exception as exc:  # Polars writes to the descriptor itself: its own error
            if f"(os error {errno.EPIPE})" in str(exc):
                raise BrokenPipeError(errno.EPIPE, "broken pipe") from None
            raise
        sys.stdout.buffer.flush()
        return
    write_atomically(output, write)


def write_atomically(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Writes a file through a temporary one in the same directory renamed
    over it at the end, so a failure never leaves half a file. The file
    gets the usual permissions (0666 less the umask)."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def jsonable(value: Any) -> Any:
    """``value`` with what strict JSON has no form for made plain: infinite
    and NaN floats as the strings Prometheus writes ("+Inf", "-Inf",
    "NaN"), tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Strict JSON on stdout (indented)."""
    print(json.dumps(jsonable(value), indent=2, allow_nan=False, default=str))
