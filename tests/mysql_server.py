"""A throwaway MariaDB server for tests.

``MysqlServer.create()`` gives either a private server (``mariadbd`` on a
free loopback port, everything in one temporary directory that is removed
afterwards) or, when the environment variable ``DB_POOL_TEST_MYSQL_DSN``
holds a mysql:// (or mariadb://) URL, that existing server (``external`` is
then True and stop/start/restart/freeze raise ``RuntimeError``; tests that
need them should skip).

The private server:

- listens on 127.0.0.1 only, and on a Unix socket in its temporary
  directory, with its own pid file and error log there (``log_tail()``);
- is a copy of a template data directory made once per process with
  ``mariadb-install-db`` (tests/mysql_install.py; 0.6-2 s), so a server
  starts in about 0.25 s;
- reads no option file but its own (``--defaults-file``): the machine's
  /etc/mysql/my.cnf never applies;
- runs with small, fast InnoDB settings (32 MB buffer pool, no doublewrite,
  no fsync, log flushed once a second): a crash of the *process*
  (``stop("kill")``) loses nothing, a crash of the machine could;
- has strict ``sql_mode`` (MariaDB's default, STRICT_TRANS_TABLES),
  character set utf8mb4, time zone +00:00, ``local_infile=1`` and a
  ``max_allowed_packet`` the caller chooses (16M by default);
- has the user ``dbpool_test`` / ``dbpool-secret`` at 127.0.0.1 and %
  (mysql_native_password) with every privilege on the database
  ``dbpool_test`` plus PROCESS, RELOAD and BINLOG MONITOR (= REPLICATION
  CLIENT), and no SUPER or READ_ONLY ADMIN, so ``read_only`` binds it. Any
  user may KILL (QUERY) its own threads, which is all cancel needs;
- has ``root`` without a password over the Unix socket only (``sql()``),
  and ``dbpool_repl`` (REPLICATION SLAVE, no password, 127.0.0.1 only) for
  the replicas of tests/mysql_cluster.py;
- runs as root with ``--user=root`` when this process is root.

It is killed and its directory removed at interpreter exit even if the
caller forgets to call ``cleanup()``.

Usable on its own::

    python tests/mysql_server.py     # starts one, prints its DSN, runs until SIGINT/SIGTERM
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mysql_install import (  # tests/ is on sys.path
    DATABASE, FAST_SETTINGS, PASSWORD, REPL_USER, USER, MariadbBins, as_root,
    find_mariadb_bins, template_datadir,
)

__all__ = ["MysqlServer", "MariadbBins", "find_mariadb_bins", "ENV_DSN", "USER", "PASSWORD",
           "DATABASE", "REPL_USER"]

ENV_DSN = "DB_POOL_TEST_MYSQL_DSN"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the server ---------------------------------------------------------------------


class MysqlServer:
    """One MariaDB server for a test session; see the module docstring."""

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
        bins: MariadbBins | None = None,
        max_allowed_packet: str = "16M",
        extra_conf: str = "",
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.external = external
        self.root = root
        self.bins = bins
        self.max_allowed_packet = max_allowed_packet
        self.extra_conf = extra_conf
        self._proc: subprocess.Popen[bytes] | None = None
        self._frozen = False
        self._cleaned = False

    # ---- construction --------------------------------------------------------------

    @classmethod
    def create(cls, **kwargs: Any) -> MysqlServer:
        """The server named by DB_POOL_TEST_MYSQL_DSN, or a new private one
        (started; keywords go to start_private)."""
        dsn = os.environ.get(ENV_DSN)
        if dsn:
            return cls.from_dsn(dsn)
        return cls.start_private(**kwargs)

    @classmethod
    def from_dsn(cls, dsn: str) -> MysqlServer:
        parts = urlsplit(dsn)
        if parts.scheme not in ("mysql", "mariadb"):
            # no {dsn!r}: it holds the password
            raise ValueError(f"{ENV_DSN} must be a mysql:// or mariadb:// URL")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")) or DATABASE,
            external=True,
        )

    @classmethod
    def start_private(
        cls,
        bins: MariadbBins | None = None,
        attempts: int = 3,
        *,
        max_allowed_packet: str = "16M",
        extra_conf: str = "",
        prefix: str = "dbpool-mysql-",
    ) -> MysqlServer:
        """A copy of the template data directory, started on a free port
        (retried on a port taken meanwhile). ``extra_conf`` lines go into the
        [mariadbd] section, after ours (tests/mysql_cluster.py: binlog)."""
        bins = bins or find_mariadb_bins()
        template = template_datadir(bins)
        server = cls(
            host="127.0.0.1",
            port=_free_port(),
            user=USER,
            password=PASSWORD,
            database=DATABASE,
            external=False,
            root=Path(tempfile.mkdtemp(prefix=prefix)),
            bins=bins,
            max_allowed_packet=max_allowed_packet,
            extra_conf=extra_conf,
        )
        atexit.register(server.cleanup)
        try:
            assert server.root is not None
            server.root.chmod(0o700)
            subprocess.run(["cp", "-a", str(template), str(server.data_dir)],
                           check=True, timeout=60)
            server.start_on_free_port(attempts)
        except BaseException:
            server.cleanup()
            raise
        return server

    # ---- addresses -------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """mysql://user:password@host:port/database"""
        return f"mysql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keywords for ``pymysql.connect`` (utf8mb4, 10 s connect timeout)."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
            "charset": "utf8mb4",
            "connect_timeout": 10,
            **overrides,
        }

    # ---- files -------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        assert self.root is not None, "an external server has no files here"
        return self.root / name

    @property
    def data_dir(self) -> Path:
        return self._path("data")

    @property
    def socket_path(self) -> Path:
        return self._path("mysqld.sock")

    @property
    def pid_file(self) -> Path:
        return self._path("mysqld.pid")

    @property
    def log_file(self) -> Path:
        """The server's error log."""
        return self._path("error.log")

    @property
    def config_file(self) -> Path:
        return self._path("my.cnf")

    def log_tail(self, lines: int = 40) -> str:
        """The end of the error log (private servers), for failure messages."""
        if self.root is None or not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _write_config(self) -> None:
        """my.cnf, the only option file the server reads; written before every
        start (the port may have changed)."""
        self.config_file.write_text(
            "# written by tests/mysql_server.py\n"
            "[mariadbd]\n"
            f"datadir = {self.data_dir}\n"
            f"socket = {self.socket_path}\n"
            f"pid-file = {self.pid_file}\n"
            f"log-error = {self.log_file}\n"
            "bind-address = 127.0.0.1\n"
            f"port = {self.port}\n"
            + ("user = root\n" if as_root() else "")
            + FAST_SETTINGS
            + "character-set-server = utf8mb4\n"
            "collation-server = utf8mb4_general_ci\n"
            "sql_mode = STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,"
            "NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION\n"
            "default_time_zone = '+00:00'\n"
            "local_infile = 1\n"
            f"max_allowed_packet = {self.max_allowed_packet}\n"
            "max_connections = 100\n"
            + (self.extra_conf.rstrip("\n") + "\n" if self.extra_conf else "")
        )

    # ---- running SQL -----------------------------------------------------------------

    def sql(self, text: str, timeout: float = 30, database: str | None = None) -> str:
        """Runs SQL with the mariadb client and returns its output (tab-separated
        rows, no header). Private servers: as root over the Unix socket.
        External ones: as the DSN's user over TCP (the password goes in the
        environment, never on the command line)."""
        return self._client(text, timeout, database, ["--skip-column-names"])

    def _client(self, text: str, timeout: float, database: str | None,
                options: list[str]) -> str:
        bins = self.bins or find_mariadb_bins()
        cmd = [str(bins.client), "--no-defaults", "--batch", *options,
               f"--connect-timeout={max(1, int(timeout))}"]
        env = {**os.environ, "LC_ALL": "C"}
        env.pop("MYSQL_PWD", None)
        if self.external:
            cmd += [f"--host={self.host}", f"--port={self.port}", f"--user={self.user}"]
            env["MYSQL_PWD"] = self.password
        else:
            cmd += [f"--socket={self.socket_path}", "--user=root"]
        if database:
            cmd.append(f"--database={database}")
        try:
            proc = subprocess.run(cmd, input=text, capture_output=True, text=True,
                                  timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"SQL did not finish within {timeout}s on {self!r}: "
                               f"{text[:200]}\n{self.log_tail(10)}") from None
        if proc.returncode != 0:
            raise RuntimeError(f"SQL failed on {self!r} ({proc.returncode}): {text[:200]}\n"
                               f"{proc.stderr.strip()}\n{self.log_tail(10)}")
        return proc.stdout.rstrip("\n")

    def sql_rows(self, text: str, timeout: float = 30) -> list[dict[str, str]]:
        """The rows of the last result of `text` as {column: value} (values as the
        client prints them in batch mode: NULL is "NULL"); e.g. SHOW SLAVE STATUS."""
        out = self._client(text, timeout, None, ["--column-names"])
        lines = out.splitlines()
        if not lines:
            return []
        names = lines[0].split("\t")
        return [dict(zip(names, line.split("\t"))) for line in lines[1:]]

    # ---- control -------------------------------------------------------------------------

    def _require_private(self) -> None:
        if self.external:
            raise RuntimeError(f"the server from {ENV_DSN} cannot be stopped or restarted")

    @property
    def running(self) -> bool:
        """External, or started and not stopped (a frozen server is running)."""
        return self.external or (self._proc is not None and self._proc.poll() is None)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

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

    def start(self, timeout: float = 30) -> None:
        """Starts the (stopped) private server; returns once it greets clients."""
        self._require_private()
        assert self.bins is not None
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        self._write_config()
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                [str(self.bins.server), f"--defaults-file={self.config_file}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,  # a ^C to the tests does not reach it
            )
        self._frozen = False
        try:
            self.wait_ready(timeout)
        except BaseException as exc:
            self._kill_and_reap()
            raise RuntimeError(f"{self!r} did not start: {exc}\n{self.log_tail()}") from None

    def wait_ready(self, timeout: float = 10) -> None:
        """Waits until the server sends its greeting (protocol 10) over TCP;
        RuntimeError at once if our server process has exited."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.external and not self.running:
                code = self._proc.returncode if self._proc else None
                raise RuntimeError(f"mariadbd exited ({code})")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    s.settimeout(max(0.1, min(2.0, deadline - time.monotonic())))
                    head = s.recv(5)
                    if len(head) == 5 and head[4] == 10:
                        return
                    last = RuntimeError(f"no greeting, got {head!r}")
            except OSError as exc:
                last = exc
            time.sleep(0.02)
        raise TimeoutError(f"no greeting on {self.host}:{self.port} within {timeout}s ({last})")

    def stop(self, mode: str = "clean", timeout: float = 30) -> None:
        """Stops the private server: mode 'clean' (SIGTERM: a shutdown that
        disconnects clients; also 'fast'/'smart') or 'kill' (SIGKILL, like a
        crash; also 'immediate'). A frozen server is thawed first."""
        self._require_private()
        if mode not in ("clean", "fast", "smart", "kill", "immediate"):
            raise ValueError(f"mode must be 'clean' or 'kill', not {mode!r}")
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"{self!r} is not running")
        if mode in ("kill", "immediate"):
            self._kill_and_reap()
            return
        self._proc.send_signal(signal.SIGTERM)
        self.thaw()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_and_reap()
            raise RuntimeError(f"{self!r} did not shut down within {timeout}s; killed it\n"
                               f"{self.log_tail()}") from None

    def restart(self, mode: str = "clean") -> None:
        """Stops (with `mode`) and starts the private server; the port stays."""
        self.stop(mode)
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (a hung
        server; connections and new connects wait) until thaw()."""
        self._require_private()
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"{self!r} is not running")
        os.kill(self._proc.pid, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """SIGCONT after freeze(); nothing if not frozen."""
        if self._frozen and self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)
        self._frozen = False

    def _kill_and_reap(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()  # SIGKILL ends a stopped process too
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                pass  # unkillable (D state); cleanup still removes the directory
        self._frozen = False

    def cleanup(self) -> None:
        """Kills the private server and removes its directory. Idempotent."""
        if self.external or self._cleaned:
            return
        self._cleaned = True
        try:
            self._kill_and_reap()
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> MysqlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        kind = "external" if self.external else f"private in {self.root}"
        return f"<MysqlServer {self.host}:{self.port} {kind}>"


def _main() -> None:
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # runs the cleanup below (and atexit)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # background jobs start with SIGINT ignored
    t0 = time.monotonic()
    with MysqlServer.create() as srv:
        print(f"{srv!r} ready in {time.monotonic() - t0:.2f}s", flush=True)
        print(srv.dsn, flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    _main()
