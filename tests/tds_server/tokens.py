"""Builders for the server's token stream (MS-TDS 2.2.7): COLMETADATA, ROW,
NBCROW, DONE/DONEPROC/DONEINPROC, ERROR/INFO, ENVCHANGE, LOGINACK,
RETURNSTATUS, RETURNVALUE."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .types import SqlType, WireType, encode_value, wire_type_for
from .wire import b_varbyte, b_varchar, us_varchar

# Token ids.
ALTMETADATA = 0x88
ALTROW = 0xD3
COLINFO = 0xA5
COLMETADATA = 0x81
DONE = 0xFD
DONEINPROC = 0xFF
DONEPROC = 0xFE
ENVCHANGE = 0xE3
ERROR = 0xAA
FEATUREEXTACK = 0xAE
INFO = 0xAB
LOGINACK = 0xAD
NBCROW = 0xD2
ORDER = 0xA9
RETURNSTATUS = 0x79
RETURNVALUE = 0xAC
ROW = 0xD1

# DONE status bits.
DONE_FINAL = 0x00
DONE_MORE = 0x01
DONE_ERROR = 0x02
DONE_INXACT = 0x04
DONE_COUNT = 0x10
DONE_ATTN = 0x20
DONE_SRVERROR = 0x100

# DONE CurCmd values (the statement kind).
CMD_SELECT = 0xC1
CMD_INSERT = 0xC3
CMD_DELETE = 0xC4
CMD_UPDATE = 0xC5
CMD_OTHER = 0x00
CMD_EXECUTE = 0xE0

# ENVCHANGE types.
ENV_DATABASE = 1
ENV_LANGUAGE = 2
ENV_CHARSET = 3
ENV_PACKETSIZE = 4
ENV_COLLATION = 7
ENV_BEGIN_TRAN = 8
ENV_COMMIT_TRAN = 9
ENV_ROLLBACK_TRAN = 10
ENV_TRAN_ENDED = 17
ENV_RESETCONNECTION_ACK = 18

# COLMETADATA column flags.
FLAG_NULLABLE = 0x0001
FLAG_CASESEN = 0x0002
FLAG_UPDATEABLE_UNKNOWN = 0x0008
FLAG_IDENTITY = 0x0010
FLAG_COMPUTED = 0x0020


@dataclass
class Column:
    """One result column: its T-SQL type and how it goes on the wire."""

    name: str
    type: SqlType
    nullable: bool = True
    identity: bool = False
    table_parts: list[str] = field(default_factory=list)
    wire: WireType | None = None

    def __post_init__(self) -> None:
        if self.wire is None:
            self.wire = wire_type_for(self.type, self.nullable)
            self.wire.table_parts = self.table_parts


def colmetadata(columns: list[Column]) -> bytes:
    out = bytearray((COLMETADATA,))
    out += struct.pack("<H", len(columns))
    for col in columns:
        assert col.wire is not None
        flags = FLAG_UPDATEABLE_UNKNOWN
        if col.nullable:
            flags |= FLAG_NULLABLE
        if col.identity:
            flags |= FLAG_IDENTITY
        out += struct.pack("<IH", 0, flags)  # UserType, Flags
        out += col.wire.encode_type_info(colmetadata=True)
        out += b_varchar(col.name[:128])
    return bytes(out)


def row(columns: list[Column], values: list[object] | tuple[object, ...]) -> bytes:
    """A ROW token, or NBCROW when the row has NULLs (as SQL Server does)."""
    if any(v is None for v in values):
        bitmap = bytearray((len(columns) + 7) // 8)
        parts = [b""]
        for i, (col, v) in enumerate(zip(columns, values)):
            if v is None:
                bitmap[i // 8] |= 1 << (i % 8)
            else:
                assert col.wire is not None
                parts.append(encode_value(col.wire, v))
        return bytes((NBCROW,)) + bytes(bitmap) + b"".join(parts)
    return bytes((ROW,)) + b"".join(encode_value(c.wire, v) for c, v in zip(columns, values))  # type: ignore[arg-type]


def done(status: int = DONE_FINAL, curcmd: int = CMD_OTHER, rowcount: int = 0, token: int = DONE) -> bytes:
    return struct.pack("<BHHQ", token, status, curcmd, rowcount)


def _message(token: int, number: int, state: int, severity: int, text: str, server: str, proc: str, line: int) -> bytes:
    body = struct.pack("<iBB", number, state, severity) + us_varchar(text) + b_varchar(server) + b_varchar(proc)
    body += struct.pack("<i", line)
    return bytes((token,)) + struct.pack("<H", len(body)) + body


def error(number: int, state: int, severity: int, text: str, server: str, proc: str = "", line: int = 1) -> bytes:
    return _message(ERROR, number, state, severity, text, server, proc, line)


def info(number: int, state: int, severity: int, text: str, server: str, proc: str = "", line: int = 1) -> bytes:
    return _message(INFO, number, state, severity, text, server, proc, line)


def envchange_str(kind: int, new: str, old: str) -> bytes:
    body = bytes((kind,)) + b_varchar(new) + b_varchar(old)
    return bytes((ENVCHANGE,)) + struct.pack("<H", len(body)) + body


def envchange_bytes(kind: int, new: bytes, old: bytes) -> bytes:
    body = bytes((kind,)) + b_varbyte(new) + b_varbyte(old)
    return bytes((ENVCHANGE,)) + struct.pack("<H", len(body)) + body


def loginack(tds_version: int, prog_name: str, prog_version: tuple[int, int, int]) -> bytes:
    major, minor, build = prog_version
    body = bytes((1,)) + struct.pack(">I", tds_version) + b_varchar(prog_name)
    body += bytes((major, minor, (build >> 8) & 0xFF, build & 0xFF))
    return bytes((LOGINACK,)) + struct.pack("<H", len(body)) + body


def returnstatus(value: int) -> bytes:
    return struct.pack("<Bi", RETURNSTATUS, value)


def returnvalue(ordinal: int, name: str, wire: WireType, value: object, *, output: bool = True) -> bytes:
    body = struct.pack("<H", ordinal) + b_varchar(name) + bytes((0x01 if output else 0x02,))
    body += struct.pack("<IH", 0, FLAG_NULLABLE)
    body += wire.encode_type_info(colmetadata=False)
    body += encode_value(wire, value)
    return bytes((RETURNVALUE,)) + body
