"""A TCP fault proxy for tests: it sits between a database client and a real
server and injects network faults, so tests can check how long each failure
takes to surface.

    with FaultProxy("127.0.0.1", server_port) as proxy:
        connect_to("127.0.0.1", proxy.port)
        proxy.blackhole()     # the server goes silent; nothing is closed
        proxy.pass_through()  # held bytes are delivered, traffic resumes

Design: one daemon thread runs a selectors loop over non-blocking sockets.
Control methods hand a closure to that thread (a queue plus a socketpair
wake-up) and wait for it: every socket is touched by one thread only, and when
a control method returns its mode already applies to every connection. Every
wait is bounded, so the proxy cannot hang a test.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import selectors
import socket
import struct
import threading
import time
from concurrent.futures import Future
from typing import Callable, Deque, List, Optional, Set, Tuple

_CHUNK = 65536
_HIGH_WATER = 1 << 20  # stop reading a side while this much waits to go the other way
_TICK = 0.1            # longest select(): bounds how long the loop takes to see close()
_JOIN_TIMEOUT = 5.0
_CALL_TIMEOUT = 5.0    # longest wait for the loop to apply a control call
_DRIP_STEPS = 20       # drip releases rate/20 bytes every 50 ms
_R, _W = selectors.EVENT_READ, selectors.EVENT_WRITE

_PASS, _BLACKHOLE, _DELAY, _DRIP, _DROP = "pass", "blackhole", "delay", "drip", "drop"


class _Pipe:
    """One direction of a connection: bytes read from one socket, for the other."""

    def __init__(self) -> None:
        self.queue: Deque[Tuple[float, bytes]] = collections.deque()  # (arrival, chunk), held
        self.queued = 0          # bytes in queue
        self.out = bytearray()   # released by the mode, being sent
        self.eof = False         # the source sent FIN
        self.shut = False        # we passed that FIN on
        self.next_drip = 0.0

    def pending(self) -> int:
        return self.queued + len(self.out)

    def release(self, limit: int) -> int:
        """Move up to limit held bytes to the send buffer; returns how many."""
        moved = 0
        while self.queue and moved < limit:
            arrival, chunk = self.queue.popleft()
            take = min(len(chunk), limit - moved)
            if take < len(chunk):  # the rest stays at the head, with its arrival time
                self.queue.appendleft((arrival, chunk[take:]))
            self.out += chunk[:take]
            moved += take
        self.queued -= moved
        return moved


class _Conn:
    def __init__(self, client: socket.socket, drop_left: Optional[int]) -> None:
        self.client = client
        self.up: Optional[socket.socket] = None  # None until the mode lets us connect
        self.up_ready = False                    # the non-blocking connect finished
        self.c2s, self.s2c = _Pipe(), _Pipe()
        self.drop_left = drop_left               # drop_after(): server->client bytes left
        self.dropping = False                    # flushing the last bytes, then close
        self.closed = False


class FaultProxy:
    """Forwards TCP connections from host:port to the target, with faults on demand.

    Mode methods apply at once to existing and new connections and are safe to
    call from any thread while connections are live. refuse() only closes the
    listener (existing connections keep their mode); every other mode method
    (re)opens it, on the same port.
    """

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        # Resolved once, here, so the loop never blocks on name resolution.
        info = socket.getaddrinfo(target_host, target_port, type=socket.SOCK_STREAM)[0]
        self._target_family, self._target_addr = info[0], info[4]
        self._host, self.port = host, 0
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, _R, "wake")
        self._listener: Optional[socket.socket] = None
        self._open_listener()
        self._conns: Set[_Conn] = set()
        self._accepted = 0
        self._mode, self._arg = _PASS, 0.0  # arg: delay in s, drip rate, or drop bytes
        self._lock = threading.Lock()       # guards _calls, _running, _closed, _torn_down
        self._calls: List[Callable[[], None]] = []
        self._running = self._closed = self._torn_down = False
        self._thread: Optional[threading.Thread] = None

    def start(self) -> FaultProxy:
        """Start the loop thread (once); returns self."""
        with self._lock:
            if self._closed:
                raise RuntimeError("FaultProxy is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"FaultProxy-{self.port}", daemon=True)
                self._running = True
                self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and close every socket (with FIN). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT)
        self._teardown()  # a no-op if the loop did it already

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pass_through(self) -> None:
        """Forward both ways at once; releases whatever blackhole/delay/drip held."""
        self._set_mode(_PASS, 0.0)

    def blackhole(self) -> None:
        """Accept, but forward nothing (bytes are held) and connect nothing upstream."""
        self._set_mode(_BLACKHOLE, 0.0)

    def delay(self, ms: float) -> None:
        """Forward each chunk, both ways, ms milliseconds after it arrived."""
        if ms < 0:
            raise ValueError("ms must be >= 0")
        self._set_mode(_DELAY, ms / 1000.0)

    def drip(self, bytes_per_second: int) -> None:
        """Let server->client bytes trickle at this rate (client->server is not slowed)."""
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be > 0")
        self._set_mode(_DRIP, float(bytes_per_second))

    def drop_after(self, n_bytes: int) -> None:
        """Close each connection (FIN both sides) after n_bytes more went server->client."""
        if n_bytes < 0:
            raise ValueError("n_bytes must be >= 0")
        self._set_mode(_DROP, float(n_bytes))

    def reset(self) -> None:
        """Close every current connection with RST on both sides; keeps the mode."""
        self._call(lambda: self._close_all(abort=True))

    def refuse(self) -> None:
        """Stop listening: connects get ECONNREFUSED. Existing connections are untouched."""
        self._call(self._close_listener)

    def connections(self) -> int:
        """Client connections open now."""
        return len(self._conns)

    def accepted_total(self) -> int:
        """Client connections accepted since construction."""
        return self._accepted

    # -- control plumbing (caller's thread) ------------------------------------

    def _set_mode(self, mode: str, arg: float) -> None:
        def apply() -> None:
            self._mode, self._arg = mode, arg
            for c in self._conns:  # drop_after counts from now, for old connections too
                c.drop_left = int(arg) if mode == _DROP else None
            if self._listener is None and not self._closed:
                self._open_listener()
        self._call(apply)

    def _call(self, fn: Callable[[], None]) -> None:
        """Run fn on the loop thread (here, if no loop runs) and wait; re-raises its error."""
        result: Future[None] = Future()

        def run() -> None:
            try:
                fn()
                result.set_result(None)
            except BaseException as exc:  # handed to the caller by result()
                result.set_exception(exc)
        with self._lock:
            if self._running and self._thread is not threading.current_thread():
                self._calls.append(run)
            else:  # no loop touches the sockets: run it here, under the lock
                run()
        self._wake()
        result.result(_CALL_TIMEOUT)  # TimeoutError if the loop is stuck

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # buffer full (already woken) or closed
            self._wake_w.send(b"\0")

    # -- the loop (its own thread) ---------------------------------------------

    def _run(self) -> None:
        try:
            timeout = 0.0
            while not self._closed:
                timeout = self._iterate(timeout)
        finally:
            with self._lock:  # later calls run directly; run the queued ones now
                self._running = False
                calls, self._calls = self._calls, []
            for run in calls:
                run()
            self._teardown()

    def _iterate(self, timeout: float) -> float:
        """One select round; returns the timeout for the next one."""
        for key, events in self._sel.select(timeout):
            conn = key.data
            if conn == "wake":
                with contextlib.suppress(OSError):  # EAGAIN: drained
                    while self._wake_r.recv(4096):
                        pass
            elif conn == "listen":
                self._accept()
            elif isinstance(conn, _Conn) and not conn.closed:  # closed earlier in this round?
                if key.fileobj is conn.up and not conn.up_ready:
                    self._finish_connect(conn)
                elif events & _R:  # writes: _pump() tries them every round anyway
                    self._read(conn, key.fileobj is conn.client)
        with self._lock:
            calls, self._calls = self._calls, []
        for run in calls:
            run()
        now = time.monotonic()
        due = now + _TICK
        for conn in list(self._conns):
            due = min(due, self._pump(conn, now))
        for conn in self._conns:
            self._update_interest(conn)
        return max(0.0, due - time.monotonic())

    def _accept(self) -> None:
        for _ in range(64):  # bounded, so a burst cannot starve the other sockets
            if self._listener is None:
                return
            try:
                sock, _ = self._listener.accept()
            except OSError:  # EAGAIN: backlog empty; ECONNABORTED etc.: next time
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.add(_Conn(sock, int(self._arg) if self._mode == _DROP else None))
            self._accepted += 1

    def _read(self, conn: _Conn, from_client: bool) -> None:
        sock = conn.client if from_client else conn.up
        pipe = conn.c2s if from_client else conn.s2c
        assert sock is not None
        try:
            data = sock.recv(_CHUNK)
        except BlockingIOError:
            return
        except OSError:  # ECONNRESET: pass the reset on to the other side
            return self._close_conn(conn, abort=True)
        if not data:
            pipe.eof = True
        else:
            pipe.queue.append((time.monotonic(), data))
            pipe.queued += len(data)

    def _connect(self, conn: _Conn) -> None:
        conn.up = up = socket.socket(self._target_family, socket.SOCK_STREAM)
        up.setblocking(False)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = up.connect_ex(self._target_addr)
        if err == 0:
            conn.up_ready = True
        elif err not in (errno.EINPROGRESS, errno.EAGAIN):
            self._close_conn(conn)  # the upstream refused: close the client side

    def _finish_connect(self, conn: _Conn) -> None:
        assert conn.up is not None
        if conn.up.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._close_conn(conn)
        else:
            conn.up_ready = True

    def _pump(self, conn: _Conn, now: float) -> float:
        """Release held bytes as the mode allows and send them; returns when it is next due."""
        due = now + _TICK
        if conn.dropping:  # drop_after(): flush the last bytes, then FIN both sides
            if self._send(conn, conn.s2c, conn.client) and not conn.s2c.out:
                self._close_conn(conn)
            return due
        mode, arg = self._mode, self._arg
        if mode == _BLACKHOLE:
            return due
        if conn.up is None:
            self._connect(conn)
        for pipe, to_server in ((conn.c2s, True), (conn.s2c, False)):
            if conn.closed:
                return due
            if mode == _DELAY:  # due = arrival + delay, so a new delay() re-times held bytes
                while pipe.queue and pipe.queue[0][0] + arg <= now:
                    pipe.release(len(pipe.queue[0][1]))
                if pipe.queue:
                    due = min(due, pipe.queue[0][0] + arg)
            elif mode == _DRIP and not to_server:
                if pipe.queue and now >= pipe.next_drip:
                    step = max(1, int(arg) // _DRIP_STEPS)
                    pipe.release(step)
                    pipe.next_drip = now + step / arg
                if pipe.queue:
                    due = min(due, pipe.next_drip)
            elif mode == _DROP and not to_server and conn.drop_left is not None:
                conn.drop_left -= pipe.release(conn.drop_left)
                if conn.drop_left == 0:
                    conn.dropping = True  # the rest is never delivered
                    return self._pump(conn, now)
            else:
                pipe.release(pipe.queued)
            dst = conn.up if to_server else conn.client
            if dst is None or (to_server and not conn.up_ready):
                continue
            if not self._send(conn, pipe, dst):
                return due
            if pipe.eof and not pipe.shut and not pipe.queue and not pipe.out:
                with contextlib.suppress(OSError):  # half-close: the other side may still talk
                    dst.shutdown(socket.SHUT_WR)
                pipe.shut = True
        if conn.c2s.shut and conn.s2c.shut:
            self._close_conn(conn)
        return due

    def _send(self, conn: _Conn, pipe: _Pipe, dst: socket.socket) -> bool:
        """Send what the pipe's buffer holds; False if that killed the connection."""
        try:
            if pipe.out:
                del pipe.out[:dst.send(pipe.out)]
        except BlockingIOError:
            pass
        except OSError:  # EPIPE, ECONNRESET: reset the other side too
            self._close_conn(conn, abort=True)
            return False
        return True

    def _update_interest(self, conn: _Conn) -> None:
        flowing = conn.dropping or self._mode != _BLACKHOLE
        live = not conn.dropping  # a dropping connection reads nothing more
        c2s, s2c = conn.c2s, conn.s2c
        self._want(conn.client, conn,
                   (_R if live and not c2s.eof and c2s.pending() < _HIGH_WATER else 0)
                   | (_W if flowing and s2c.out else 0))
        if conn.up is not None:
            self._want(conn.up, conn, _W if not conn.up_ready else (  # W: connect done
                (_R if live and not s2c.eof and s2c.pending() < _HIGH_WATER else 0)
                | (_W if flowing and live and c2s.out else 0)))

    def _want(self, sock: socket.socket, conn: _Conn, events: int) -> None:
        key = self._sel.get_map().get(sock)
        if key is None:
            if events:
                self._sel.register(sock, events, conn)
        elif not events:
            self._sel.unregister(sock)
        elif key.events != events:
            self._sel.modify(sock, events, conn)

    # -- sockets ------------------------------------------------------------------

    def _close_all(self, abort: bool) -> None:
        for conn in list(self._conns):
            self._close_conn(conn, abort)

    def _close_conn(self, conn: _Conn, abort: bool = False) -> None:
        """Close both sides: with RST if abort, else with FIN."""
        if conn.closed:
            return
        conn.closed = True
        self._conns.discard(conn)
        for sock in (conn.client, conn.up):
            if sock is None:
                continue
            self._unregister(sock)
            with contextlib.suppress(OSError):
                if abort:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:  # unread input would turn Linux's FIN into an RST
                    for _ in range(16):
                        if not sock.recv(_CHUNK):
                            break
            sock.close()

    def _unregister(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError, RuntimeError):  # not registered, closed
            self._sel.unregister(sock)

    def _open_listener(self) -> None:
        family, kind, proto, _, addr = socket.getaddrinfo(
            self._host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        try:
            # REUSEADDR: after refuse(), re-bind the port while connections
            # accepted on it are still open (or in TIME_WAIT).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._sel.register(sock, _R, "listen")

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._unregister(self._listener)
            self._listener.close()  # connects still in the backlog get RST
            self._listener = None

    def _teardown(self) -> None:
        with self._lock:
            if self._torn_down:
                return
            self._torn_down = True
        self._close_all(abort=False)
        self._close_listener()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()
