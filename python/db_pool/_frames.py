"""write_frame's input: what it accepts, how columns the engines have no
Arrow reader for are encoded, and the CREATE TABLE of ``create=True``.

The C bulk loaders read flat Arrow columns. Nested ones are encoded here,
before anything is sent: a Struct becomes its JSON text; a List becomes a
PostgreSQL array literal (``{1,2,NULL}``) on PostgreSQL, which has arrays,
and its JSON text elsewhere. Durations go to PostgreSQL intervals and are
refused by the engines without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import polars as pl

from .errors import ConfigurationError, NotSupportedError, ProgrammingError

IfExists = Literal["append", "fail", "replace"]

FrameInput = Any  # pl.DataFrame | pl.LazyFrame | Mapping[str, Sequence | pl.Series]


def prepare_frame(frame: FrameInput, engine: str, *, create: bool = False) -> tuple[Any, pl.Schema | None]:
    """The rows to hand to the bulk loader, and the schema the frame had
    before its nested columns were encoded (what create=True makes columns
    of). Any other Arrow stream (a pyarrow Table, ...) goes as it is, checked
    by the C reader; create=True reads it into Polars first."""
    df: pl.DataFrame
    if hasattr(frame, "__arrow_c_stream__") and not isinstance(frame, pl.DataFrame):
        if not create:
            return frame, None
        frame = pl.DataFrame(frame)
    if isinstance(frame, pl.LazyFrame):
        df = frame.collect()
    elif isinstance(frame, Mapping):
        df = pl.DataFrame(frame)
    elif isinstance(frame, pl.DataFrame):
        df = frame
    else:
        raise ProgrammingError(
            f"write_frame takes a polars DataFrame, LazyFrame or a dict of columns, "
            f"not {type(frame).__name__}"
        )
    for name in df.columns:
        if "\0" in name:  # Polars would abort the process exporting it
            raise ProgrammingError(f"write_frame: column name {name!r} contains a NUL byte")
    nested = [n for n, t in df.schema.items() if isinstance(t, (pl.List, pl.Array, pl.Struct))]
    # MySQL's BIGINT UNSIGNED takes values past the int64 the bulk reader
    # hands over: they go as exact decimal digits
    wide = [n for n, t in df.schema.items() if engine == "mysql" and t == pl.UInt64]
    if not nested and not wide:
        return df, df.schema
    return (df.with_columns([_encoded(df, n, engine) for n in nested]
                            + [pl.col(n).cast(pl.Decimal(20, 0)) for n in wide]), df.schema)


def _encoded(frame: pl.DataFrame, name: str, engine: str) -> pl.Expr:
    dtype = frame.schema[name]
    col = pl.col(name)
    if engine == "postgresql" and isinstance(dtype, (pl.List, pl.Array)):
        inner = dtype.inner
        if isinstance(inner, (pl.List, pl.Array, pl.Struct)):
            raise NotSupportedError(
                f"column '{name}' is {dtype}: nested lists cannot be written as PostgreSQL "
                "arrays; encode it yourself (e.g. to JSON text)"
            )
        if isinstance(dtype, pl.Array):
            col = col.arr.to_list()
        text = col.list.eval(_array_element(inner)).list.join(",")
        return pl.when(col.is_null()).then(None).otherwise("{" + text + "}").alias(name)
    if isinstance(dtype, pl.Struct):
        return col.struct.json_encode().alias(name)
    # JSON of a list: encode {"v": [...]} and keep the [...] part.
    encoded = pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    return pl.when(col.is_null()).then(None).otherwise(encoded).alias(name)


def _array_element(dtype: Any) -> pl.Expr:
    """One element of a PostgreSQL array literal: NULL, or its text quoted."""
    e = pl.element()
    if dtype == pl.Binary:
        text = "\\x" + e.bin.encode("hex")
    elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        text = e.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(pl.String) + "+00"
    elif isinstance(dtype, pl.Duration):
        text = e.dt.total_microseconds().cast(pl.String) + " microseconds"
    else:
        text = e.cast(pl.String)
    quoted = '"' + text.str.replace_all("\\", "\\\\", literal=True).str.replace_all(
        '"', '\\"', literal=True) + '"'
    return pl.when(e.is_null()).then(pl.lit("NULL")).otherwise(quoted)


# ---- create=True ---------------------------------------------------------------

def quote_identifier(engine: str, name: str) -> str:
    """One identifier quoted as the bulk loaders quote it, the quote doubled
    (also the partition column of a partitioned read)."""
    open_, close = ("[", "]") if engine == "mssql" else ("`", "`") if engine == "mysql" else ('"', '"')
    return open_ + name.replace(close, close * 2) + close


def quote_table(engine: str, table: str) -> str:
    """The table name quoted as the bulk loader quotes it (dots separate
    schema and table)."""
    return ".".join(quote_identifier(engine, part) for part in table.split("."))


_SCALARS: dict[str, dict[Any, str]] = {
    "sqlite": {
        pl.Boolean: "BOOLEAN", pl.Int8: "INTEGER", pl.Int16: "INTEGER", pl.Int32: "INTEGER",
        pl.Int64: "INTEGER", pl.UInt8: "INTEGER", pl.UInt16: "INTEGER", pl.UInt32: "INTEGER",
        pl.UInt64: "INTEGER", pl.Float32: "REAL", pl.Float64: "REAL", pl.String: "TEXT",
        pl.Categorical: "TEXT", pl.Enum: "TEXT", pl.Binary: "BLOB", pl.Date: "DATE",
        pl.Time: "TIME", pl.Null: "TEXT", pl.List: "TEXT", pl.Array: "TEXT", pl.Struct: "TEXT",
    },
    "postgresql": {
        pl.Boolean: "boolean", pl.Int8: "smallint", pl.Int16: "smallint", pl.Int32: "integer",
        pl.Int64: "bigint", pl.UInt8: "smallint", pl.UInt16: "integer", pl.UInt32: "bigint",
        pl.UInt64: "numeric(20)", pl.Float32: "real", pl.Float64: "double precision",
        pl.String: "text", pl.Categorical: "text", pl.Enum: "text", pl.Binary: "bytea",
        pl.Date: "date", pl.Time: "time", pl.Duration: "interval", pl.Null: "text",
        pl.Struct: "jsonb",
    },
    "mssql": {
        pl.Boolean: "bit", pl.Int8: "smallint", pl.Int16: "smallint", pl.Int32: "int",
        pl.Int64: "bigint", pl.UInt8: "tinyint", pl.UInt16: "int", pl.UInt32: "bigint",
        pl.UInt64: "decimal(20,0)", pl.Float32: "real", pl.Float64: "float",
        pl.String: "nvarchar(max)", pl.Categorical: "nvarchar(max)", pl.Enum: "nvarchar(max)",
        pl.Binary: "varbinary(max)", pl.Date: "date", pl.Time: "time(7)",
        pl.Null: "nvarchar(max)", pl.List: "nvarchar(max)", pl.Array: "nvarchar(max)",
        pl.Struct: "nvarchar(max)",
    },
    "mysql": {
        pl.Boolean: "BOOLEAN", pl.Int8: "TINYINT", pl.Int16: "SMALLINT", pl.Int32: "INT",
        pl.Int64: "BIGINT", pl.UInt8: "TINYINT UNSIGNED", pl.UInt16: "SMALLINT UNSIGNED",
        pl.UInt32: "INT UNSIGNED", pl.UInt64: "BIGINT UNSIGNED", pl.Float32: "FLOAT",
        pl.Float64: "DOUBLE", pl.String: "LONGTEXT", pl.Categorical: "LONGTEXT",
        pl.Enum: "LONGTEXT", pl.Binary: "LONGBLOB", pl.Date: "DATE", pl.Time: "TIME(6)",
        pl.Duration: "TIME(6)", pl.Null: "LONGTEXT",
    },
}


def sql_type(engine: str, name: str, dtype: Any) -> str:
    """The column type create=True gives a frame column."""
    if isinstance(dtype, pl.Decimal):
        name = {"sqlite": "DECIMAL", "postgresql": "numeric", "mssql": "decimal",
                "mysql": "DECIMAL"}[engine]
        return f"{name}({dtype.precision or 38},{dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        zoned = dtype.time_zone is not None
        return {"sqlite": "TIMESTAMPTZ" if zoned else "DATETIME",
                "postgresql": "timestamptz" if zoned else "timestamp",
                "mssql": "datetimeoffset(7)" if zoned else "datetime2(7)",
                "mysql": "TIMESTAMP(6) NULL" if zoned else "DATETIME(6)"}[engine]
    if engine == "postgresql" and isinstance(dtype, (pl.List, pl.Array)):
        return sql_type(engine, name, dtype.inner) + "[]"
    found = _SCALARS[engine].get(dtype.base_type())
    if found is None:
        raise NotSupportedError(f"column '{name}' is {dtype}, which {engine} has no column type for")
    return found


def create_statements(engine: str, table: str, schema: pl.Schema, if_exists: str) -> list[str]:
    """The statements that make ``table`` ready for write_frame(create=True):
    created if missing; if it exists, kept ("append"), an error ("fail": the
    engine's own duplicate-table error), or dropped and created anew."""
    quoted = quote_table(engine, table)
    columns = ", ".join(f"{quote_identifier(engine, n)} {sql_type(engine, n, t)}" for n, t in schema.items())
    if engine == "mssql":  # no IF [NOT] EXISTS on its CREATE and DROP
        exists = f"OBJECT_ID(N'{quoted.replace(chr(39), chr(39) * 2)}', N'U')"
        drop, if_missing = f"IF {exists} IS NOT NULL DROP TABLE {quoted}", f"IF {exists} IS NULL "
        create = f"CREATE TABLE {quoted} ({columns})"
    else:
        drop, if_missing = f"DROP TABLE IF EXISTS {quoted}", ""
        create = f"CREATE TABLE {'IF NOT EXISTS ' if if_exists == 'append' else ''}{quoted} ({columns})"
    if if_exists == "append":
        return [if_missing + create]
    return ([drop] if if_exists == "replace" else []) + [create]


def check_if_exists(create: bool, if_exists: str) -> None:
    if if_exists not in ("append", "fail", "replace"):
        raise ConfigurationError(f"if_exists must be 'append', 'fail' or 'replace', not {if_exists!r}")
    if not create and if_exists != "append":
        raise ConfigurationError(f"if_exists={if_exists!r} needs create=True")
