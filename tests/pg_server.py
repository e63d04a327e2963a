"""A throwaway PostgreSQL server for tests.

``PgServer.create()`` gives either a private server (``initdb`` + ``pg_ctl``
from the newest /usr/lib/postgresql/<version>/bin, on a free loopback port,
everything in one temporary directory that is removed afterwards) or, when
the environment variable ``DB_POOL_TEST_PG_DSN`` holds a postgresql:// URL,
that existing server (``external`` is then True and stop/start/restart
raise ``RuntimeError``; tests that need them should skip).

The private server:

- listens on 127.0.0.1 only (``listen_addresses``) and on a Unix socket in
  its temporary directory;
- runs with ``fsync=off`` and friends, so it starts in about a second;
- has the login role ``dbpool_test`` / ``dbpool-secret`` (a superuser) that
  must authenticate over TCP with SCRAM (so wrong passwords are refused),
  and a database ``dbpool_test`` it owns; local (Unix socket) connections
  are trusted;
- runs as the ``postgres`` user when this process is root (PostgreSQL
  refuses to run as root), through ``runuser``.

It is stopped (``-m immediate``) and its directory removed at interpreter
exit even if the caller forgets to call ``cleanup()``.

Usable on its own::

    python tests/pg_server.py        # starts one, prints its DSN, runs until SIGINT/SIGTERM
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["PgServer", "find_pg_bin", "ENV_DSN"]

ENV_DSN = "DB_POOL_TEST_PG_DSN"
USER = "dbpool_test"
PASSWORD = "dbpool-secret"
DATABASE = "dbpool_test"
SUPERUSER = "postgres"  # the bootstrap superuser initdb creates (local trust)


def find_pg_bin() -> Path:
    """The bin directory of the newest PostgreSQL under /usr/lib/postgresql,
    or the directory of ``pg_ctl`` on PATH."""
    base = Path("/usr/lib/postgresql")
    versions = []
    if base.is_dir():
        for d in base.iterdir():
            if (d / "bin" / "pg_ctl").exists() and re.fullmatch(r"\d+(\.\d+)?", d.name):
                versions.append((float(d.name), d / "bin"))
    if versions:
        return max(versions)[1]
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise FileNotFoundError(
        "no PostgreSQL server binaries: install the Debian package postgresql "
        "(initdb and pg_ctl in /usr/lib/postgresql/<version>/bin)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _temp_parent() -> str | None:
    """Where to make the server's directory: the usual temp dir, unless we are
    root and the postgres user could not reach it (TMPDIR under /root)."""
    if os.geteuid() != 0:
        return None
    path = Path(tempfile.gettempdir()).resolve()
    for p in (path, *path.parents):
        if not os.stat(p).st_mode & 0o001:  # no search permission for others
            return "/tmp"
    return None


class PgServer:
    """One PostgreSQL server for a test session; see the module docstring."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str,
        password: str,
        database: str,
        external: bool,
        root: Path | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.external = external
        self.root = root
        self.bin_dir = bin_dir
        self._running = False
        self._cleaned = False

    # ---- construction --------------------------------------------------------------

    @classmethod
    def create(cls) -> PgServer:
        """The server named by DB_POOL_TEST_PG_DSN, or a new private one (started)."""
        dsn = os.environ.get(ENV_DSN)
        if dsn:
            return cls.from_dsn(dsn)
        return cls.start_private()

    @classmethod
    def from_dsn(cls, dsn: str) -> PgServer:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"{ENV_DSN} must be a postgresql:// URL, not {dsn!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")) or unquote(parts.username or ""),
            external=True,
        )

    @classmethod
    def start_private(
        cls,
        bin_dir: Path | None = None,
        attempts: int = 3,
        *,
        extra_conf: str = "",
        extra_hba: str = "",
    ) -> PgServer:
        """initdb + start a private server; retries on a port taken meanwhile.

        ``extra_conf`` lines go into postgresql.conf (before port.conf is
        included) and ``extra_hba`` lines into pg_hba.conf (after ours), e.g.
        for replication (tests/pg_cluster.py)."""
        server = cls.new_private(bin_dir)
        try:
            server._initdb(extra_conf=extra_conf, extra_hba=extra_hba)
            server.start_on_free_port(attempts)
            server._bootstrap()
        except BaseException:
            server.cleanup()
            raise
        return server

    @classmethod
    def new_private(cls, bin_dir: Path | None = None, prefix: str = "dbpool-pg-") -> PgServer:
        """A private server that is not there yet: its (empty) temporary
        directory with the socket directory, owned by postgres when we are
        root, and a free port. Removed at exit. The caller fills data_dir
        (start_private: initdb; tests/pg_cluster.py: pg_basebackup)."""
        server = cls(
            host="127.0.0.1",
            port=_free_port(),
            user=USER,
            password=PASSWORD,
            database=DATABASE,
            external=False,
            root=Path(tempfile.mkdtemp(prefix=prefix, dir=_temp_parent())),
            bin_dir=bin_dir or find_pg_bin(),
        )
        atexit.register(server.cleanup)
        try:
            server._make_dirs()
        except BaseException:
            server.cleanup()
            raise
        return server

    # ---- properties ----------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """postgresql://user:password@host:port/database"""
        return (
            f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"
        )

    def connect_kwargs(self) -> dict[str, Any]:
        """host/port/database/username/password for create_pool."""
        return {
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "username": self.user,
            "password": self.password,
        }

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server log (private servers), for failure messages."""
        if self.root is None or not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    # ---- running commands ----------------------------------------------------------------

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Runs a server binary, as the postgres user when we are root."""
        assert self.bin_dir is not None
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
                f"{self.log_tail()}"
            )
        return proc

    def _require_private(self) -> None:
        if self.external:
            raise RuntimeError(f"the server from {ENV_DSN} cannot be stopped or restarted")

    def _make_dirs(self) -> None:
        assert self.root is not None
        self.root.chmod(0o700)
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for p in (self.root, self.socket_dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def _initdb(self, extra_conf: str = "", extra_hba: str = "") -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",  # -N: initdb's own fsyncs cost seconds
        )
        (self.data_dir / "pg_hba.conf").write_text(
            "# written by tests/pg_server.py\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            + (extra_hba.rstrip("\n") + "\n" if extra_hba else "")
        )
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# tests/pg_server.py\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "password_encryption = 'scram-sha-256'\n"
                "max_connections = 100\n"
                "shared_buffers = 32MB\n"
                "timezone = 'UTC'\n"
                "log_timezone = 'UTC'\n"
                "logging_collector = off\n"
                "log_min_messages = warning\n"
                + (extra_conf.rstrip("\n") + "\n" if extra_conf else "")
                + "include_if_exists = 'port.conf'\n"
            )
        self._write_port()

    def _write_port(self) -> None:
        (self.data_dir / "port.conf").write_text(f"port = {self.port}\n")

    def start_on_free_port(self, attempts: int = 3) -> None:
        """start(); if that fails (most likely someone took the port since
        _free_port() chose it), again on another free port."""
        for attempt in range(attempts):
            try:
                self.start()
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self.port = _free_port()
                self._write_port()

    def _psql(self, sql: str) -> str:
        """Runs SQL as the bootstrap superuser over the Unix socket."""
        return self._run(
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
            "-At",
            "-c",
            sql,
        ).stdout

    def _bootstrap(self) -> None:
        self._psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}' SUPERUSER")
        self._psql(f"CREATE DATABASE {DATABASE} OWNER {USER}")

    # ---- control ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.external or self._running

    def start(self, timeout: float = 30) -> None:
        """Starts the (stopped) private server and waits until it accepts connections."""
        self._require_private()
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(timeout)),
            "start",
            timeout=timeout + 10,
        )
        self._running = True

    def stop(self, mode: str = "fast", timeout: float = 30) -> None:
        """Stops the private server: mode 'smart', 'fast' (disconnects clients)
        or 'immediate' (kills every backend at once, like a crash)."""
        self._require_private()
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"mode must be smart, fast or immediate, not {mode!r}")
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-m",
            mode,
            "-w",
            "-t",
            str(int(timeout)),
            "stop",
            timeout=timeout + 10,
        )
        self._running = False

    def restart(self, mode: str = "fast") -> None:
        """Stops (with `mode`) and starts the private server; the port stays."""
        self.stop(mode)
        self.start()

    def wait_ready(self, timeout: float = 10) -> None:
        """Waits until the server accepts TCP connections."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def cleanup(self) -> None:
        """Stops the private server (immediately) and removes its directory. Idempotent."""
        if self.external or self._cleaned:
            return
        self._cleaned = True
        try:
            if self.root is not None and (self.data_dir / "postmaster.pid").exists():
                self._run(
                    "pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop",
                    check=False, timeout=30,
                )
        finally:
            self._running = False
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        kind = "external" if self.external else f"private in {self.root}"
        return f"<PgServer {self.host}:{self.port} {kind}>"


def _main() -> None:
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # runs the cleanup below (and atexit)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # background jobs start with SIGINT ignored
    t0 = time.monotonic()
    with PgServer.create() as srv:
        print(f"{srv!r} ready in {time.monotonic() - t0:.2f}s", flush=True)
        print(srv.dsn, flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    _main()
