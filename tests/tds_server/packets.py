"""TDS packet framing (MS-TDS 2.2.3): the 8-byte header, reassembling a
client message from packets up to the EOM bit, and splitting an outgoing
message into packets of the negotiated size.

Header: Type(1) Status(1) Length(2, big-endian, header included) SPID(2, BE)
PacketID(1) Window(1).
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Protocol

from .wire import ProtocolError

HEADER_LEN = 8

# Packet types.
SQL_BATCH = 0x01
PRE_TDS7_LOGIN = 0x02
RPC = 0x03
TABULAR_RESULT = 0x04
ATTENTION = 0x06
BULK_LOAD = 0x07
FEDAUTH_TOKEN = 0x08
TRANSACTION_MANAGER = 0x0E
LOGIN7 = 0x10
SSPI = 0x11
PRELOGIN = 0x12

PACKET_TYPE_NAMES = {
    SQL_BATCH: "SQL_BATCH",
    PRE_TDS7_LOGIN: "PRE_TDS7_LOGIN",
    RPC: "RPC",
    TABULAR_RESULT: "TABULAR_RESULT",
    ATTENTION: "ATTENTION",
    BULK_LOAD: "BULK_LOAD",
    FEDAUTH_TOKEN: "FEDAUTH_TOKEN",
    TRANSACTION_MANAGER: "TRANSACTION_MANAGER",
    LOGIN7: "LOGIN7",
    SSPI: "SSPI",
    PRELOGIN: "PRELOGIN",
}

# Status bits.
STATUS_EOM = 0x01
STATUS_IGNORE = 0x02
STATUS_RESETCONNECTION = 0x08
STATUS_RESETCONNECTIONSKIPTRAN = 0x10

DEFAULT_PACKET_SIZE = 4096
MIN_PACKET_SIZE = 512
MAX_PACKET_SIZE = 32767
#: Refuse client messages larger than this (protects the test machine).
MAX_MESSAGE_SIZE = 256 * 1024 * 1024


class ConnectionClosed(Exception):
    """The peer closed the connection (or we must stop using it)."""


class Channel(Protocol):
    """A byte stream: plain TCP, or TLS over it (tls.py)."""

    async def read_exactly(self, n: int) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    def abort(self) -> None: ...


class PlainChannel:
    """The TCP connection itself."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read_exactly(self, n: int) -> bytes:
        try:
            return await self.reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ConnectionClosed() from exc

    async def read_some(self, n: int) -> bytes:
        try:
            data = await self.reader.read(n)
        except ConnectionError as exc:
            raise ConnectionClosed() from exc
        if not data:
            raise ConnectionClosed()
        return data

    async def write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionClosed() from exc

    def abort(self) -> None:
        transport = self.writer.transport
        if transport is not None:
            transport.abort()


@dataclass
class Message:
    """One client message: all packets up to EOM, payloads concatenated."""

    type: int
    status: int  # status byte of the first packet (reset-connection bits live there)
    payload: bytes

    @property
    def type_name(self) -> str:
        return PACKET_TYPE_NAMES.get(self.type, f"0x{self.type:02x}")


def build_header(ptype: int, status: int, length: int, spid: int, packet_id: int) -> bytes:
    return struct.pack(">BBHHBB", ptype, status, length, spid, packet_id & 0xFF, 0)


class PacketStream:
    """Reads client messages and writes server messages over a Channel."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.spid = 0
        self.max_packet_len = 0  # largest packet the client sent (shows the packet size it uses)

    async def read_packet(self) -> tuple[int, int, bytes]:
        header = await self.channel.read_exactly(HEADER_LEN)
        ptype, status, length, _spid, _pid, _window = struct.unpack(">BBHHBB", header)
        if length < HEADER_LEN:
            raise ProtocolError(f"packet length {length} shorter than its header")
        self.max_packet_len = max(self.max_packet_len, length)
        payload = await self.channel.read_exactly(length - HEADER_LEN) if length > HEADER_LEN else b""
        return ptype, status, payload

    async def read_message(self) -> Message:
        """Next complete message; messages the client cancelled with the
        IGNORE bit are dropped."""
        while True:
            ptype, status, payload = await self.read_packet()
            first_status = status
            parts = [payload]
            size = len(payload)
            while not status & STATUS_EOM:
                ptype2, status, payload = await self.read_packet()
                if ptype2 != ptype:
                    raise ProtocolError(f"packet type changed inside a message ({ptype:#x} -> {ptype2:#x})")
                parts.append(payload)
                size += len(payload)
                if size > MAX_MESSAGE_SIZE:
                    raise ProtocolError("client message too large")
            if status & STATUS_IGNORE:
                continue
            return Message(ptype, first_status, b"".join(parts))

    async def send_message(self, ptype: int, payload: bytes, packet_size: int) -> None:
        """Whole message at once, split into packets (the last one has EOM)."""
        chunk = packet_size - HEADER_LEN
        out = bytearray()
        packet_id = 1
        pos = 0
        while True:
            part = payload[pos : pos + chunk]
            pos += len(part)
            last = pos >= len(payload)
            out += build_header(ptype, STATUS_EOM if last else 0, HEADER_LEN + len(part), self.spid, packet_id)
            out += part
            packet_id += 1
            if last:
                break
        await self.channel.write(bytes(out))


class MessageWriter:
    """Streams one server message: buffered token bytes go out as full
    packets as soon as a packet's worth is ready; finish() sends the rest
    with EOM. Between packets the event loop runs, so an ATTENTION from the
    client is noticed while a large result is still being sent."""

    def __init__(self, stream: PacketStream, packet_size: int, ptype: int = TABULAR_RESULT) -> None:
        self.stream = stream
        self.packet_size = packet_size
        self.ptype = ptype
        self.buf = bytearray()
        self.packet_id = 1
        self.packets_sent = 0
        self.finished = False

    def write(self, data: bytes | bytearray) -> None:
        self.buf += data

    def pending(self) -> int:
        return len(self.buf)

    async def flush_full_packets(self) -> None:
        chunk = self.packet_size - HEADER_LEN
        if len(self.buf) <= chunk:
            return
        out = bytearray()
        # Keep at least one byte back so finish() always has something to send with EOM.
        while len(self.buf) > chunk:
            part = self.buf[:chunk]
            del self.buf[:chunk]
            out += build_header(self.ptype, 0, HEADER_LEN + len(part), self.stream.spid, self.packet_id)
            out += part
            self.packet_id += 1
            self.packets_sent += 1
        await self.stream.channel.write(bytes(out))

    async def send_partial(self) -> None:
        """Send everything buffered without EOM (used before a deliberate drop)."""
        await self.flush_full_packets()
        if self.buf:
            part = bytes(self.buf)
            self.buf.clear()
            await self.stream.channel.write(
                build_header(self.ptype, 0, HEADER_LEN + len(part), self.stream.spid, self.packet_id) + part
            )
            self.packet_id += 1

    async def finish(self) -> None:
        await self.flush_full_packets()
        part = bytes(self.buf)
        self.buf.clear()
        await self.stream.channel.write(
            build_header(self.ptype, STATUS_EOM, HEADER_LEN + len(part), self.stream.spid, self.packet_id) + part
        )
        self.packets_sent += 1
        self.finished = True
