"""The TCP fault proxy of tests/faults/proxy.py, against a tiny echo server.

Every blocking call has a timeout, so a broken proxy fails these tests
instead of hanging them.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from faults.proxy import FaultProxy  # noqa: E402

TIMEOUT = 2.0  # any single socket operation that should succeed


class EchoServer:
    """Echoes every byte back; closes its side after the client's EOF."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.socks: List[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:  # timeout: check stop
                continue
            self.accepted += 1
            self.socks.append(sock)
            threading.Thread(target=self._echo, args=(sock,), daemon=True).start()

    def _echo(self, sock: socket.socket) -> None:
        sock.settimeout(0.1)
        try:
            while not self.stop.is_set():
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                sock.sendall(data)
        except OSError:
            pass
        finally:
            sock.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo.port) as p:
        yield p


def connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_until_eof(sock: socket.socket) -> bytes:
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk


def round_trip(sock: socket.socket, data: bytes) -> float:
    t0 = time.monotonic()
    sock.sendall(data)
    assert recv_exactly(sock, len(data)) == data
    return time.monotonic() - t0


def wait_for(pred: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def assert_dead(sock: socket.socket) -> None:
    """The connection was closed or reset under us (Linux may report either)."""
    try:
        assert sock.recv(100) == b""
    except ConnectionResetError:
        pass


def test_pass_through_echoes(proxy: FaultProxy) -> None:
    with connect(proxy) as c:
        round_trip(c, b"hello")
        big = bytes(range(256)) * 8192  # 2 MiB: more than the 1 MiB high-water mark
        received: List[bytes] = []
        reader = threading.Thread(target=lambda: received.append(recv_exactly(c, len(big))))
        reader.start()
        c.sendall(big)
        reader.join(10)
        assert received == [big]


def test_half_close_is_forwarded(proxy: FaultProxy) -> None:
    with connect(proxy) as c:
        c.sendall(b"last words")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"last words"
    wait_for(lambda: proxy.connections() == 0)


def test_blackhole_new_connection(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.blackhole()
    with connect(proxy) as c:
        wait_for(lambda: proxy.connections() == 1)  # accepted...
        c.sendall(b"ping")
        c.settimeout(0.3)
        with pytest.raises(socket.timeout):  # ...but silent
            c.recv(10)
        assert echo.accepted == 0  # and never connected upstream
        proxy.pass_through()
        c.settimeout(TIMEOUT)
        assert recv_exactly(c, 4) == b"ping"  # the held bytes arrive
        assert echo.accepted == 1


def test_blackhole_existing_connection(proxy: FaultProxy) -> None:
    with connect(proxy) as c:
        round_trip(c, b"before")
        proxy.blackhole()
        c.sendall(b"during")
        c.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.recv(10)
        proxy.pass_through()
        c.settimeout(TIMEOUT)
        assert recv_exactly(c, 6) == b"during"
        round_trip(c, b"after")


def test_delay(proxy: FaultProxy) -> None:
    with connect(proxy) as c:
        assert round_trip(c, b"x") < 0.2
        proxy.delay(200)
        assert round_trip(c, b"y") >= 0.39  # 200 ms each way
        proxy.pass_through()
        assert round_trip(c, b"z") < 0.2  # the delay is gone


def test_drip(proxy: FaultProxy) -> None:
    proxy.drip(1000)
    with connect(proxy) as c:
        elapsed = round_trip(c, bytes(500))
        assert 0.4 <= elapsed < 1.5


def test_drop_after(proxy: FaultProxy) -> None:
    with connect(proxy) as old:
        round_trip(old, b"warm-up")
        proxy.drop_after(10)
        with connect(proxy) as new:
            for c in (old, new):
                c.sendall(bytes(100))
                assert recv_until_eof(c) == bytes(10)
    wait_for(lambda: proxy.connections() == 0)


def test_reset(proxy: FaultProxy) -> None:
    with connect(proxy) as c1, connect(proxy) as c2:
        round_trip(c1, b"a")
        round_trip(c2, b"b")
        proxy.reset()
        assert proxy.connections() == 0
        assert_dead(c1)
        assert_dead(c2)
    with connect(proxy) as c:  # new connections still work
        round_trip(c, b"c")


def test_refuse(proxy: FaultProxy) -> None:
    port = proxy.port
    with connect(proxy) as old:
        round_trip(old, b"a")
        proxy.refuse()
        with pytest.raises(ConnectionRefusedError):
            connect(proxy)
        round_trip(old, b"b")  # existing connections are untouched
        proxy.pass_through()
        assert proxy.port == port
        with connect(proxy) as new:
            round_trip(new, b"c")


def test_upstream_refused_closes_client(echo: EchoServer) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    with FaultProxy("127.0.0.1", dead_port) as proxy, connect(proxy) as c:
        assert_dead(c)
        wait_for(lambda: proxy.connections() == 0)


def test_counters(proxy: FaultProxy) -> None:
    assert (proxy.connections(), proxy.accepted_total()) == (0, 0)
    c1, c2 = connect(proxy), connect(proxy)
    wait_for(lambda: proxy.connections() == 2)
    assert proxy.accepted_total() == 2
    c1.close()
    wait_for(lambda: proxy.connections() == 1)
    c2.close()
    wait_for(lambda: proxy.connections() == 0)
    assert proxy.accepted_total() == 2


def test_close_is_quick_and_idempotent(echo: EchoServer) -> None:
    proxy = FaultProxy("127.0.0.1", echo.port).start()
    clients = [connect(proxy) for _ in range(3)]
    for c in clients:
        round_trip(c, b"x")
    proxy.blackhole()
    t0 = time.monotonic()
    proxy.close()
    proxy.close()
    assert time.monotonic() - t0 < 1.0
    assert not any(t.name == f"FaultProxy-{proxy.port}" for t in threading.enumerate())
    for c in clients:
        assert_dead(c)
        c.close()
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)


def test_mode_changes_under_traffic(proxy: FaultProxy) -> None:
    """Switching modes from this thread while bytes flow loses and reorders nothing."""
    payload = bytes(range(256)) * 2048  # 512 KiB
    with connect(proxy) as c:
        received: List[bytes] = []
        reader = threading.Thread(target=lambda: received.append(recv_exactly(c, len(payload))))
        reader.start()
        sender = threading.Thread(target=c.sendall, args=(payload,))
        sender.start()
        for mode in (proxy.blackhole, lambda: proxy.delay(5), proxy.blackhole,
                     lambda: proxy.drip(1_000_000), proxy.pass_through):
            mode()
            time.sleep(0.05)
        sender.join(10)
        reader.join(10)
        assert received == [payload]
