"""Shared parts of the differential tests (issue 12): random columns of every
dtype write_frame takes, with their extremes and NULLs, and an exact
cell-by-cell comparison.

An engine's test lists its columns (``Col``: SQL type, frame dtype, value
generator, what query() and the reference driver give back for each value),
builds one frame per seed with ``make_frame``, writes it with write_frame,
reads it back with query() and with the engine's reference Python driver, and
asserts that ``check_query`` and ``check_reference`` count no differing cell.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import struct
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

import polars as pl

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1)
SEEDS = (1, 2, 3)

# (precision, scale) of the decimal columns
DECIMALS = [(1, 0), (9, 2), (18, 6), (38, 0), (38, 10), (38, 38)]
# Python's datetimes (and so the reference drivers') hold years 1 to 9999.
FULL_RANGE = (dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999))
# Nanosecond Datetimes end in 1677 and 2262.
NS_RANGE = (dt.datetime(1677, 9, 22), dt.datetime(2262, 4, 11))
# A zoned Datetime's local time must stay within Python's years too.
ZONED_RANGE = (dt.datetime(1800, 1, 1), dt.datetime(2200, 1, 1))

Gen = Callable[[random.Random], Any]


def same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Col:
    """One column of the differential table."""

    name: str
    sql: str  # its SQL type in CREATE TABLE
    dtype: Any  # the frame's Polars dtype
    gen: Gen  # a random non-NULL value
    extremes: Sequence[Any]  # values every frame holds (its first rows)
    read_dtype: Any  # the dtype query() gives the column
    expect_query: Callable[[Any], Any] = same  # written value -> query()'s value
    expect_ref: Callable[[Any], Any] = same  # written value -> the reference driver's, converted
    ref: Callable[[Any], Any] = same  # the reference driver's raw value -> a comparable value


def column(name: str, sql: str, dtype: Any, values: tuple[Gen, Sequence[Any]], read_dtype: Any,
           **kw: Any) -> Col:
    """A Col from a (generator, extremes) pair such as ints() returns."""
    return Col(name, sql, dtype, values[0], values[1], read_dtype, **kw)


# ---- values -----------------------------------------------------------------------


def ints(lo: int, hi: int) -> tuple[Gen, list[int]]:
    def gen(rng: random.Random) -> int:
        if rng.random() < 0.5:
            return rng.randint(max(lo, -1000), min(hi, 1000))
        return rng.randint(lo, hi)

    return gen, sorted({lo, hi, 0, 1, max(lo, -1), lo + 1, hi - 1})


def floats(bits: int = 64, nan: bool = True, infinities: bool = True,
           negative_zero: bool = True) -> tuple[Gen, list[float]]:
    """Float64 or float32 values (as the doubles that hold them exactly):
    random bit patterns (every exponent, subnormals) and ordinary numbers."""
    fmt = "<d" if bits == 64 else "<f"

    def ok(v: float) -> bool:
        return ((nan or not math.isnan(v)) and (infinities or not math.isinf(v))
                and (negative_zero or not is_negative_zero(v)))

    def gen(rng: random.Random) -> float:
        while True:
            if rng.random() < 0.5:
                v = rng.uniform(-1e6, 1e6) if bits == 64 else to_f32(rng.uniform(-1e4, 1e4))
            else:
                (v,) = struct.unpack(fmt, rng.getrandbits(bits).to_bytes(bits // 8, "little"))
            if ok(v):
                return float(v)

    if bits == 64:
        tiny, smallest_normal, largest = 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308
    else:
        tiny, smallest_normal, largest = 1.401298464324817e-45, 1.1754943508222875e-38, 3.4028234663852886e38
    extremes = [0.0, -0.0, 1.0, -1.0, to_f32(0.1) if bits == 32 else 0.1, tiny, -tiny, smallest_normal,
                largest, -largest, math.inf, -math.inf, math.nan]
    return gen, [v for v in extremes if ok(v)]


def to_f32(v: float) -> float:
    (out,) = struct.unpack("<f", struct.pack("<f", v))
    return float(out)


def is_negative_zero(v: float) -> bool:
    return v == 0.0 and math.copysign(1.0, v) < 0


def decimals(precision: int, scale: int) -> tuple[Gen, list[Decimal]]:
    """Decimals of exactly `scale` fraction digits within `precision`: any
    number of significant digits, then zeros."""

    def gen(rng: random.Random) -> Decimal:
        digits = rng.randint(1, precision)
        unscaled = rng.randint(0, 10**digits - 1) * 10 ** rng.randint(0, precision - digits)
        return scaled(-unscaled if rng.random() < 0.5 else unscaled, scale)

    largest = 10**precision - 1
    return gen, [scaled(v, scale) for v in (0, 1, -1, largest, -largest, 10 ** (precision - 1))]


def scaled(unscaled: int, scale: int) -> Decimal:
    """unscaled * 10**-scale, with exactly `scale` fraction digits."""
    sign = 1 if unscaled < 0 else 0
    return Decimal((sign, tuple(int(c) for c in str(abs(unscaled))), -scale))


TEXT_ALPHABET = (
    "abcXYZ019 _-'\"\\%;,.\t\n\r"  # quotes, backslashes and COPY's separators
    "\u00e9\u00df\u00f1\u00a0"  # Latin-1
    "\u20ac\u4e2d\u6587\u0416\u05d0\u0627\u2028\ufeff\u0301"  # BMP: CJK, RTL, combining, BOM
    "\U0001f600\U0001f9d1\U00010348\U0010fffd"  # astral
)


def texts(alphabet: str = TEXT_ALPHABET, nul: bool = True, long: int = 100_000) -> tuple[Gen, list[str]]:
    """Strings of the alphabet (plus NUL when the engine stores it), now and
    then one of `long` characters."""
    chars = alphabet + ("\x00" if nul else "")

    def gen(rng: random.Random) -> str:
        if rng.random() < 0.002:  # a random block, repeated
            block = "".join(rng.choices(chars, k=min(long, 1000)))
            return block * (long // len(block))
        return "".join(rng.choices(chars, k=rng.randint(0, min(long, 40))))

    extremes = ["", " ", "'", '"', "\\", "\\\\", "\\N", "\\.", "\\x00", "\t\n\r", "\r\n", "NULL", chars,
                (chars * (long // len(chars) + 1))[:long]]
    if nul:
        extremes += ["\x00", "a\x00b"]
    return gen, [s for s in extremes if all(c in chars for c in s) and len(s) <= long]


def binaries(long: int = 100_000) -> tuple[Gen, list[bytes]]:
    """Random bytes, now and then `long` of them."""

    def gen(rng: random.Random) -> bytes:
        return rng.randbytes(long if rng.random() < 0.002 else rng.randint(0, min(long, 40)))

    extremes = [b"", b"\x00", b"\x00\x00", b"\\", b"\\N", bytes(range(256)), b"\xff" * long]
    return gen, [b for b in extremes if len(b) <= long]


def guids() -> tuple[Gen, list[str]]:
    """GUID texts, in either case, sometimes in braces."""

    def gen(rng: random.Random) -> str:
        text = str(uuid.UUID(int=rng.getrandbits(128)))
        return text.upper() if rng.random() < 0.5 else text

    return gen, ["6F9619FF-8B86-D011-B42D-00C04FC964FF", "00000000-0000-0000-0000-000000000000",
                 "ffffffff-ffff-ffff-ffff-ffffffffffff", "{12345678-1234-5678-1234-567812345678}"]


def canonical_guid(text: str) -> str:
    """The lowercase form query() gives a uuid / uniqueidentifier."""
    return str(uuid.UUID(text))


def guid_text(value: Any) -> Any:
    """A reference driver's uuid.UUID as canonical_guid's text."""
    return str(value) if isinstance(value, uuid.UUID) else value


def choices(values: Sequence[Any]) -> tuple[Gen, list[Any]]:
    return (lambda rng: rng.choice(values)), list(values)


def dates(lo: dt.date = dt.date.min, hi: dt.date = dt.date.max) -> tuple[Gen, list[dt.date]]:
    def gen(rng: random.Random) -> dt.date:
        return dt.date.fromordinal(rng.randint(lo.toordinal(), hi.toordinal()))

    extremes = [lo, hi, dt.date(1970, 1, 1), dt.date(1969, 12, 31), dt.date(2000, 2, 29),
                dt.date(1900, 1, 1), dt.date(1899, 12, 31), dt.date(1582, 10, 10)]
    return gen, [d for d in extremes if lo <= d <= hi]


def datetimes(lo: dt.datetime, hi: dt.datetime, step_us: int = 1,
              aware: bool = False) -> tuple[Gen, list[dt.datetime]]:
    """Instants between lo and hi (naive, as UTC when `aware`), whole
    multiples of step_us."""
    lo_us, hi_us = micros(lo) // step_us, micros(hi) // step_us

    def at(ticks: int) -> dt.datetime:
        v = EPOCH + dt.timedelta(microseconds=ticks * step_us)
        return v.replace(tzinfo=UTC) if aware else v

    def gen(rng: random.Random) -> dt.datetime:
        return at(rng.randint(lo_us, hi_us))

    marks = [dt.datetime(1970, 1, 1), dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
             dt.datetime(2000, 1, 1), dt.datetime(1900, 1, 1), dt.datetime(1899, 12, 31, 23, 59, 59, 999999),
             dt.datetime(2024, 2, 29, 12, 34, 56, 789012)]
    extremes = [at(lo_us), at(hi_us)] + [at(micros(m) // step_us) for m in marks if lo <= m <= hi]
    return gen, extremes


def micros(v: dt.datetime) -> int:
    return (v - EPOCH) // dt.timedelta(microseconds=1)


def times() -> tuple[Gen, list[dt.time]]:
    def gen(rng: random.Random) -> dt.time:
        us = rng.randrange(86_400_000_000)
        return (dt.datetime.min + dt.timedelta(microseconds=us)).time()

    return gen, [dt.time(0), dt.time(23, 59, 59, 999999), dt.time(12), dt.time(0, 0, 0, 1)]


# ---- the frame ----------------------------------------------------------------------


NULL_SHARE = 0.1


def make_frame(columns: Iterable[Col], seed: int, rows: int) -> pl.DataFrame:
    """`rows` rows: column id 0..rows-1, and per column its extremes in the
    first rows, then random values, each cell NULL with NULL_SHARE."""
    rng = random.Random(seed)
    data: dict[str, pl.Series] = {"id": pl.Series("id", range(rows), dtype=pl.Int64)}
    for col in columns:
        values: list[Any] = list(col.extremes)[:rows]
        for _ in range(rows - len(values)):
            if rng.random() < NULL_SHARE:
                values.append(None)
            elif col.extremes and rng.random() < 0.05:
                values.append(rng.choice(col.extremes))
            else:
                values.append(col.gen(rng))
        data[col.name] = series(col, values)
    return pl.DataFrame(data)


def layout(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """The frame to hand write_frame: for the first seed the frame itself,
    for the others the same rows exported as arrays that start some rows
    into their buffers (not a multiple of 8: validity and boolean bits
    mid-byte)."""
    offset = (seed - SEEDS[0]) * 5 % 16
    if offset == 0:
        return frame
    return pl.concat([frame.head(offset), frame], rechunk=True).slice(offset)


def series(col: Col, values: list[Any]) -> pl.Series:
    dtype = col.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone not in (None, "UTC"):
        utc = pl.Series(col.name, values, dtype=pl.Datetime(dtype.time_unit, "UTC"))
        return utc.dt.convert_time_zone(dtype.time_zone)
    if dtype == pl.Null:
        return pl.Series(col.name, [None] * len(values), dtype=pl.Null)
    return pl.Series(col.name, values, dtype=dtype)


def written(frame: pl.DataFrame, col: Col) -> list[Any]:
    """The column's Python values as written (categories as their strings)."""
    s = frame[col.name]
    if isinstance(s.dtype, (pl.Categorical, pl.Enum)):
        s = s.cast(pl.String)
    return s.to_list()


