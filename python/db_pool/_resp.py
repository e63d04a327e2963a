"""A minimal RESP2 client over a plain socket, for asking Redis Sentinels
where the data nodes are (_redis_sentinel.py). Sentinels are few and their
answers small, so this stays in Python; the data nodes are the C driver's.

Every read and write is bounded by a deadline (TimeoutError); a connection
that timed out or broke is closed, as its replies would be out of step.
Error replies come back as RespError values (raised by ``call``). The
password is sent in AUTH only and never appears in a message."""

from __future__ import annotations

import socket
import time
from typing import Any, Sequence

Reply = Any  # str | int | None | list[Reply] | RespError


class RespError(Exception):
    """An error reply of the server (its text)."""


def _encode(args: Sequence[object]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8", "surrogateescape")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _parse(buf: bytes, pos: int) -> tuple[Reply, int] | None:
    """(reply, position after it) of the reply at `pos`, None if incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, line = buf[pos:pos + 1], buf[pos + 1:end]
    pos = end + 2
    if kind == b"+":
        return line.decode("utf-8", "replace"), pos
    if kind == b"-":
        return RespError(line.decode("utf-8", "replace")), pos
    if kind == b":":
        return int(line), pos
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            return None
        return buf[pos:pos + n].decode("utf-8", "surrogateescape"), pos + n + 2
    if kind == b"*":
        n = int(line)
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            got = _parse(buf, pos)
            if got is None:
                return None
            item, pos = got
            items.append(item)
        return items, pos
    raise ConnectionError(f"not a RESP reply (type byte {kind!r})")


class RespConnection:
    """One connection, authenticated when a password is given."""

    def __init__(self, host: str, port: int, *, user: str | None, password: str | None,
                 timeout: float) -> None:
        self.address = f"{host}:{port}"
        deadline = time.monotonic() + timeout
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""
        if password:
            try:
                self.call("AUTH", *((user, password) if user else (password,)),
                          deadline=deadline)
            except RespError as exc:
                self.close()
                raise RespError(f"AUTH on sentinel {self.address} was refused: "
                                f"{str(exc).split(' ', 1)[0]}") from None
            except BaseException:
                self.close()
                raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def send(self, *commands: Sequence[object], deadline: float) -> None:
        self._settimeout(deadline)
        try:
            self._sock.sendall(b"".join(_encode(c) for c in commands))
        except (OSError, TimeoutError):
            self.close()
            raise

    def _settimeout(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            self.close()
            raise TimeoutError(f"sentinel {self.address}: no reply in time")
        self._sock.settimeout(left)

    def pending(self) -> Reply | None:
        """A reply already read into the buffer, or None."""
        got = _parse(self._buf, 0) if self._buf else None
        if got is None:
            return None
        reply, pos = got
        self._buf = self._buf[pos:]
        return reply

    def read(self, deadline: float) -> Reply:
        """The next reply, waiting until `deadline` (time.monotonic())."""
        while True:
            got = _parse(self._buf, 0) if self._buf else None
            if got is not None:
                self._buf = self._buf[got[1]:]
                return got[0]
            self._settimeout(deadline)
            try:
                data = self._sock.recv(65536)
            except (OSError, TimeoutError) as exc:
                self.close()
                if isinstance(exc, (socket.timeout, TimeoutError)):
                    raise TimeoutError(f"sentinel {self.address}: no reply in time") from None
                raise
            if not data:
                self.close()
                raise ConnectionError(f"sentinel {self.address} closed the connection")
            self._buf += data

    def feed(self) -> bool:
        """Reads what the socket has now (after select said it is readable);
        False when the server closed it."""
        try:
            self._sock.settimeout(0)
            data = self._sock.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            self.close()
            return False
        if not data:
            self.close()
            return False
        self._buf += data
        return True

    def pipeline(self, *commands: Sequence[object], deadline: float) -> list[Reply]:
        self.send(*commands, deadline=deadline)
        return [self.read(deadline) for _ in commands]

    def call(self, *args: object, deadline: float) -> Reply:
        reply = self.pipeline(args, deadline=deadline)[0]
        if isinstance(reply, RespError):
            raise reply
        return reply
