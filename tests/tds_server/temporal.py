"""Date/time values as SQL Server keeps them, without Python's datetime
(which stops at microseconds and cannot hold 23:59:59.9999999).

Internal form: ``days`` since 0001-01-01 and ``ticks`` of 100 ns since
midnight; a datetimeoffset adds the offset in minutes and keeps the *local*
date and time (the wire form is UTC plus the offset). sqlite stores them as
ISO text: ``YYYY-MM-DD``, ``HH:MM:SS.fffffff``, ``YYYY-MM-DD HH:MM:SS.fffffff``
and ``YYYY-MM-DD HH:MM:SS.fffffff +HH:MM``.
"""

from __future__ import annotations

import datetime as _dt
import re

TICKS_PER_SECOND = 10_000_000
TICKS_PER_DAY = 86_400 * TICKS_PER_SECOND
MAX_DAYS = _dt.date(9999, 12, 31).toordinal() - 1
DAYS_1900 = _dt.date(1900, 1, 1).toordinal() - 1
DAYS_1753 = _dt.date(1753, 1, 1).toordinal() - 1
DAYS_2079 = _dt.date(2079, 6, 6).toordinal() - 1

_ISO = re.compile(
    r"""^\s*
    (?:(?P<y>\d{4})-?(?P<mo>\d{2})-?(?P<d>\d{2}))?      # date (optional for time-only text)
    (?:[ T]*(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{0,9}))?)?)?
    \s*(?P<tz>Z|[+-]\d{2}:?\d{2})?\s*$""",
    re.X,
)


class TemporalParseError(ValueError):
    pass


def date_to_days(y: int, m: int, d: int) -> int:
    return _dt.date(y, m, d).toordinal() - 1


def days_to_ymd(days: int) -> tuple[int, int, int]:
    d = _dt.date.fromordinal(days + 1)
    return d.year, d.month, d.day


def parse(text: str) -> tuple[int | None, int | None, int | None]:
    """ISO-ish text -> (days or None, ticks or None, offset minutes or None)."""
    m = _ISO.match(text)
    if not m or (m.group("y") is None and m.group("h") is None):
        raise TemporalParseError(text)
    days = ticks = offset = None
    try:
        if m.group("y") is not None:
            days = date_to_days(int(m.group("y")), int(m.group("mo")), int(m.group("d")))
        if m.group("h") is not None:
            h, mi, s = int(m.group("h")), int(m.group("mi")), int(m.group("s") or 0)
            if h > 23 or mi > 59 or s > 59:
                raise TemporalParseError(text)
            frac = (m.group("f") or "")[:7].ljust(7, "0")
            ticks = ((h * 60 + mi) * 60 + s) * TICKS_PER_SECOND + int(frac)
    except ValueError as exc:
        raise TemporalParseError(text) from exc
    tz = m.group("tz")
    if tz:
        if tz == "Z":
            offset = 0
        else:
            digits = tz[1:].replace(":", "")
            offset = int(digits[:2]) * 60 + int(digits[2:])
            if tz[0] == "-":
                offset = -offset
            if abs(offset) > 14 * 60:
                raise TemporalParseError(text)
    return days, ticks, offset


def round_ticks(ticks: int, scale: int) -> int:
    """Ticks rounded to ``scale`` fractional digits (still in 100 ns units)."""
    unit = 10 ** (7 - scale)
    return (ticks + unit // 2) // unit * unit


def normalize(days: int, ticks: int) -> tuple[int, int]:
    extra, ticks = divmod(ticks, TICKS_PER_DAY)
    return days + extra, ticks


def format_date(days: int) -> str:
    y, m, d = days_to_ymd(days)
    return f"{y:04d}-{m:02d}-{d:02d}"


def format_time(ticks: int, digits: int = 7) -> str:
    secs, frac = divmod(ticks, TICKS_PER_SECOND)
    h, rest = divmod(secs, 3600)
    mi, s = divmod(rest, 60)
    out = f"{h:02d}:{mi:02d}:{s:02d}"
    if digits:
        out += "." + f"{frac:07d}"[:digits]
    return out


def format_datetime(days: int, ticks: int, digits: int = 7) -> str:
    return f"{format_date(days)} {format_time(ticks, digits)}"


def format_offset(offset: int) -> str:
    sign = "-" if offset < 0 else "+"
    h, m = divmod(abs(offset), 60)
    return f"{sign}{h:02d}:{m:02d}"


def format_dto(days: int, ticks: int, offset: int, digits: int = 7) -> str:
    return f"{format_datetime(days, ticks, digits)} {format_offset(offset)}"


def from_python(value: object) -> tuple[int | None, int | None, int | None]:
    """datetime/date/time objects -> (days, ticks, offset)."""
    if isinstance(value, _dt.datetime):
        days = value.date().toordinal() - 1
        ticks = ((value.hour * 60 + value.minute) * 60 + value.second) * TICKS_PER_SECOND + value.microsecond * 10
        off = value.utcoffset()
        return days, ticks, (int(off.total_seconds()) // 60 if off is not None else None)
    if isinstance(value, _dt.date):
        return value.toordinal() - 1, None, None
    if isinstance(value, _dt.time):
        ticks = ((value.hour * 60 + value.minute) * 60 + value.second) * TICKS_PER_SECOND + value.microsecond * 10
        return None, ticks, None
    raise TemporalParseError(repr(value))


def now_local() -> tuple[int, int, int]:
    now = _dt.datetime.now().astimezone()
    days, ticks, off = from_python(now)
    assert days is not None and ticks is not None and off is not None
    return days, ticks, off