def create_table_sql(table: str, columns: Iterable[Col], quote: str = '"') -> str:
    cols = ", ".join(f"{quote[0]}{c.name}{quote[-1]} {c.sql}" for c in columns)
    return f"CREATE TABLE {table} (id BIGINT NOT NULL PRIMARY KEY, {cols})"


# ---- comparing ----------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """A form that is equal only for exactly equal values: floats by their
    bits (-0.0 is not 0.0; NaN equals NaN), aware datetimes as UTC instants,
    and the type named so that True is not 1 and b"" is not ""."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value) if not math.isnan(value) else "nan")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return ("aware", value.astimezone(UTC).replace(tzinfo=None))
        return ("naive", value)
    if isinstance(value, Decimal):
        return ("decimal", value) if value.is_finite() else ("decimal", str(value))
    return (type(value).__name__, value)


@dataclass
class Report:
    """Differing cells per column, with the first few examples."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def add(self, column: str, row: int, expected: Any, got: Any) -> None:
        self.counts[column] = self.counts.get(column, 0) + 1
        if len(self.examples) < 20:
            self.examples.append(f"{column} row {row}: expected {short(expected)}, got {short(got)}")

    def __str__(self) -> str:
        return f"{self.counts}\n" + "\n".join(self.examples)


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:120]}...({len(text)} chars)...{text[-40:]}"


def compare(report: Report, column: str, expected: Sequence[Any], got: Sequence[Any]) -> None:
    if len(expected) != len(got):
        report.add(column, -1, f"{len(expected)} rows", f"{len(got)} rows")
        return
    for row, (e, g) in enumerate(zip(expected, got)):
        if canonical(e) != canonical(g):
            report.add(column, row, e, g)


def check_query(frame: pl.DataFrame, back: pl.DataFrame, columns: Sequence[Col]) -> Report:
    """query()'s frame against the written one: dtypes, then every cell."""
    report = Report()
    compare(report, "id", frame["id"].to_list(), back["id"].to_list())
    for col in columns:
        if back[col.name].dtype != col.read_dtype:
            report.add(col.name, -1, f"dtype {col.read_dtype}", f"dtype {back[col.name].dtype}")
            continue
        expected = [None if v is None else col.expect_query(v) for v in written(frame, col)]
        compare(report, col.name, expected, back[col.name].to_list())
    return report


def check_reference(frame: pl.DataFrame, rows: Sequence[Sequence[Any]], columns: Sequence[Col]) -> Report:
    """The reference driver's rows (id first, then the columns in order)
    against the written frame."""
    report = Report()
    compare(report, "id", frame["id"].to_list(), [r[0] for r in rows])
    for k, col in enumerate(columns, start=1):
        expected = [None if v is None else col.expect_ref(v) for v in written(frame, col)]
        got = [None if r[k] is None else col.ref(r[k]) for r in rows]
        compare(report, col.name, expected, got)
    return report


def assert_covered(frame: pl.DataFrame, columns: Sequence[Col]) -> None:
    """Each column of the frame has NULLs, and values unless it is the Null dtype."""
    for col in columns:
        s = frame[col.name]
        assert s.null_count() > 0, col.name
        assert col.dtype == pl.Null or s.null_count() < len(s), col.name
