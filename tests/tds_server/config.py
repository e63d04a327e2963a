"""Server settings, the fault knobs (changeable while the server runs), and
counters tests can look at."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

DEFAULT_USER = "sa"
DEFAULT_PASSWORD = "db-pool-test"


@dataclass
class Faults:
    """Fault modes; set attributes at any time (read per request)."""

    #: Wait this long before answering each SQL batch / RPC / bulk load.
    delay_ms: int = 0
    #: Close the TCP connection after sending this many rows of a result set.
    drop_after_rows: int | None = None
    #: Close every new connection right after accepting it.
    refuse_connections: bool = False
    #: Answer every login with error 18456.
    refuse_logins: bool = False
    #: A statement with a string literal containing this text fails with 1205.
    deadlock_marker: str = "tds:deadlock"
    #: Every database is read-only, as on an Always On readable secondary:
    #: DATABASEPROPERTYEX(db, 'Updateability') says READ_ONLY and statements
    #: that change data or schema fail with 3906.
    read_only: bool = False
    #: Reject requests whose ALL_HEADERS transaction descriptor is not the
    #: session's current one (error 3989). Mismatches are counted either way.
    strict_transaction_descriptor: bool = False


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    #: "off" (ENCRYPT_NOT_SUP), "on" (TLS when the client asks; login-only
    #: encryption when it sends ENCRYPT_OFF) or "require" (always full TLS).
    tls: str = "off"
    databases: tuple[str, ...] = ("master", "tempdb", "dbpool")
    server_name: str = "TDSTEST"
    lock_timeout_s: float = 10.0
    data_dir: str | None = None  # default: a fresh temporary directory
    faults: Faults = field(default_factory=Faults)


class Stats:
    """Thread-safe counters plus a bounded log of requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.requests: deque[tuple[int, str, str]] = deque(maxlen=2000)

    def bump(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + n

    def maximum(self, key: str, value: int) -> None:
        with self._lock:
            self.counters[key] = max(self.counters.get(key, 0), value)

    def get(self, key: str) -> int:
        with self._lock:
            return self.counters.get(key, 0)

    def log(self, spid: int, kind: str, detail: str) -> None:
        with self._lock:
            self.requests.append((spid, kind, detail[:500]))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)
