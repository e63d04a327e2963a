"""A throwaway PgBouncer in front of a PostgreSQL server, for tests.

``PgBouncer.create(host, port, database, user, password)`` (or
``PgBouncer.for_server(pg_server)``) runs Debian's ``pgbouncer`` binary
(package ``pgbouncer``) in the foreground as a child process:

- TRANSACTION pool mode (a server connection per transaction: what breaks
  drivers that keep named prepared statements or session state), on a free
  loopback port, max_client_conn 200, default_pool_size 10;
- its own temporary directory with pgbouncer.ini and userlist.txt; the
  password is in userlist.txt in plain text, which lets PgBouncer do SCRAM
  both with its clients (auth_type scram-sha-256) and with a server whose
  role has a SCRAM secret; no auth_query;
- as the ``postgres`` user when we are root (PgBouncer refuses to run as
  root), by ``Popen(user=...)`` so the child's pid is PgBouncer's own and
  can be signalled directly;
- ``max_prepared_statements`` (PgBouncer 1.21+, see ``supports_prepared``)
  is left at 0: the pool under test disables its statement cache behind
  PgBouncer (statement_cache_size=0) and uses unnamed statements only.
  Debian 12 ships 1.18, which does not have the setting at all.
- startup parameters PgBouncer does not track are refused, except
  ``extra_float_digits``; in particular libpq's ``options`` (e.g. a
  search_path) makes 1.18 refuse the login, which is what a real
  deployment would do too.

It is stopped (SIGTERM, then SIGKILL) and its directory removed at
interpreter exit even if ``cleanup()`` is not called.

Usable on its own (in front of a new private PgServer)::

    python tests/pgbouncer.py       # prints the DSN, runs until SIGINT/SIGTERM
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Mapping

from pg_server import PgServer, _free_port, _temp_parent  # tests/ is on sys.path

__all__ = ["PgBouncer", "find_pgbouncer", "pgbouncer_version"]

RUN_AS = "postgres"


def find_pgbouncer() -> Path:
    """The pgbouncer binary (Debian installs it in /usr/sbin, often not on PATH)."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if not found:
        raise FileNotFoundError(
            "no pgbouncer binary: install the Debian package pgbouncer (`make test` does)"
        )
    return Path(found)


def pgbouncer_version(binary: Path | None = None) -> tuple[int, ...]:
    """(1, 18, 0) from ``pgbouncer --version`` ("PgBouncer 1.18.0")."""
    out = subprocess.run(
        [str(binary or find_pgbouncer()), "--version"], capture_output=True, text=True, check=True
    ).stdout
    m = re.search(r"PgBouncer (\d+)\.(\d+)(?:\.(\d+))?", out)
    if not m:
        raise RuntimeError(f"cannot read the pgbouncer version from {out!r}")
    return tuple(int(g or 0) for g in m.groups())


