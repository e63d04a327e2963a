"""PRELOGIN (MS-TDS 2.2.6.5) and LOGIN7 (2.2.6.4): parsing the client's
messages, choosing the encryption mode, and the login reply."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .wire import ProtocolError, Reader

# PRELOGIN option tokens.
PL_VERSION = 0x00
PL_ENCRYPTION = 0x01
PL_INSTOPT = 0x02
PL_THREADID = 0x03
PL_MARS = 0x04
PL_TRACEID = 0x05
PL_FEDAUTHREQUIRED = 0x06
PL_NONCEOPT = 0x07
PL_TERMINATOR = 0xFF

# Encryption values.
ENCRYPT_OFF = 0x00
ENCRYPT_ON = 0x01
ENCRYPT_NOT_SUP = 0x02
ENCRYPT_REQ = 0x03

#: What the server says about itself (SQL Server 2019 CU-ish).
SERVER_VERSION = (15, 0, 4000)

TDS74 = 0x74000004
TDS73B = 0x730B0003
TDS73A = 0x730A0003
TDS72 = 0x72090002
TDS71 = 0x71000001


def parse_prelogin(payload: bytes) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    pos = 0
    while True:
        if pos >= len(payload):
            raise ProtocolError("PRELOGIN without terminator")
        token = payload[pos]
        if token == PL_TERMINATOR:
            break
        if pos + 5 > len(payload):
            raise ProtocolError("truncated PRELOGIN option table")
        offset, length = struct.unpack_from(">HH", payload, pos + 1)
        if offset + length > len(payload):
            raise ProtocolError("PRELOGIN option points outside the message")
        options[token] = payload[offset : offset + length]
        pos += 5
    return options


def negotiate_encryption(client_value: int, tls_mode: str) -> tuple[int, str]:
    """Server reply byte and what follows: 'none', 'login' (only LOGIN7 is
    encrypted) or 'full'.

    tls_mode 'off': the server has no certificate (ENCRYPT_NOT_SUP).
    'on': encryption available, not forced (client OFF -> login-only).
    'require': forced (client OFF -> ENCRYPT_REQ and full encryption).
    """
    if tls_mode == "off":
        return ENCRYPT_NOT_SUP, "none"
    if client_value == ENCRYPT_NOT_SUP:
        return (ENCRYPT_REQ, "refuse") if tls_mode == "require" else (ENCRYPT_NOT_SUP, "none")
    if client_value == ENCRYPT_OFF:
        return (ENCRYPT_REQ, "full") if tls_mode == "require" else (ENCRYPT_OFF, "login")
    return ENCRYPT_ON, "full"


def build_prelogin_response(encryption: int) -> bytes:
    major, minor, build = SERVER_VERSION
    opts = [
        (PL_VERSION, struct.pack(">BBHH", major, minor, build, 0)),
        (PL_ENCRYPTION, bytes((encryption,))),
        (PL_INSTOPT, b"\x00"),
        (PL_THREADID, b""),
        (PL_MARS, b"\x00"),
    ]
    table_len = 5 * len(opts) + 1
    table = bytearray()
    data = bytearray()
    for token, value in opts:
        table += struct.pack(">BHH", token, table_len + len(data), len(value))
        data += value
    table.append(PL_TERMINATOR)
    return bytes(table + data)


def descramble_password(raw: bytes) -> str:
    """LOGIN7 passwords: each byte was nibble-swapped, then XORed with 0xA5."""
    out = bytearray()
    for b in raw:
        x = b ^ 0xA5
        out.append(((x & 0x0F) << 4) | (x >> 4))
    return out.decode("utf-16-le", errors="replace")


def scramble_password(password: str) -> bytes:
    out = bytearray()
    for b in password.encode("utf-16-le"):
        out.append((((b & 0x0F) << 4) | (b >> 4)) ^ 0xA5)
    return bytes(out)


@dataclass
class Login7:
    tds_version: int
    packet_size: int
    client_prog_version: int
    client_pid: int
    option_flags1: int
    option_flags2: int
    type_flags: int
    option_flags3: int
    hostname: str = ""
    username: str = ""
    password: str = ""
    app_name: str = ""
    server_name: str = ""
    library: str = ""
    language: str = ""
    database: str = ""
    features: list[int] = field(default_factory=list)
    sspi: bool = False

    @property
    def read_only_intent(self) -> bool:
        return bool(self.type_flags & 0x20)


def parse_login7(payload: bytes) -> Login7:
    if len(payload) < 94:
        raise ProtocolError("LOGIN7 shorter than its fixed part")
    r = Reader(payload)
    length = r.u32()
    if length > len(payload):
        raise ProtocolError("LOGIN7 length field larger than the message")
    tds_version = r.u32()
    packet_size = r.u32()
    client_prog_version = r.u32()
    client_pid = r.u32()
    r.u32()  # connection id
    f1, f2, tf, f3 = r.u8(), r.u8(), r.u8(), r.u8()
    r.i32()  # client time zone
    r.u32()  # client LCID

    def field_at(offset: int) -> tuple[int, int]:
        return struct.unpack_from("<HH", payload, offset)

    def text(offset: int) -> str:
        ib, cch = field_at(offset)
        if cch == 0:
            return ""
        if ib + 2 * cch > len(payload):
            raise ProtocolError("LOGIN7 field points outside the message")
        return payload[ib : ib + 2 * cch].decode("utf-16-le", errors="replace")

    login = Login7(tds_version, packet_size, client_prog_version, client_pid, f1, f2, tf, f3)
    login.hostname = text(36)
    login.username = text(40)
    ib, cch = field_at(44)
    login.password = descramble_password(payload[ib : ib + 2 * cch])
    login.app_name = text(48)
    login.server_name = text(52)
    login.library = text(60)
    login.language = text(64)
    login.database = text(68)
    ib_sspi, cb_sspi = field_at(78)
    login.sspi = cb_sspi > 0 or bool(f2 & 0x80)
    if f3 & 0x10:  # fExtension: ibExtension points at a DWORD offset of the FeatureExt block
        ib_ext, cb_ext = field_at(56)
        if cb_ext >= 4 and ib_ext + 4 <= len(payload):
            feat_off = struct.unpack_from("<I", payload, ib_ext)[0]
            pos = feat_off
            while 0 < pos < len(payload) and payload[pos] != 0xFF:
                if pos + 5 > len(payload):
                    break
                fid = payload[pos]
                flen = struct.unpack_from("<I", payload, pos + 1)[0]
                login.features.append(fid)
                pos += 5 + flen
    return login


def reply_tds_version(client_version: int) -> int:
    """The version the server agrees to: the client's when it is 7.3 or 7.4
    (this server always encodes values the 7.3+ way)."""
    if client_version in (TDS74, TDS73A, TDS73B):
        return client_version
    if client_version > TDS74:
        return TDS74
    return client_version
