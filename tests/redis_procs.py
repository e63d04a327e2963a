"""Processes of the Redis test fixtures (tests/redis_server.py,
tests/redis_sentinel.py, tests/redis_cluster.py): where redis-server and
redis-cli are, whether redis-server can serve TLS, free loopback ports,
and cleanup of every private server at interpreter exit and on SIGTERM.

The SIGTERM handler is installed with the first server, only if SIGTERM
had no handler yet and only from the main thread (a test runner's own
handler wins); it removes every live server, then lets SIGTERM end the
process as it would have.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["RedisBins", "find_redis_bins", "tls_unsupported_reason", "free_port",
           "register_cleanup", "unregister_cleanup", "INSTALL_HINT"]

INSTALL_HINT = "install the Debian packages redis-server and redis-tools (`make test` does)"


@dataclass(frozen=True)
class RedisBins:
    server: Path
    cli: Path


def find_redis_bins() -> RedisBins:
    """redis-server and redis-cli from PATH (or /usr/bin)."""
    found = {}
    for name in ("redis-server", "redis-cli"):
        path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
        if path is None:
            raise FileNotFoundError(f"no {name}: {INSTALL_HINT}")
        found[name] = Path(path)
    return RedisBins(found["redis-server"], found["redis-cli"])


def tls_unsupported_reason(bins: RedisBins | None = None) -> str | None:
    """None if redis-server can serve TLS, else why not. Debian builds it with
    BUILD_TLS=yes (the binary links libssl); a build without TLS has no
    OpenSSL symbols at all."""
    bins = bins or find_redis_bins()
    binary = bins.server.read_bytes()
    if b"SSL_CTX_new" not in binary and b"libssl.so" not in binary:
        return f"{bins.server} was built without TLS support (no OpenSSL in the binary)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- cleanup at exit and on SIGTERM ---------------------------------------------------

_live: set[Callable[[], None]] = set()
_lock = threading.Lock()
_sigterm_installed = False


def _on_sigterm(signum: int, frame: object) -> None:
    with _lock:
        cleanups = list(_live)
    for cleanup in cleanups:
        try:
            cleanup()
        except Exception:
            pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)  # die of SIGTERM as we would have


def register_cleanup(cleanup: Callable[[], None]) -> None:
    """atexit, plus a SIGTERM handler (only if SIGTERM had none and we are in
    the main thread: a test runner's own handler wins)."""
    global _sigterm_installed
    atexit.register(cleanup)
    with _lock:
        _live.add(cleanup)
    if not _sigterm_installed and threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
        _sigterm_installed = True


def unregister_cleanup(cleanup: Callable[[], None]) -> None:
    with _lock:
        _live.discard(cleanup)
