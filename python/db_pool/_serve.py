"""pool.serve_metrics(): a small HTTP server in the standard library on its
own daemon thread, serving /metrics (prometheus_text()), /healthz, /readyz,
the live dashboard (/, a page shipped as package data) and its feed
(/events, Server-Sent Events; /api/snapshot, one snapshot).

Everything it serves is read from the same snapshot metrics() returns and
the endpoint events stats() carries, so it adds no counting to the query
path. Every socket wait is bounded (SOCKET_TIMEOUT) and close() shuts the
open connections down, so it never hangs. See docs/observability.md.
"""

from __future__ import annotations

import errno
import http.server
import ipaddress
import json
import socket
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any, Iterable

from . import _dashboard, _metrics
from .errors import ConfigurationError

if TYPE_CHECKING:
    from ._common import PoolRegistry

#: Bounds every read and write on a client's socket (a stuck scraper or a
#: browser that stopped reading cannot hold a thread for longer).
SOCKET_TIMEOUT = 10.0
#: How often the accept loop looks at the closing flag.
POLL_INTERVAL = 0.1
#: Seconds between two snapshots on /events.
EVENT_INTERVAL = 1.0

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _is_loopback(host: str, port: int) -> bool:
    """True when every address `host` names is a loopback one."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return infos[0][0] if infos else socket.AF_INET


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a closed server's port is free again at once

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily,
                 owner: MetricsServer) -> None:
        self.address_family = family
        self.owner = owner
        super().__init__(address, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer
    timeout = SOCKET_TIMEOUT
    protocol_version = "HTTP/1.1"
    server_version = "db_pool"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape a second is not worth a line each

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        owner = self.server.owner
        owner._track(self.connection, True)
        try:
            path = self.path.split("?", 1)[0]
            route = {
                "/metrics": self._metrics,
                "/healthz": self._healthz,
                "/readyz": self._readyz,
                "/": self._page,
                "/events": self._events,
                "/api/snapshot": self._snapshot,
            }.get(path)
            if route is None:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")
            else:
                route()
        except (OSError, ValueError):
            self.close_connection = True  # the client went away, or we are closing
        finally:
            owner._track(self.connection, False)

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, "application/json", json.dumps(data).encode())

    def _metrics(self) -> None:
        text = self.server.owner.registry_text()
        if text is None:
            self._send(503, "text/plain; charset=utf-8", b"the pool is closed\n")
        else:
            self._send(200, PROMETHEUS_TYPE, text.encode())

    def _healthz(self) -> None:
        alive = self.server.owner.alive()
        self._json(200 if alive else 503, {"status": "ok" if alive else "closed"})

    def _readyz(self) -> None:
        report = self.server.owner.readiness()
        self._json(200 if report["ready"] else 503, report)

    def _page(self) -> None:
        self._send(200, "text/html; charset=utf-8", _dashboard_html())

    def _snapshot(self) -> None:
        self._json(200, self.server.owner.dashboard_snapshot())

    def _events(self) -> None:
        """One JSON snapshot a second until the client goes or we close."""
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command == "HEAD":
            return
        self.wfile.write(b"retry: 1000\n\n")
        while not owner.closing.is_set():
            data = json.dumps(owner.dashboard_snapshot())
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()
            owner.closing.wait(EVENT_INTERVAL)


def _dashboard_html() -> bytes:
    return resources.files("db_pool").joinpath("dashboard.html").read_bytes()


def _reachable(ep: dict[str, Any]) -> bool:
    # suspect: a connection broke and a probe is on its way; not known down
    return bool(ep["health"] != "down")


def pool_readiness(stats: dict[str, Any], needs: str) -> dict[str, Any]:
    """One pool's readiness: `needs` "primary" (it writes: an endpoint that
    takes writes must be reachable) or "any" (reads only). A pool of one
    endpoint needs that endpoint (it takes reads and writes; its role is
    never probed)."""
    eps = stats["endpoints"]
    if len(eps) == 1 or needs == "any":
        fit = [e for e in eps if _reachable(e)]
        reason = "no endpoint is reachable"
    else:
        fit = [e for e in eps if e["is_primary"] and _reachable(e)]
        reason = "no reachable primary"
    return {
        "ready": bool(fit),
        "needs": needs,
        "reason": "" if fit else reason,
        "endpoints": [
            {
                "endpoint": e["endpoint"],
                "role": e["role"],
                "health": e["health"],
                "is_primary": e["is_primary"],
                "failures": e["failures"],
                "retry_in": e.get("retry_in"),
                "last_error": e.get("last_error", ""),
            }
            for e in eps
        ],
    }


class MetricsServer:
    """A running serve_metrics() server: ``url``, ``port``, ``close()``.
    Closed too when its pool closes."""

    def __init__(self, registry: PoolRegistry, host: str, port: int, *,
                 allow_remote: bool, read_only: Iterable[str]) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be an int from 0 to 65535, not {port!r}")
        if not isinstance(host, str) or not host:
            raise ConfigurationError(f"host must be a host name or address, not {host!r}")
        if not allow_remote and not _is_loopback(host, port):
            raise ConfigurationError(
                f"serve_metrics(host={host!r}) would listen beyond this machine, and its pages "
                "show the pools' topology: pass allow_remote=True to mean it"
            )
        self._registry = registry
        self._read_only = frozenset(read_only)
        self.closing = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        try:
            self._httpd = _HTTPServer((host, port), _family(host), self)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise OSError(
                    errno.EADDRINUSE,
                    f"serve_metrics: port {port} on {host} is in use (another server, or an "
                    "earlier serve_metrics not closed); pass port=0 for a free one",
                ) from None
            raise
        self._httpd.timeout = POLL_INTERVAL
        self.host = host
        self.port: int = self._httpd.server_address[1]
        name = f"[{host}]" if ":" in host else host
        self.url = f"http://{name}:{self.port}/"
        self._thread = threading.Thread(target=self._serve, name="db_pool-metrics-http",
                                        daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        state = "closed" if self.closing.is_set() else "serving"
        return f"<MetricsServer {self.url} {state}>"

    def _serve(self) -> None:
        while not self.closing.is_set():
            self._httpd.handle_request()  # returns after POLL_INTERVAL at most

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def close(self) -> None:
        """Stops serving and frees the port; open streams end at once. Idempotent."""
        if self.closing.is_set():
            return
        self.closing.set()
        self._thread.join(POLL_INTERVAL * 20)
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # wakes handlers blocked on a slow client
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._registry._servers.discard(self)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- what the handlers read (each returns a fresh copy) ----

    def alive(self) -> bool:
        native = self._registry._native
        if native is None or self.closing.is_set():
            return False
        try:
            native.list_pools()
        except Exception:
            return False
        return True

    def _pool_ids(self) -> list[str] | None:
        native = self._registry._native
        if native is None:
            return None
        try:
            return sorted(native.list_pools())
        except Exception:
            return None

    def registry_text(self) -> str | None:
        native, ids = self._registry._native, self._pool_ids()
        if native is None or ids is None:
            return None
        try:
            snap = _metrics.snapshot(native, ids)
            # the families kept in Python: alert rules, leaks, slow queries
            self._registry._watcher.samples(ids, self._registry._engines, snap)
            return _metrics.prometheus_text(snap)
        except Exception:
            return None  # closed between the two reads

    def _stats(self, pool_id: str) -> dict[str, Any] | None:
        native = self._registry._native
        try:
            return None if native is None else native.stats(pool_id)
        except Exception:
            return None  # closed meanwhile

    def readiness(self) -> dict[str, Any]:
        ids = self._pool_ids()
        if ids is None:
            return {"ready": False, "reason": "the pool is closed", "pools": {}}
        pools = {}
        for pool_id in ids:
            stats = self._stats(pool_id)
            if stats is not None:
                needs = "any" if pool_id in self._read_only else "primary"
                pools[pool_id] = pool_readiness(stats, needs)
        bad = sorted(p for p, r in pools.items() if not r["ready"])
        return {
            "ready": not bad,
            "reason": f"not ready: {', '.join(bad)}" if bad else "",
            "pools": pools,
        }

    def dashboard_snapshot(self) -> dict[str, Any]:
        return _dashboard.snapshot(self._registry, self._pool_ids() or [], self._read_only)
