"""The asyncio server, and ``TdsTestServer``: the server on a free port in
a background thread, for pytest fixtures."""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import socket
import sqlite3
import ssl
import tempfile
import threading
from typing import Any

from .config import Faults, ServerConfig, Stats
from .engine import Databases
from .login import SERVER_VERSION
from .session import Session
from .tls import Certificate, make_certificate, server_context

log = logging.getLogger("tds_server")


class TdsServer:
    """Serves TDS 7.4 on ``config.host:config.port`` until ``close()``."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.stats = Stats()
        self._own_dir = self.config.data_dir is None
        self.data_dir = self.config.data_dir or tempfile.mkdtemp(prefix="tds-server-")
        self.databases = Databases(self.data_dir, list(self.config.databases))
        self._spids = itertools.count(51)
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self.certificate: Certificate | None = None
        self._tls_ctx: ssl.SSLContext | None = None
        if self.config.tls != "off":
            self.certificate = make_certificate()
            self._tls_ctx = server_context(self.certificate)
        major, minor, build = SERVER_VERSION
        self.version_string = (
            f"Microsoft SQL Server 2019 (RTM) - {major}.{minor}.{build}.0 (X64)\n"
            f"\tdb-pool TDS test server (sqlite {sqlite3.sqlite_version}); not a real SQL Server\n"
        )

    @property
    def faults(self) -> Faults:
        return self.config.faults

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    def next_spid(self) -> int:
        return next(self._spids)

    def tls_context(self) -> ssl.SSLContext:
        if self._tls_ctx is None:
            raise RuntimeError("TLS is off")
        return self._tls_ctx

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, self.config.host, self.config.port,
                                                  reuse_address=True)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await Session(self, reader, writer).run()
        except asyncio.CancelledError:
            pass  # server shutting down
        finally:
            self._sessions.discard(task)

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.gather(*self._sessions, return_exceptions=True)
        self.cleanup_files()

    def cleanup_files(self) -> None:
        if self.certificate is not None:
            self.certificate.cleanup()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class TdsTestServer:
    """The server in a background thread (own event loop) on a free port.

        with TdsTestServer(tls="on") as srv:
            connect to 127.0.0.1:srv.port as srv.user / srv.password
            srv.faults.delay_ms = 500          # knobs apply to the next request
            srv.stats.get("attentions")

    ``cafile``: the self-signed certificate (PEM) when TLS is on.
    """

    def __init__(self, config: ServerConfig | None = None, **options: Any) -> None:
        if config is None:
            faults = Faults(**{k: options.pop(k) for k in list(options) if k in Faults.__dataclass_fields__})
            config = ServerConfig(faults=faults, **options)
        self.config = config
        self.server = TdsServer(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def faults(self) -> Faults:
        return self.config.faults

    @property
    def stats(self) -> Stats:
        return self.server.stats

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def user(self) -> str:
        return self.config.user

    @property
    def password(self) -> str:
        return self.config.password

    @property
    def cafile(self) -> str | None:
        return self.server.certificate.cert_file if self.server.certificate else None

    def start(self) -> "TdsTestServer":
        self._thread = threading.Thread(target=self._run, name="tds-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("TDS test server did not start")
        if self._error is not None:
            raise RuntimeError("TDS test server failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.server.close())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
        self._thread = None

    def __enter__(self) -> "TdsTestServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
