"""SQL Server data types: the T-SQL type model (``SqlType``), parsing of
declared column types, TYPE_INFO (MS-TDS 2.2.5.6) and value encoding on the
wire in both directions, and conversion between sqlite storage values and
typed SQL Server values.

Internal value forms (what ``coerce`` returns and ``encode_value`` takes):
integers -> int, bit -> int 0/1, decimal/numeric/money -> Decimal,
float/real -> float, date -> days, time -> ticks, datetime/datetime2/
smalldatetime -> (days, ticks), datetimeoffset -> (days, ticks, offset) with
local date/time, uniqueidentifier -> uuid.UUID, character types/xml -> str,
binary types -> bytes (see temporal.py for days/ticks).
"""

from __future__ import annotations

import decimal
import re
import struct
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from . import temporal as T
from .errors import SqlError, conversion_failed, overflow
from .wire import ProtocolError, Reader

# ---- TDS type ids -----------------------------------------------------------------

NULLTYPE = 0x1F
INT1 = 0x30
BIT = 0x32
INT2 = 0x34
INT4 = 0x38
DATETIM4 = 0x3A
FLT4 = 0x3B
MONEY = 0x3C
DATETIME = 0x3D
FLT8 = 0x3E
MONEY4 = 0x7A
INT8 = 0x7F
GUID = 0x24
INTN = 0x26
DECIMAL = 0x37
NUMERIC = 0x3F
BITN = 0x68
DECIMALN = 0x6A
NUMERICN = 0x6C
FLTN = 0x6D
MONEYN = 0x6E
DATETIMN = 0x6F
DATEN = 0x28
TIMEN = 0x29
DATETIME2N = 0x2A
DATETIMEOFFSETN = 0x2B
CHAR = 0x2F
VARCHAR = 0x27
BINARY = 0x2D
VARBINARY = 0x25
BIGVARBIN = 0xA5
BIGVARCHR = 0xA7
BIGBINARY = 0xAD
BIGCHAR = 0xAF
NVARCHAR = 0xE7
NCHAR = 0xEF
XML = 0xF1
UDT = 0xF0
TEXT = 0x23
IMAGE = 0x22
NTEXT = 0x63
SSVARIANT = 0x62

FIXED_SIZES = {NULLTYPE: 0, INT1: 1, BIT: 1, INT2: 2, INT4: 4, DATETIM4: 4, FLT4: 4, MONEY: 8,
               DATETIME: 8, FLT8: 8, MONEY4: 4, INT8: 8}
BYTELEN_TYPES = {GUID, INTN, BITN, FLTN, MONEYN, DATETIMN, CHAR, VARCHAR, BINARY, VARBINARY}
DECIMAL_TYPES = {DECIMAL, NUMERIC, DECIMALN, NUMERICN}
SCALED_TEMPORAL = {TIMEN, DATETIME2N, DATETIMEOFFSETN}
USHORT_TYPES = {BIGVARBIN, BIGVARCHR, BIGBINARY, BIGCHAR, NVARCHAR, NCHAR}
COLLATED_TYPES = {BIGVARCHR, BIGCHAR, NVARCHAR, NCHAR, TEXT, NTEXT}
LEGACY_LOB_TYPES = {TEXT, NTEXT, IMAGE}

#: SQL_Latin1_General_CP1_CI_AS: LCID 0x409, CI/KI/WI flags, sort id 52 (code page 1252).
DEFAULT_COLLATION = bytes((0x09, 0x04, 0xD0, 0x00, 0x34))
CODEPAGE = "cp1252"

PLP_NULL = 0xFFFFFFFFFFFFFFFF
PLP_UNKNOWN = 0xFFFFFFFFFFFFFFFE
PLP_CHUNK = 8000
TEXTPTR = b"\x00" * 16
TEXT_TIMESTAMP = b"\x00" * 8