class PgBouncer:
    """One running PgBouncer; see the module docstring."""

    def __init__(self, root: Path, binary: Path, *, server_host: str, server_port: int,
                 database: str, user: str, password: str,
                 settings: Mapping[str, object]) -> None:
        self.root = root
        self.binary = binary
        self.version = pgbouncer_version(binary)
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.database = database
        self.user = user
        self.password = password
        self.server_host = server_host
        self.server_port = server_port
        self.settings = dict(settings)
        self._proc: subprocess.Popen[bytes] | None = None
        self._cleaned = False

    # ---- construction --------------------------------------------------------------

    @classmethod
    def create(cls, host: str, port: int, database: str, user: str, password: str, *,
              settings: Mapping[str, object] | None = None, attempts: int = 3) -> PgBouncer:
        """Writes the configuration and starts PgBouncer in front of host:port;
        ``settings`` add to or override the [pgbouncer] section."""
        root = Path(tempfile.mkdtemp(prefix="dbpool-pgbouncer-", dir=_temp_parent()))
        bouncer = cls(root, find_pgbouncer(), server_host=host, server_port=port,
                      database=database, user=user, password=password,
                      settings=settings or {})
        atexit.register(bouncer.cleanup)
        try:
            for attempt in range(attempts):
                try:
                    bouncer._write_config()
                    bouncer._launch()
                    break
                except RuntimeError:
                    if attempt == attempts - 1:
                        raise
                    bouncer.port = _free_port()  # most likely taken meanwhile
        except BaseException:
            bouncer.cleanup()
            raise
        return bouncer

    @classmethod
    def for_server(cls, server: PgServer, *,
                   settings: Mapping[str, object] | None = None) -> PgBouncer:
        """A PgBouncer in front of a PgServer, for its role and database."""
        return cls.create(server.host, server.port, server.database, server.user,
                         server.password, settings=settings)

    # ---- properties ----------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """postgresql://user:password@127.0.0.1:PORT/database (through PgBouncer)."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def admin_dsn(self) -> str:
        """The admin console (database "pgbouncer": SHOW POOLS, SHOW CONFIG, ...;
        simple query protocol only)."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/pgbouncer"

    @property
    def supports_prepared(self) -> bool:
        """Whether this PgBouncer has max_prepared_statements (1.21+)."""
        return self.version >= (1, 21)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_file(self) -> Path:
        return self.root / "pgbouncer.log"

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    # ---- running -------------------------------------------------------------------

    def _write_config(self) -> None:
        settings: dict[str, object] = {
            "listen_addr": self.host,
            "listen_port": self.port,
            "unix_socket_dir": str(self.root),
            "auth_type": "scram-sha-256",
            "auth_file": str(self.root / "userlist.txt"),
            "admin_users": self.user,
            "pool_mode": "transaction",
            "max_client_conn": 200,
            "default_pool_size": 10,
            "ignore_startup_parameters": "extra_float_digits",
            "server_login_retry": 1,  # not 15 s after the server was down
        }
        if self.supports_prepared:
            settings["max_prepared_statements"] = 0
        settings.update(self.settings)
        ini = [
            "; written by tests/pgbouncer.py",
            "[databases]",
            f"{self.database} = host={self.server_host} port={self.server_port} "
            f"dbname={self.database}",
            "",
            "[pgbouncer]",
            *(f"{k} = {v}" for k, v in settings.items()),
            "",
        ]
        (self.root / "pgbouncer.ini").write_text("\n".join(ini))
        (self.root / "userlist.txt").write_text(f'"{self.user}" "{self.password}"\n')
        if os.geteuid() == 0:
            pw = pwd.getpwnam(RUN_AS)
            for p in (self.root, self.root / "pgbouncer.ini", self.root / "userlist.txt"):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        (self.root / "userlist.txt").chmod(0o600)

    def _launch(self, timeout: float = 10) -> None:
        """Starts pgbouncer in the foreground and waits until it accepts TCP."""
        root = os.geteuid() == 0
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                [str(self.binary), str(self.root / "pgbouncer.ini")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,  # a ^C in the terminal is for us, not for it
                user=RUN_AS if root else None,
                group=RUN_AS if root else None,
                extra_groups=[] if root else None,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"pgbouncer exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self._terminate()
                    raise RuntimeError(f"pgbouncer not listening after {timeout}s:\n{self.log_tail()}")
                time.sleep(0.02)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # immediate shutdown (SIGINT would wait for clients)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        """Stops PgBouncer (its clients are disconnected); restart() starts it again."""
        self._terminate()

    def restart(self) -> None:
        """Stops and starts PgBouncer on the same port."""
        self._terminate()
        self._launch()

    def cleanup(self) -> None:
        """Stops PgBouncer and removes its directory. Idempotent."""
        if self._cleaned:
            return
        self._cleaned = True
        try:
            self._terminate()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        v = ".".join(map(str, self.version))
        return (f"<PgBouncer {v} {self.host}:{self.port} -> "
                f"{self.server_host}:{self.server_port}/{self.database}>")


def _main() -> None:
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # runs the cleanup below (and atexit)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    t0 = time.monotonic()
    with PgServer.start_private() as server, PgBouncer.for_server(server) as bouncer:
        print(f"{bouncer!r} ready in {time.monotonic() - t0:.2f}s", flush=True)
        print(bouncer.dsn, flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    _main()
