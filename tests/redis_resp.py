"""A minimal RESP2 client for the Redis test fixtures (tests/redis_server.py,
tests/redis_sentinel.py, tests/redis_cluster.py).

Why not redis-cli for everything: its output flattens nested replies
(CLUSTER SHARDS, SENTINEL REPLICAS), is not binary-safe, and a MIGRATE
with AUTH2 would put the password on its command line. Why not redis-py:
the fixture modules also run on their own with the system Python
(``python tests/redis_server.py``), and redis-py is what the tests compare
our driver *against*, so the fixtures should not lean on it.

Every socket operation is bounded by ``timeout`` (``TimeoutError``);
error replies raise ``RespError`` with the server's text. Bulk strings come
back as ``str`` (UTF-8, undecodable bytes kept with surrogateescape) unless
``decode=False``. The password is sent in AUTH only and never appears in an
exception or repr.
"""

from __future__ import annotations

import socket
import ssl
from typing import Union

__all__ = ["RespConnection", "RespError", "Reply"]

Reply = Union[str, bytes, int, None, list["Reply"]]


class RespError(Exception):
    """An error reply (``-ERR ...``, ``-MOVED ...``, ``-NOAUTH ...``): its text."""


def _encode(args: tuple[object, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, (str, int, float)):
            data = str(arg).encode("utf-8", "surrogateescape")
        else:
            raise TypeError(f"a Redis argument must be bytes, str or a number, not {type(arg).__name__}")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RespConnection:
    """One connection to a Redis server or Sentinel (RESP2), authenticated if
    a password is given (``AUTH username password``, or ``AUTH password``
    without a user name)."""

    def __init__(self, host: str, port: int, *, username: str = "", password: str = "",
                 timeout: float = 5.0, tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except socket.timeout:
            raise TimeoutError(f"connect to {host}:{port} took over {timeout}s") from None
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        self._sock = sock
        self._buf = b""
        if password:
            try:
                self.command(*(("AUTH", username, password) if username else ("AUTH", password)))
            except BaseException:
                self.close()
                raise

    def command(self, *args: object, decode: bool = True) -> Reply:
        """Sends one command, returns its reply (RespError for an error reply)."""
        try:
            self._sock.sendall(_encode(args))
            return self._reply(decode)
        except socket.timeout:
            self.close()  # a reply may still arrive: the connection is out of step
            raise TimeoutError(f"{args[0]!s} on {self.host}:{self.port}: no reply within "
                               f"{self.timeout}s") from None

    def _line(self) -> bytes:
        while b"\r\n" not in self._buf:
            self._fill()
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"{self.host}:{self.port} closed the connection")
        self._buf += chunk

    def _reply(self, decode: bool) -> Reply:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "surrogateescape")
        if kind == b"-":
            # an AUTH error echoes nothing of the password; other errors are the server's text
            raise RespError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self._buf) < n + 2:
                self._fill()
            data, self._buf = self._buf[:n], self._buf[n + 2:]
            return data.decode("utf-8", "surrogateescape") if decode else data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply(decode) for _ in range(n)]
        raise ConnectionError(f"{self.host}:{self.port} sent something that is not RESP2: {line[:40]!r}")

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> RespConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RespConnection {self.host}:{self.port}>"
