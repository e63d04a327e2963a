"""BULK LOAD (packet type 7, MS-TDS 2.2.6.1): after an ``INSERT BULK table
(col type, ...)`` batch the client sends COLMETADATA, ROW tokens and a DONE.
Rows are checked against the table's declared types and inserted all or
nothing."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from . import errors, sql
from . import engine as E
from .errors import SqlError
from .types import (
    BINARY_TYPES, CHAR_TYPES, SqlType, WireType, coerce, read_type_info, read_value, to_storage,
)
from .wire import ProtocolError, Reader

COLMETADATA = 0x81
ROW = 0xD1
NBCROW = 0xD2
DONE = 0xFD


@dataclass
class BulkColumn:
    name: str
    flags: int
    wire: WireType


def _parse_metadata(r: Reader, table_name_form: str) -> list[BulkColumn]:
    count = r.u16()
    cols: list[BulkColumn] = []
    if count == 0xFFFF:
        return cols
    for _ in range(count):
        r.u32()  # user type
        flags = r.u16()
        wire = read_type_info(r, colmetadata=True, bulk_table_name=table_name_form)
        cols.append(BulkColumn(r.b_varchar(), flags, wire))
    return cols


def parse_bulk(payload: bytes) -> tuple[list[BulkColumn], list[list[object]]]:
    """COLMETADATA + rows. The table name after a text/ntext/image column is
    NumParts + parts in MS-TDS 7.2+, but FreeTDS sends one US_VARCHAR: try both."""
    last_exc: Exception | None = None
    for form in ("parts", "us_varchar"):
        r = Reader(payload)
        try:
            if r.u8() != COLMETADATA:
                raise ProtocolError("bulk load data does not start with COLMETADATA")
            cols = _parse_metadata(r, form)
            if not r.at_end() and r.peek_u8() not in (ROW, NBCROW, DONE):
                raise ProtocolError("unexpected token after bulk COLMETADATA")
            rows = _parse_rows(r, cols)
            return cols, rows
        except (ProtocolError, UnicodeDecodeError, ValueError) as exc:
            last_exc = exc
    raise ProtocolError(f"cannot parse bulk load data: {last_exc}")


def _parse_rows(r: Reader, cols: list[BulkColumn]) -> list[list[object]]:
    rows: list[list[object]] = []
    while not r.at_end():
        token = r.u8()
        if token == ROW:
            rows.append([read_value(r, c.wire, in_row=True) for c in cols])
        elif token == NBCROW:
            bitmap = r.take((len(cols) + 7) // 8)
            row: list[object] = []
            for i, c in enumerate(cols):
                row.append(None if bitmap[i // 8] & (1 << (i % 8)) else read_value(r, c.wire, in_row=True))
            rows.append(row)
        elif token == DONE:
            r.take(12)
            break
        else:
            raise ProtocolError(f"unexpected token {token:#x} in bulk load data")
    return rows


def _check_length(target: SqlType, value: object, colid: int) -> None:
    if target.length is None or target.length <= 0 or value is None:
        return
    if target.name in CHAR_TYPES or target.name in BINARY_TYPES:
        n = len(value) if isinstance(value, (str, bytes)) else len(str(value))
        if n > target.length:
            raise SqlError(4815, f"Received an invalid column length from the bcp client for colid {colid}.",
                           state=1, aborts_batch=False)


def load(engine: E.Engine, payload: bytes) -> int:
    """Insert the rows of a BULK LOAD message; returns the row count."""
    target = engine.pending_bulk
    engine.pending_bulk = None
    if target is None:
        raise SqlError(4804, "While reading current row from host, a premature end-of-message was encountered--"
                       "an incoming data stream was interrupted when the server expected to see more data.")
    cols, rows = parse_bulk(payload)
    table_cols = {name.lower(): (name, typ) for name, typ, _nn in engine.table_columns(target.table, target.schema)}
    targets: list[tuple[str, SqlType | None]] = []
    for c in cols:
        found = table_cols.get(c.name.lower())
        if found is None:
            raise SqlError(207, f"Invalid column name '{c.name}'.")
        targets.append(found)
    names = ", ".join(sql.quote_ident(n) for n, _ in targets)
    marks = ", ".join("?" for _ in targets)
    qualified = (f"{sql.quote_ident(target.schema)}." if target.schema else "") + sql.quote_ident(target.table)
    stmt = f"INSERT INTO {qualified} ({names}) VALUES ({marks})"
    db = engine.db
    db.execute("SAVEPOINT tds_bulk")
    try:
        storage_rows = []
        for row in rows:
            out = []
            for colid, ((_name, typ), c, v) in enumerate(zip(targets, cols, row), start=1):
                if typ is None:
                    out.append(to_storage(c.wire.sql_type(), v))
                    continue
                _check_length(typ, v, colid)
                out.append(to_storage(typ, coerce(typ, v)))
            storage_rows.append(out)
        try:
            db.executemany(stmt, storage_rows)
        except sqlite3.Error as exc:
            raise errors.from_sqlite(exc, engine.database, "INSERT") from None
    except BaseException:
        db.execute("ROLLBACK TO tds_bulk")
        db.execute("RELEASE tds_bulk")
        raise
    db.execute("RELEASE tds_bulk")
    engine.rowcount = len(rows)
    return len(rows)