INT_RANGES = {
    "tinyint": (0, 255),
    "smallint": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
INT_SIZES = {"tinyint": 1, "smallint": 2, "int": 4, "bigint": 8}
MONEY_RANGE = {"money": (-(2**63), 2**63 - 1), "smallmoney": (-(2**31), 2**31 - 1)}
CHAR_TYPES = {"char", "varchar", "nchar", "nvarchar", "text", "ntext", "xml"}
BINARY_TYPES = {"binary", "varbinary", "image"}
TEMPORAL_TYPES = {"date", "time", "datetime", "smalldatetime", "datetime2", "datetimeoffset"}


def decimal_bytes(precision: int) -> int:
    """Magnitude bytes of a decimal of this precision (sign byte not included)."""
    if precision <= 9:
        return 4
    if precision <= 19:
        return 8
    if precision <= 28:
        return 12
    return 16


def time_bytes(scale: int) -> int:
    return 3 if scale <= 2 else 4 if scale <= 4 else 5


# ---- the T-SQL type model ---------------------------------------------------------------


@dataclass(frozen=True)
class SqlType:
    """A T-SQL data type. ``length``: characters for char types, bytes for
    binary types, -1 for (max). ``precision``/``scale`` for decimal and for
    the scale of time/datetime2/datetimeoffset."""

    name: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.name in ("decimal", "numeric"):
            return f"{self.name}({self.precision},{self.scale})"
        if self.name in ("time", "datetime2", "datetimeoffset"):
            return f"{self.name}({self.scale})"
        if self.length is not None:
            return f"{self.name}({'max' if self.length == -1 else self.length})"
        return self.name

    @property
    def is_max(self) -> bool:
        return self.length == -1

    @property
    def is_unicode(self) -> bool:
        return self.name in ("nchar", "nvarchar", "ntext", "xml")


def sql_type(name: str, length: int | None = None, precision: int | None = None, scale: int | None = None) -> SqlType:
    return SqlType(name, length, precision, scale)


BIGINT = SqlType("bigint")
INT = SqlType("int")
FLOAT = SqlType("float")
NVARCHAR_MAX = SqlType("nvarchar", -1)
VARBINARY_MAX = SqlType("varbinary", -1)

_TYPE_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARGS = re.compile(r"\(\s*([^)]*)\)")

_ALIASES = {
    "integer": "int",
    "dec": "decimal",
    "double precision": "float",
    "double": "float",
    "character": "char",
    "char varying": "varchar",
    "character varying": "varchar",
    "national char": "nchar",
    "national character": "nchar",
    "national char varying": "nvarchar",
    "national character varying": "nvarchar",
    "national text": "ntext",
    "binary varying": "varbinary",
    "boolean": "bit",
    "bool": "bit",
    "blob": "varbinary",
    "clob": "nvarchar",
    "rowversion": "timestamp",
}

#: Words the SQL translation appends to declared types to pick sqlite's column
#: affinity (TEXT/BLOB) without losing the T-SQL type; stripped when parsing.
AFFINITY_MARKERS = {"tdstext", "tdsblob"}


def parse_declared_type(text: str | None, *, default_char_length: int = 1) -> SqlType | None:
    """A declared column type (as sqlite keeps it) -> SqlType, or None when it
    is empty or not a SQL Server type."""
    if not text:
        return None
    args_m = _ARGS.search(text)
    head = text[: args_m.start()] if args_m else text
    words = [w.lower() for w in _TYPE_WORDS.findall(head) if w.lower() not in AFFINITY_MARKERS]
    if not words:
        return None
    name = " ".join(words)
    name = _ALIASES.get(name, name)
    args: list[str] = []
    if args_m:
        args = [a.strip().lower() for a in args_m.group(1).split(",") if a.strip()]

    def arg(i: int, default: int) -> int:
        if i >= len(args):
            return default
        if args[i] in ("max", "-1"):
            return -1
        try:
            return int(args[i])
        except ValueError:
            return default

    if name in INT_RANGES or name in ("bit", "money", "smallmoney", "real", "date", "datetime",
                                      "smalldatetime", "uniqueidentifier", "text", "ntext", "image", "xml"):
        return SqlType(name)
    if name == "float":
        return SqlType("real") if args and arg(0, 53) <= 24 else FLOAT
    if name in ("decimal", "numeric"):
        p = max(1, min(38, arg(0, 18)))
        return SqlType(name, precision=p, scale=max(0, min(p, arg(1, 0))))
    if name in ("time", "datetime2", "datetimeoffset"):
        return SqlType(name, scale=max(0, min(7, arg(0, 7))))
    if name in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary"):
        if text.lower().split("(")[0].strip() in ("blob", "clob"):
            return SqlType(name, -1)
        n = arg(0, default_char_length)
        limit = 4000 if name in ("nchar", "nvarchar") else 8000
        if n == -1 and name in ("char", "nchar", "binary"):
            n = limit
        return SqlType(name, n if n == -1 else max(1, min(limit, n)))
    if name == "sysname":
        return SqlType("nvarchar", 128)
    if name == "timestamp":
        return SqlType("binary", 8)
    return None


# ---- TYPE_INFO -------------------------------------------------------------------------


@dataclass
class WireType:
    """A TYPE_INFO as sent on the wire (what the bytes mean, not the T-SQL name)."""

    tid: int
    size: int = 0  # fixed/byte-len size, or max length in bytes (0xFFFF = PLP) for USHORT types
    precision: int = 0
    scale: int = 0
    collation: bytes = DEFAULT_COLLATION
    table_parts: list[str] = field(default_factory=list)

    @property
    def is_plp(self) -> bool:
        return (self.tid in USHORT_TYPES and self.size == 0xFFFF) or self.tid in (XML, UDT) and self.size in (0, 0xFFFF)

    def encode_type_info(self, colmetadata: bool = True) -> bytes:
        tid = self.tid
        out = bytearray((tid,))
        if tid in FIXED_SIZES:
            return bytes(out)
        if tid in DECIMAL_TYPES:
            out += bytes((self.size, self.precision, self.scale))
        elif tid in SCALED_TEMPORAL:
            out.append(self.scale)
        elif tid == DATEN:
            pass
        elif tid in BYTELEN_TYPES:
            out.append(self.size)
        elif tid in USHORT_TYPES:
            out += struct.pack("<H", self.size)
            if tid in COLLATED_TYPES:
                out += self.collation
        elif tid in LEGACY_LOB_TYPES:
            out += struct.pack("<i", self.size)
            if tid in COLLATED_TYPES:
                out += self.collation
            if colmetadata:
                parts = self.table_parts or ["dbo", "t"]
                out.append(len(parts))
                for p in parts:
                    raw = p.encode("utf-16-le")
                    out += struct.pack("<H", len(raw) // 2) + raw
        elif tid == XML:
            out.append(0)  # no schema
        else:
            raise ValueError(f"cannot describe type {tid:#x}")
        return bytes(out)

    def sql_type(self) -> SqlType:
        """The T-SQL type this TYPE_INFO stands for."""
        tid, size = self.tid, self.size
        if tid in (INT1, INT2, INT4, INT8) or tid == INTN:
            n = FIXED_SIZES.get(tid, size)
            return SqlType({1: "tinyint", 2: "smallint", 4: "int", 8: "bigint"}.get(n, "bigint"))
        if tid in (BIT, BITN):
            return SqlType("bit")
        if tid in (FLT4,) or (tid == FLTN and size == 4):
            return SqlType("real")
        if tid in (FLT8, FLTN):
            return FLOAT
        if tid in (MONEY4,) or (tid == MONEYN and size == 4):
            return SqlType("smallmoney")
        if tid in (MONEY, MONEYN):
            return SqlType("money")
        if tid in (DATETIM4,) or (tid == DATETIMN and size == 4):
            return SqlType("smalldatetime")
        if tid in (DATETIME, DATETIMN):
            return SqlType("datetime")
        if tid in DECIMAL_TYPES:
            return SqlType("numeric" if tid in (NUMERIC, NUMERICN) else "decimal", precision=self.precision, scale=self.scale)
        if tid == DATEN:
            return SqlType("date")
        if tid == TIMEN:
            return SqlType("time", scale=self.scale)
        if tid == DATETIME2N:
            return SqlType("datetime2", scale=self.scale)
        if tid == DATETIMEOFFSETN:
            return SqlType("datetimeoffset", scale=self.scale)
        if tid == GUID:
            return SqlType("uniqueidentifier")
        if tid in (BIGVARCHR, VARCHAR):
            return SqlType("varchar", -1 if size == 0xFFFF else size)
        if tid in (BIGCHAR, CHAR):
            return SqlType("char", size)
        if tid == NVARCHAR:
            return SqlType("nvarchar", -1 if size == 0xFFFF else size // 2)
        if tid == NCHAR:
            return SqlType("nchar", size // 2)
        if tid in (BIGVARBIN, VARBINARY):
            return SqlType("varbinary", -1 if size == 0xFFFF else size)
        if tid in (BIGBINARY, BINARY):
            return SqlType("binary", size)
        if tid == TEXT:
            return SqlType("text")
        if tid == NTEXT:
            return SqlType("ntext")
        if tid == IMAGE:
            return SqlType("image")
        if tid == XML:
            return SqlType("xml")
        if tid == NULLTYPE:
            return INT
        raise ValueError(f"type {tid:#x} has no T-SQL equivalent here")


def read_type_info(r: Reader, *, colmetadata: bool = False, bulk_table_name: str | None = None) -> WireType:
    """Parse a TYPE_INFO. ``colmetadata``: the legacy LOB types are followed by
    a table name (NumParts + US_VARCHAR parts). ``bulk_table_name='us_varchar'``
    accepts FreeTDS's bulk-load form, a single US_VARCHAR."""
    tid = r.u8()
    wt = WireType(tid)
    if tid in FIXED_SIZES:
        wt.size = FIXED_SIZES[tid]
    elif tid in DECIMAL_TYPES:
        wt.size, wt.precision, wt.scale = r.u8(), r.u8(), r.u8()
    elif tid in SCALED_TEMPORAL:
        wt.scale = r.u8()
        if wt.scale > 7:
            raise ProtocolError(f"scale {wt.scale} > 7")
    elif tid == DATEN:
        wt.size = 3
    elif tid in BYTELEN_TYPES:
        wt.size = r.u8()
    elif tid in USHORT_TYPES:
        wt.size = r.u16()
        if tid in COLLATED_TYPES:
            wt.collation = r.take(5)
    elif tid in LEGACY_LOB_TYPES:
        wt.size = r.i32()
        if tid in COLLATED_TYPES:
            wt.collation = r.take(5)
        if colmetadata:
            if bulk_table_name == "us_varchar":
                wt.table_parts = [r.us_varchar()]
            else:
                wt.table_parts = [r.us_varchar() for _ in range(r.u8())]
    elif tid == XML:
        if r.u8():
            r.b_varchar()
            r.b_varchar()
            r.us_varchar()
        wt.size = 0xFFFF
    elif tid == UDT:
        wt.size = r.u16()
        r.b_varchar()
        r.b_varchar()
        r.b_varchar()
        r.us_varchar()
    elif tid == SSVARIANT:
        wt.size = r.i32()
    else:
        raise ProtocolError(f"unknown TYPE_INFO type {tid:#04x}")
    return wt


def wire_type_for(t: SqlType, nullable: bool = True) -> WireType:
    """The TYPE_INFO SQL Server uses for a column of type ``t``: nullable
    columns use the ...N variants, NOT NULL ones the fixed-length types."""
    n = t.name
    if n in INT_SIZES:
        if nullable:
            return WireType(INTN, INT_SIZES[n])
        return WireType({1: INT1, 2: INT2, 4: INT4, 8: INT8}[INT_SIZES[n]], INT_SIZES[n])
    if n == "bit":
        return WireType(BITN, 1) if nullable else WireType(BIT, 1)
    if n in ("decimal", "numeric"):
        p = t.precision or 18
        return WireType(DECIMALN if n == "decimal" else NUMERICN, decimal_bytes(p) + 1, p, t.scale or 0)
    if n == "money":
        return WireType(MONEYN, 8) if nullable else WireType(MONEY, 8)
    if n == "smallmoney":
        return WireType(MONEYN, 4) if nullable else WireType(MONEY4, 4)
    if n == "real":
        return WireType(FLTN, 4) if nullable else WireType(FLT4, 4)
    if n == "float":
        return WireType(FLTN, 8) if nullable else WireType(FLT8, 8)
    if n == "date":
        return WireType(DATEN, 3)
    if n == "time":
        return WireType(TIMEN, scale=7 if t.scale is None else t.scale)
    if n == "datetime2":
        return WireType(DATETIME2N, scale=7 if t.scale is None else t.scale)
    if n == "datetimeoffset":
        return WireType(DATETIMEOFFSETN, scale=7 if t.scale is None else t.scale)
    if n == "datetime":
        return WireType(DATETIMN, 8) if nullable else WireType(DATETIME, 8)
    if n == "smalldatetime":
        return WireType(DATETIMN, 4) if nullable else WireType(DATETIM4, 4)
    if n == "uniqueidentifier":
        return WireType(GUID, 16)
    if n in ("char", "varchar", "binary", "varbinary"):
        tid = {"char": BIGCHAR, "varchar": BIGVARCHR, "binary": BIGBINARY, "varbinary": BIGVARBIN}[n]
        return WireType(tid, 0xFFFF if t.is_max else (t.length or 1))
    if n in ("nchar", "nvarchar"):
        return WireType(NCHAR if n == "nchar" else NVARCHAR, 0xFFFF if t.is_max else 2 * (t.length or 1))
    if n == "text":
        return WireType(TEXT, 0x7FFFFFFF)
    if n == "ntext":
        return WireType(NTEXT, 0x7FFFFFFE)
    if n == "image":
        return WireType(IMAGE, 0x7FFFFFFF)
    if n == "xml":
        return WireType(XML, 0xFFFF)
    raise ValueError(f"no wire type for {t}")


# ---- values: sqlite storage -> typed value (with SQL Server's conversion rules) ----------


def _storage_name(v: object) -> str:
    return "varchar" if isinstance(v, str) else "varbinary" if isinstance(v, bytes) else "float" if isinstance(v, float) else "int"


def _to_decimal(v: object, target: str) -> Decimal:
    if isinstance(v, Decimal):
        return v
    if isinstance(v, bool):
        return Decimal(int(v))
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except decimal.InvalidOperation:
            raise SqlError(8114, f"Error converting data type {_storage_name(v)} to {target}.", aborts_batch=False) from None
        if not d.is_finite():
            raise SqlError(8114, f"Error converting data type varchar to {target}.", aborts_batch=False)
        return d
    raise conversion_failed(v, _storage_name(v), target)


def _temporal_parts(v: object, target: str) -> tuple[int | None, int | None, int | None]:
    if isinstance(v, str):
        try:
            return T.parse(v)
        except T.TemporalParseError:
            raise conversion_failed(v, "varchar", target) from None
    if isinstance(v, tuple):
        if len(v) == 3:
            return v  # type: ignore[return-value]
        return v[0], v[1], None  # type: ignore[index]
    if isinstance(v, (int, float)) and target in ("datetime", "smalldatetime"):
        # SQL Server: numbers convert to datetime as days since 1900-01-01.
        whole = int(v // 1)
        frac = float(v) - whole
        return T.DAYS_1900 + whole, int(round(frac * T.TICKS_PER_DAY)), None
    raise SqlError(206, f"Operand type clash: {_storage_name(v)} is incompatible with {target}", aborts_batch=False)


def coerce(t: SqlType, v: object) -> object:
    """A value read from sqlite (or a parameter) converted to type ``t``;
    None stays None. Raises SqlError like SQL Server's implicit conversion."""
    if v is None:
        return None
    n = t.name
    if n in INT_RANGES or n == "bit":
        if isinstance(v, (bytes, bytearray)):
            iv = int.from_bytes(bytes(v)[-8:], "big", signed=False)
        elif isinstance(v, float):
            iv = int(v)
        elif isinstance(v, str):
            try:
                iv = int(v.strip())
            except ValueError:
                try:
                    iv = int(Decimal(v.strip()))
                except decimal.InvalidOperation:
                    if n == "bit" and v.strip().lower() in ("true", "false"):
                        return 1 if v.strip().lower() == "true" else 0
                    raise conversion_failed(v, "varchar", n) from None
        elif isinstance(v, Decimal):
            iv = int(v)
        else:
            iv = int(v)  # type: ignore[call-overload]
        if n == "bit":
            return 1 if iv else 0
        lo, hi = INT_RANGES[n]
        if not lo <= iv <= hi:
            raise overflow(n, iv)
        return iv
    if n in ("decimal", "numeric", "money", "smallmoney"):
        d = _to_decimal(v, n)
        scale = 4 if n in ("money", "smallmoney") else (t.scale or 0)
        try:
            q = d.quantize(Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP, context=decimal.Context(prec=80))
        except decimal.InvalidOperation:
            raise overflow(n) from None
        if n in ("money", "smallmoney"):
            lo, hi = MONEY_RANGE[n]
            if not lo <= int(q.scaleb(4, context=WIDE)) <= hi:
                raise overflow(n)
        else:
            digits = len(q.as_tuple().digits) if q != 0 else 1
            if digits > (t.precision or 18) and q != 0:
                raise SqlError(8115, f"Arithmetic overflow error converting {_storage_name(v)} to data type numeric.",
                               aborts_batch=False)
        return q
    if n in ("float", "real"):
        if isinstance(v, (bytes, bytearray)):
            raise conversion_failed(v, "varbinary", n)
        try:
            f = float(v)  # type: ignore[arg-type]
        except ValueError:
            raise SqlError(8114, f"Error converting data type varchar to {n}.", aborts_batch=False) from None
        if n == "real":
            f = struct.unpack("<f", struct.pack("<f", f))[0] if abs(f) <= 3.4028234663852886e38 else float("inf")
        if f != f or f in (float("inf"), float("-inf")):
            raise overflow(n)
        return f
    if n in TEMPORAL_TYPES:
        return _coerce_temporal(n, t.scale if t.scale is not None else 7, v)
    if n == "uniqueidentifier":
        if isinstance(v, uuid.UUID):
            return v
        if isinstance(v, (bytes, bytearray)) and len(v) == 16:
            return uuid.UUID(bytes_le=bytes(v))
        try:
            return uuid.UUID(str(v).strip().strip("{}"))
        except ValueError:
            raise conversion_failed(v, "varchar", n) from None
    if n in CHAR_TYPES:
        if isinstance(v, (bytes, bytearray)):
            s = bytes(v).decode("utf-16-le" if t.is_unicode else CODEPAGE, errors="replace")
        elif isinstance(v, float):
            s = repr(v) if abs(v) < 1e16 else f"{v:e}"
        elif isinstance(v, uuid.UUID):
            s = str(v).upper()
        else:
            s = str(v)
        if t.length and t.length > 0:
            s = s[: t.length]  # CAST to (n)var/char(n) truncates silently
            if n in ("char", "nchar"):
                s = s.ljust(t.length)
        return s
    if n in BINARY_TYPES:
        if isinstance(v, (bytes, bytearray, memoryview)):
            b = bytes(v)
        elif isinstance(v, str):
            b = v.encode(CODEPAGE, errors="replace")
        elif isinstance(v, int):
            b = v.to_bytes(8, "big", signed=True).lstrip(b"\x00") or b"\x00"
        elif isinstance(v, uuid.UUID):
            b = v.bytes_le
        else:
            raise conversion_failed(v, _storage_name(v), n)
        if t.length and t.length > 0:
            b = b[: t.length]
            if n == "binary":
                b = b.ljust(t.length, b"\x00")
        return b
    raise SqlError(40000, f"type {t} is not supported by this test server")


def _coerce_temporal(n: str, scale: int, v: object) -> object:
    days, ticks, offset = _temporal_parts(v, n)
    if n == "date":
        if days is None:
            days = T.date_to_days(1900, 1, 1)
        return days
    if ticks is None:
        ticks = 0
    if n == "time":
        t2 = T.round_ticks(ticks, scale)
        return t2 % T.TICKS_PER_DAY
    if days is None:
        days = T.DAYS_1900
    if n == "datetime":
        # 1/300 s resolution; rounds like SQL Server (to .000/.003/.007).
        t300 = (ticks * 300 + T.TICKS_PER_SECOND // 2) // T.TICKS_PER_SECOND
        days, ticks = T.normalize(days, t300 * T.TICKS_PER_SECOND // 300)
        if not T.DAYS_1753 <= days <= T.MAX_DAYS:
            raise SqlError(242, "The conversion of a varchar data type to a datetime data type resulted in an "
                           "out-of-range value.", aborts_batch=False)
        return days, ticks
    if n == "smalldatetime":
        minutes = (ticks + 30 * T.TICKS_PER_SECOND) // (60 * T.TICKS_PER_SECOND)
        days, ticks = T.normalize(days, minutes * 60 * T.TICKS_PER_SECOND)
        if not T.DAYS_1900 <= days <= T.DAYS_2079:
            raise SqlError(242, "The conversion of a varchar data type to a smalldatetime data type resulted in an "
                           "out-of-range value.", aborts_batch=False)
        return days, ticks
    rounded = T.round_ticks(ticks, scale)
    if days == T.MAX_DAYS and rounded >= T.TICKS_PER_DAY:
        rounded = ticks - ticks % 10 ** (7 - scale)  # no room to carry: truncate instead
    days, ticks = T.normalize(days, rounded)
    if n == "datetime2":
        return days, ticks
    return days, ticks, (offset or 0)


# ---- values on the wire --------------------------------------------------------------------


def _int_bytes(v: int, size: int) -> bytes:
    return v.to_bytes(size, "little", signed=size != 1)


#: Enough digits for decimal(38, s) arithmetic (the default context keeps 28).
WIDE = decimal.Context(prec=80)


def _decimal_payload(v: Decimal, wt: WireType) -> bytes:
    unscaled = int(v.scaleb(wt.scale, context=WIDE).to_integral_value(rounding=decimal.ROUND_HALF_UP, context=WIDE))
    nbytes = decimal_bytes(wt.precision)
    return bytes((1 if unscaled >= 0 else 0,)) + abs(unscaled).to_bytes(nbytes, "little")


def _money_payload(v: Decimal, size: int) -> bytes:
    units = int(v.scaleb(4, context=WIDE).to_integral_value(rounding=decimal.ROUND_HALF_UP, context=WIDE))
    if size == 4:
        return struct.pack("<i", units)
    return struct.pack("<iI", units >> 32, units & 0xFFFFFFFF)


def _datetime_payload(days: int, ticks: int, size: int) -> bytes:
    if size == 4:
        return struct.pack("<HH", days - T.DAYS_1900, ticks // (60 * T.TICKS_PER_SECOND))
    t300 = (ticks * 300 + T.TICKS_PER_SECOND // 2) // T.TICKS_PER_SECOND
    return struct.pack("<iI", days - T.DAYS_1900, t300)


def _time_payload(ticks: int, scale: int) -> bytes:
    units = ticks // 10 ** (7 - scale)
    return units.to_bytes(time_bytes(scale), "little")


def encode_plp(data: bytes) -> bytes:
    out = bytearray(struct.pack("<Q", len(data)))
    for i in range(0, len(data), PLP_CHUNK):
        chunk = data[i : i + PLP_CHUNK]
        out += struct.pack("<I", len(chunk))
        out += chunk
    out += b"\x00\x00\x00\x00"
    return bytes(out)


def _char_bytes(v: object, wt: WireType) -> bytes:
    s = v if isinstance(v, str) else str(v)
    if wt.tid in (NVARCHAR, NCHAR, NTEXT, XML):
        return s.encode("utf-16-le")
    return s.encode(codec_for(wt.collation), errors="replace")


def codec_for(collation: bytes) -> str:
    """Code page of a collation (only the common ones; UTF-8 collations too)."""
    if len(collation) == 5 and collation[3] & 0x04 and collation[4] == 0:
        return "utf-8"  # fUTF8 (SQL Server 2019 *_UTF8 collations)
    return CODEPAGE


def encode_value(wt: WireType, v: object) -> bytes:
    """One value as it appears in a ROW token (length prefix included)."""
    tid = wt.tid
    if tid in FIXED_SIZES:
        if v is None:
            raise ValueError("NULL in a NOT NULL fixed-length column")
        return _encode_payload(wt, v)
    if tid in USHORT_TYPES and wt.size != 0xFFFF:
        if v is None:
            return b"\xff\xff"
        payload = _char_bytes(v, wt) if tid in (BIGVARCHR, BIGCHAR, NVARCHAR, NCHAR) else bytes(v)  # type: ignore[arg-type]
        return struct.pack("<H", len(payload)) + payload
    if wt.is_plp or tid == XML:
        if v is None:
            return struct.pack("<Q", PLP_NULL)
        payload = _char_bytes(v, wt) if tid in (BIGVARCHR, NVARCHAR, XML) else bytes(v)  # type: ignore[arg-type]
        return encode_plp(payload)
    if tid in LEGACY_LOB_TYPES:
        if v is None:
            return b"\x00"
        payload = _char_bytes(v, wt) if tid != IMAGE else bytes(v)  # type: ignore[arg-type]
        return b"\x10" + TEXTPTR + TEXT_TIMESTAMP + struct.pack("<i", len(payload)) + payload
    # byte-length types
    if v is None:
        return b"\x00"
    payload = _encode_payload(wt, v)
    return bytes((len(payload),)) + payload


def _encode_payload(wt: WireType, v: object) -> bytes:
    tid = wt.tid
    if tid in (INT1, INT2, INT4, INT8):
        return _int_bytes(int(v), FIXED_SIZES[tid])  # type: ignore[call-overload]
    if tid == INTN:
        return _int_bytes(int(v), wt.size)  # type: ignore[call-overload]
    if tid in (BIT, BITN):
        return b"\x01" if v else b"\x00"
    if tid in (FLT4,) or (tid == FLTN and wt.size == 4):
        return struct.pack("<f", float(v))  # type: ignore[arg-type]
    if tid in (FLT8, FLTN):
        return struct.pack("<d", float(v))  # type: ignore[arg-type]
    if tid in (MONEY, MONEY4, MONEYN):
        return _money_payload(v, FIXED_SIZES.get(tid, wt.size))  # type: ignore[arg-type]
    if tid in DECIMAL_TYPES:
        return _decimal_payload(v, wt)  # type: ignore[arg-type]
    if tid in (DATETIME, DATETIM4, DATETIMN):
        days, ticks = v  # type: ignore[misc]
        return _datetime_payload(days, ticks, FIXED_SIZES.get(tid, wt.size))
    if tid == DATEN:
        return int(v).to_bytes(3, "little")  # type: ignore[call-overload]
    if tid == TIMEN:
        return _time_payload(int(v), wt.scale)  # type: ignore[call-overload]
    if tid == DATETIME2N:
        days, ticks = v  # type: ignore[misc]
        return _time_payload(ticks, wt.scale) + days.to_bytes(3, "little")
    if tid == DATETIMEOFFSETN:
        days, ticks, offset = v  # type: ignore[misc]
        udays, uticks = T.normalize(days, ticks - offset * 60 * T.TICKS_PER_SECOND)
        return _time_payload(uticks, wt.scale) + udays.to_bytes(3, "little") + struct.pack("<h", offset)
    if tid == GUID:
        u = v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))
        return u.bytes_le
    raise ValueError(f"cannot encode type {tid:#x}")


def read_plp(r: Reader) -> bytes | None:
    total = r.u64()
    if total == PLP_NULL:
        return None
    parts = []
    while True:
        n = r.u32()
        if n == 0:
            break
        parts.append(r.take(n))
    return b"".join(parts)


def read_value(r: Reader, wt: WireType, *, in_row: bool) -> object:
    """Decode one value (RPC parameter or bulk-load ROW) to the internal form.
    ``in_row``: legacy LOB values carry a text pointer (ROW form) instead of a
    plain 4-byte length (RPC form)."""
    tid = wt.tid
    if tid in FIXED_SIZES:
        raw = r.take(FIXED_SIZES[tid])
        return None if tid == NULLTYPE else _decode_payload(wt, raw)
    if tid in USHORT_TYPES and wt.size != 0xFFFF:
        n = r.u16()
        if n == 0xFFFF:
            return None
        return _decode_bytes(wt, r.take(n))
    if wt.is_plp or tid == XML:
        data = read_plp(r)
        return None if data is None else _decode_bytes(wt, data)
    if tid in LEGACY_LOB_TYPES:
        if in_row:
            ptr_len = r.u8()
            if ptr_len == 0:
                return None
            r.take(ptr_len + 8)
            n = r.i32()
        else:
            n = r.i32()
            if n == -1:
                return None
        return _decode_bytes(wt, r.take(n))
    if tid == SSVARIANT:
        n = r.i32()
        if n == 0:
            return None
        raise SqlError(8009, "sql_variant parameters are not supported by this test server")
    n = r.u8()
    if n == 0:
        return None
    raw = r.take(n)
    if tid in (CHAR, VARCHAR, BINARY, VARBINARY):
        return _decode_bytes(wt, raw)
    return _decode_payload(wt, raw)


def _decode_bytes(wt: WireType, raw: bytes) -> object:
    tid = wt.tid
    if tid in (NVARCHAR, NCHAR, NTEXT, XML):
        return raw.decode("utf-16-le", errors="replace")
    if tid in (BIGVARCHR, BIGCHAR, TEXT, CHAR, VARCHAR):
        return raw.decode(codec_for(wt.collation), errors="replace")
    return raw


def _decode_payload(wt: WireType, raw: bytes) -> object:
    tid = wt.tid
    size = len(raw)
    if tid in (INT1, INT2, INT4, INT8, INTN):
        return int.from_bytes(raw, "little", signed=size != 1)
    if tid in (BIT, BITN):
        return 1 if raw[0] else 0
    if tid in (FLT4, FLT8, FLTN):
        return struct.unpack("<f" if size == 4 else "<d", raw)[0]
    if tid in (MONEY, MONEY4, MONEYN):
        if size == 4:
            units = struct.unpack("<i", raw)[0]
        else:
            hi, lo = struct.unpack("<iI", raw)
            units = (hi << 32) | lo
        return Decimal(units).scaleb(-4, context=WIDE)
    if tid in DECIMAL_TYPES:
        sign = raw[0]
        mag = int.from_bytes(raw[1:], "little")
        d = Decimal(mag if sign else -mag).scaleb(-wt.scale, context=WIDE)
        return d
    if tid in (DATETIME, DATETIM4, DATETIMN):
        if size == 4:
            days, minutes = struct.unpack("<HH", raw)
            return T.DAYS_1900 + days, minutes * 60 * T.TICKS_PER_SECOND
        days, t300 = struct.unpack("<iI", raw)
        return T.DAYS_1900 + days, t300 * T.TICKS_PER_SECOND // 300
    if tid == DATEN:
        return int.from_bytes(raw, "little")
    if tid == TIMEN:
        return int.from_bytes(raw, "little") * 10 ** (7 - wt.scale)
    if tid == DATETIME2N:
        tb = size - 3
        ticks = int.from_bytes(raw[:tb], "little") * 10 ** (7 - wt.scale)
        return int.from_bytes(raw[tb:], "little"), ticks
    if tid == DATETIMEOFFSETN:
        tb = size - 5
        uticks = int.from_bytes(raw[:tb], "little") * 10 ** (7 - wt.scale)
        udays = int.from_bytes(raw[tb : tb + 3], "little")
        offset = struct.unpack("<h", raw[tb + 3 :])[0]
        days, ticks = T.normalize(udays, uticks + offset * 60 * T.TICKS_PER_SECOND)
        return days, ticks, offset
    if tid == GUID:
        return uuid.UUID(bytes_le=raw)
    raise ProtocolError(f"cannot decode type {tid:#x}")


# ---- typed value -> sqlite storage ------------------------------------------------------------


def to_storage(t: SqlType, v: object) -> object:
    """A typed value (internal form) as sqlite stores it: ints, floats, ISO
    text for temporal types, text for decimals and GUIDs, bytes for binary."""
    if v is None:
        return None
    n = t.name
    if n in ("decimal", "numeric", "money", "smallmoney"):
        d = v if isinstance(v, Decimal) else Decimal(str(v))
        return format(d, "f")
    if n == "date":
        return T.format_date(v)  # type: ignore[arg-type]
    if n == "time":
        return T.format_time(v)  # type: ignore[arg-type]
    if n in ("datetime2",):
        return T.format_datetime(*v)  # type: ignore[misc]
    if n == "datetime":
        return T.format_datetime(*T.normalize(v[0], T.round_ticks(v[1], 3)), 3)  # type: ignore[index]
    if n == "smalldatetime":
        return T.format_datetime(v[0], v[1], 0)  # type: ignore[index]
    if n == "datetimeoffset":
        return T.format_dto(*v)  # type: ignore[misc]
    if n == "uniqueidentifier":
        return str(v).upper()
    return v


def storage_type(v: object) -> SqlType:
    """The type of an untyped expression value (sqlite storage class)."""
    if isinstance(v, bool) or isinstance(v, int):
        return BIGINT
    if isinstance(v, float):
        return FLOAT
    if isinstance(v, (bytes, bytearray, memoryview)):
        return VARBINARY_MAX
    return NVARCHAR_MAX
