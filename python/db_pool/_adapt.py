"""Parameter values beyond the ones the C binding reads directly.

The binding handles None, bool, int, float, str, bytes, Decimal and the
datetime types itself (the fast path). Anything else comes here once per value
and is either turned into one of those (an Enum's value, a numpy scalar's
Python value, a buffer's bytes) or tagged with a kind the engines bind to
their own type: uuid, json, inet, interval, array. ``None`` means the type
cannot be bound; the binding then raises ProgrammingError naming the
parameter.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import json
import math
import uuid
from decimal import Decimal
from typing import Any, Union

# (kind, payload): "value" re-binds payload; "uuid", "json", "inet" carry
# text; "interval" carries microseconds; "array" carries (literal, element).
Adapted = Union[tuple[str, Any], None]

_IP_TYPES = (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network,
             ipaddress.IPv6Network, ipaddress.IPv4Interface, ipaddress.IPv6Interface)


def interval_us(value: dt.timedelta) -> int:
    return (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds


def adapt(value: Any) -> Adapted:
    if isinstance(value, uuid.UUID):
        return ("uuid", str(value))
    if isinstance(value, dt.timedelta):
        return ("interval", interval_us(value))
    if isinstance(value, dict):
        return ("json", _json(value))
    if isinstance(value, (list, tuple)):
        return ("array", _array(value))
    if isinstance(value, _IP_TYPES):
        return ("inet", str(value))
    if isinstance(value, enum.Enum):
        return ("value", value.value)
    if type(value).__module__ == "numpy":
        return ("value", _from_numpy(value))
    try:
        return ("value", bytes(memoryview(value)))  # any other bytes-like object
    except TypeError:
        return None


def _json(value: Any) -> str:
    # JSON has no NaN or Infinity: refuse them rather than write invalid JSON.
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _from_numpy(value: Any) -> Any:
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:
        return value.tolist()  # an ndarray: a (nested) list
    item = value.item()
    if value.dtype.kind in "mM" and isinstance(item, int):
        raise ValueError(f"numpy {value.dtype} values below microseconds cannot be bound "
                         "exactly; convert to microsecond precision first")
    return item


# ---- arrays: the {a,b,"c d"} literal form -------------------------------------

def _array(values: list[Any] | tuple[Any, ...]) -> tuple[str, str | None]:
    """The literal of a (nested) list and the one kind of its elements."""
    kinds: set[str] = set()
    literal = _literal(values, kinds)
    if kinds == {"int", "float"}:
        kinds = {"float"}
    if len(kinds) > 1:
        raise ValueError(f"array elements must be of one type, not {', '.join(sorted(kinds))}")
    return literal, kinds.pop() if kinds else None


def _literal(values: list[Any] | tuple[Any, ...], kinds: set[str]) -> str:
    parts = []
    for v in values:
        if isinstance(v, (list, tuple)):
            parts.append(_literal(v, kinds))
        elif v is None:
            parts.append("NULL")
        else:
            kind, text = _element(v)
            kinds.add(kind)
            parts.append(text)
    return "{" + ",".join(parts) + "}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _element(v: Any) -> tuple[str, str]:
    """(kind, literal text) of one array element."""
    if isinstance(v, enum.Enum):
        v = v.value
    if type(v).__module__ == "numpy":
        v = _from_numpy(v)
    if isinstance(v, bool):
        return "bool", "t" if v else "f"
    if isinstance(v, int):
        return "int", str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "float", "NaN"
        if math.isinf(v):
            return "float", "Infinity" if v > 0 else "-Infinity"
        return "float", repr(v)
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise ValueError("Decimal NaN and Infinity cannot be stored exactly")
        return "decimal", str(v)
    if isinstance(v, str):
        return "text", _quote(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "bytes", _quote("\\x" + bytes(v).hex())
    if isinstance(v, dt.datetime):
        return ("timestamptz" if v.utcoffset() is not None else "timestamp"), _quote(v.isoformat())
    if isinstance(v, dt.date):
        return "date", _quote(v.isoformat())
    if isinstance(v, dt.time):
        if v.tzinfo is not None:
            raise ValueError("time values with a time zone are not supported")
        return "time", _quote(v.isoformat())
    if isinstance(v, uuid.UUID):
        return "uuid", _quote(str(v))
    if isinstance(v, dt.timedelta):
        return "interval", _quote(f"{interval_us(v)} microseconds")
    if isinstance(v, dict):
        return "json", _quote(_json(v))
    if isinstance(v, _IP_TYPES):
        return "inet", _quote(str(v))
    raise ValueError(f"array elements of type '{type(v).__name__}' cannot be bound")
