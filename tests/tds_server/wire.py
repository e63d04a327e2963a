"""Byte-level helpers shared by every part of the protocol: a bounds-checked
reader over a message payload and small writers for the TDS length-prefixed
string forms (B_VARCHAR, US_VARCHAR, B_VARBYTE).

All multi-byte integers in TDS token streams are little-endian; only the
packet header and PRELOGIN option table are big-endian (see packets.py and
login.py).
"""

from __future__ import annotations

import struct


class ProtocolError(Exception):
    """The client sent bytes that do not follow MS-TDS; the session ends."""


class Reader:
    """Sequential little-endian reader over one reassembled message."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self.data = bytes(data)
        self.pos = pos

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError(f"truncated message: need {n} bytes at offset {self.pos}, have {self.remaining()}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def peek_u8(self) -> int:
        if self.pos >= len(self.data):
            raise ProtocolError("truncated message: expected a byte")
        return self.data[self.pos]

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack_from("<H", self.take(2))[0])

    def u16be(self) -> int:
        return int(struct.unpack_from(">H", self.take(2))[0])

    def i16(self) -> int:
        return int(struct.unpack_from("<h", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack_from("<I", self.take(4))[0])

    def i32(self) -> int:
        return int(struct.unpack_from("<i", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack_from("<Q", self.take(8))[0])

    def i64(self) -> int:
        return int(struct.unpack_from("<q", self.take(8))[0])

    def ucs2(self, nchars: int) -> str:
        return self.take(2 * nchars).decode("utf-16-le")

    def b_varchar(self) -> str:
        """1-byte character count, then UCS-2."""
        return self.ucs2(self.u8())

    def us_varchar(self) -> str:
        """2-byte character count, then UCS-2."""
        return self.ucs2(self.u16())


def u8(v: int) -> bytes:
    return struct.pack("<B", v)


def u16(v: int) -> bytes:
    return struct.pack("<H", v)


def i16(v: int) -> bytes:
    return struct.pack("<h", v)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def i32(v: int) -> bytes:
    return struct.pack("<i", v)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def b_varchar(s: str) -> bytes:
    raw = s.encode("utf-16-le")
    if len(raw) // 2 > 255:
        raise ValueError("B_VARCHAR longer than 255 characters")
    return bytes((len(raw) // 2,)) + raw


def us_varchar(s: str) -> bytes:
    raw = s.encode("utf-16-le")
    return struct.pack("<H", len(raw) // 2) + raw


def b_varbyte(b: bytes) -> bytes:
    return bytes((len(b),)) + b
