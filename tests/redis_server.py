"""A throwaway Redis server (or Sentinel) for tests.

``RedisServer.create()`` gives either a private server (``redis-server`` on
a free loopback port, everything in one temporary directory that is removed
afterwards) or, when the environment variable ``DB_POOL_TEST_REDIS_URL``
holds a redis:// (or rediss://) URL, that existing server (``external`` is
then True and stop/start/restart/kill/freeze raise ``RuntimeError``; tests
that need them should skip).

The private server:

- listens on 127.0.0.1 only (TCP), and on a Unix socket in its temporary
  directory (``socket_path``, mode 700), with its own config file
  (``redis.conf``, the only one it reads), log file (``log_tail()``) and
  working directory;
- keeps nothing on disk by default (``save ""``, ``appendonly no``);
  ``persistence=True`` turns the append-only file on (``appendfsync
  everysec``), so data survives ``restart()``;
- with ``auth=True`` (the default) has the ACL user ``dbpool`` /
  ``dbpool-secret`` (``on >dbpool-secret ~* &* +@all``) and the same password
  on the ``default`` user (``requirepass``, so ``AUTH <password>`` from
  clients that know no user names works too); a connection that has not
  authenticated gets ``NOAUTH``. Replicas of it use the same credentials
  (``masteruser``/``masterauth``). The password is in the config file
  (mode 600 in a 700 directory), never on a command line: ``cli()`` passes
  it in ``REDISCLI_AUTH`` and refuses arguments that contain it;
- with ``tls=True`` also listens for TLS on ``tls_port`` with a server
  certificate for 127.0.0.1/localhost from tests/tls_certs.py
  (``tls-auth-clients optional``: a client certificate is checked when
  sent, not required); ``tls_unsupported_reason()`` says why not when this
  redis-server was built without TLS;
- is started again on another free port when its port was taken between
  choosing it and binding it.

Redis may rewrite the config file itself (``CONFIG REWRITE``: Sentinel
does so when it turns a server into a replica); the file is written here
only when the server is made or moves to another port, so a restarted
server comes back as what Sentinel made it.

``sentinel=True`` makes the process a Sentinel (``redis-server redis.conf
--sentinel``; tests/redis_sentinel.py writes its ``sentinel ...`` lines).

A server starts in about 12 ms (20 ms at worst), a TLS one in about 0.1 s
with its certificates. It is killed and its directory removed at
interpreter exit, and when the process gets SIGTERM (the handler is
installed if SIGTERM had none), even if ``cleanup()`` is not called.

Usable on its own::

    python tests/redis_server.py [--tls]   # starts one, prints its URL, runs until SIGINT/SIGTERM
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from redis_procs import (  # tests/ is on sys.path
    RedisBins, find_redis_bins, free_port, register_cleanup, tls_unsupported_reason,
    unregister_cleanup,
)
from redis_resp import Reply, RespConnection, RespError
from tls_certs import CertificateSet, make_certificates

__all__ = ["RedisServer", "RedisBins", "find_redis_bins", "tls_unsupported_reason", "free_port",
           "ENV_URL", "USER", "PASSWORD"]

ENV_URL = "DB_POOL_TEST_REDIS_URL"
USER = "dbpool"
PASSWORD = "dbpool-secret"


# ---- the server -------------------------------------------------------------------------


class RedisServer:
    """One Redis server or Sentinel; see the module docstring."""

    def __init__(self, *, host: str, port: int, user: str, password: str, database: int,
                 external: bool, root: Path | None = None, bins: RedisBins | None = None,
                 tls: bool = False, tls_port: int | None = None, sentinel: bool = False,
                 persistence: bool = False, extra_conf: str = "",
                 extra_ports: tuple[str, ...] = ()) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.external = external
        self.root = root
        self.bins = bins
        self.tls = tls
        self.tls_port = tls_port
        self.sentinel = sentinel
        self.persistence = persistence
        self.extra_conf = extra_conf
        #: config directives naming more ports (e.g. "cluster-port") -> their port
        self.ports: dict[str, int] = {name: free_port() for name in extra_ports}
        self.certs: CertificateSet | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._frozen = False
        self._cleaned = False

    # ---- construction --------------------------------------------------------------

    @classmethod
    def create(cls, **kwargs: Any) -> RedisServer:
        """The server named by DB_POOL_TEST_REDIS_URL, or a new private one
        (started; keywords go to start_private)."""
        url = os.environ.get(ENV_URL)
        if url:
            return cls.from_url(url)
        return cls.start_private(**kwargs)

    @classmethod
    def from_url(cls, url: str) -> RedisServer:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"{ENV_URL} must be a redis:// or rediss:// URL")  # no URL: it holds the password
        tls = parts.scheme == "rediss"
        return cls(host=parts.hostname or "127.0.0.1", port=parts.port or 6379,
                   user=unquote(parts.username or ""), password=unquote(parts.password or ""),
                   database=int(parts.path.lstrip("/") or 0), external=True, tls=tls,
                   tls_port=(parts.port or 6379) if tls else None)

    @classmethod
    def start_private(cls, bins: RedisBins | None = None, attempts: int = 3, *, auth: bool = True,
                      tls: bool = False, persistence: bool = False, sentinel: bool = False,
                      extra_conf: str = "", extra_ports: tuple[str, ...] = (),
                      prefix: str = "dbpool-redis-") -> RedisServer:
        """A new server in its own temporary directory, started on a free port
        (retried on a port taken meanwhile). ``extra_conf`` lines go after
        ours; ``extra_ports`` names directives that take a free port of their
        own (``cluster-port``: the cluster bus)."""
        bins = bins or find_redis_bins()
        if tls:
            reason = tls_unsupported_reason(bins)
            if reason:
                raise RuntimeError(reason)
        server = cls(host="127.0.0.1", port=free_port(), user=USER if auth else "",
                     password=PASSWORD if auth else "", database=0, external=False,
                     root=Path(tempfile.mkdtemp(prefix=prefix)), bins=bins, tls=tls,
                     tls_port=free_port() if tls else None, sentinel=sentinel,
                     persistence=persistence, extra_conf=extra_conf, extra_ports=extra_ports)
        register_cleanup(server.cleanup)
        try:
            assert server.root is not None
            server.root.chmod(0o700)
            server.data_dir.mkdir()
            if tls:
                server.certs = make_certificates(server.root / "certs")
            server._write_config()
            server.start_on_free_port(attempts)
        except BaseException:
            server.cleanup()
            raise
        return server

    # ---- addresses -----------------------------------------------------------------

    def _credentials(self) -> str:
        if not self.password:
            return ""
        return f"{self.user}:{self.password}@" if self.user else f":{self.password}@"

    @property
    def url(self) -> str:
        """redis://dbpool:dbpool-secret@127.0.0.1:PORT/0 (rediss:// for an external TLS server)."""
        if self.external and self.tls:
            return f"rediss://{self._credentials()}{self.host}:{self.port}/{self.database}"
        return f"redis://{self._credentials()}{self.host}:{self.port}/{self.database}"

    @property
    def unix_url(self) -> str:
        """unix://dbpool:dbpool-secret@/tmp/.../redis.sock?db=0 (private servers)."""
        return f"unix://{self._credentials()}{self.socket_path}?db={self.database}"

    @property
    def tls_url(self) -> str:
        """rediss://dbpool:dbpool-secret@127.0.0.1:TLS_PORT/0 (TLS servers only)."""
        if not self.tls or self.tls_port is None:
            raise RuntimeError(f"{self!r} has no TLS port")
        return f"rediss://{self._credentials()}{self.host}:{self.tls_port}/{self.database}"

    @property
    def address(self) -> str:
        """host:port"""
        return f"{self.host}:{self.port}"

    def client_tls_context(self) -> ssl.SSLContext:
        """An SSLContext trusting the test CA (private TLS servers)."""
        if self.certs is None:
            raise RuntimeError(f"{self!r} has no test certificates")
        ctx = ssl.create_default_context(cafile=str(self.certs.ca_cert))
        return ctx

    # ---- files -------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        assert self.root is not None, "an external server has no files here"
        return self.root / name

    @property
    def data_dir(self) -> Path:
        return self._path("data")

    @property
    def config_file(self) -> Path:
        return self._path("redis.conf")

    @property
    def log_file(self) -> Path:
        return self._path("redis.log")

    @property
    def socket_path(self) -> Path:
        return self._path("redis.sock")

    def log_tail(self, lines: int = 40) -> str:
        """The end of the log (private servers), for failure messages."""
        if self.root is None or not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _write_config(self) -> None:
        conf = [
            "# written by tests/redis_server.py",
            "bind 127.0.0.1",
            f"port {self.port}",
            "daemonize no",
            f"dir {self.data_dir}",
            f"logfile {self.log_file}",
            "loglevel notice",
        ]
        conf += [f"{name} {port}" for name, port in self.ports.items()]
        if not self.sentinel:
            conf += [f"unixsocket {self.socket_path}", "unixsocketperm 700", 'save ""',
                     "appendonly yes\nappendfsync everysec" if self.persistence else "appendonly no"]
        if self.password:
            conf += [f"requirepass {self.password}",
                     f"user {self.user} on >{self.password} ~* &* +@all"]
            if not self.sentinel:
                conf += [f"masteruser {self.user}", f"masterauth {self.password}"]
        if self.tls and self.certs is not None:
            conf += [f"tls-port {self.tls_port}", f"tls-cert-file {self.certs.server_cert}",
                     f"tls-key-file {self.certs.server_key}",
                     f"tls-ca-cert-file {self.certs.ca_cert}", "tls-auth-clients optional"]
        if self.extra_conf:
            conf.append(self.extra_conf.rstrip("\n"))
        self.config_file.write_text("\n".join(conf) + "\n")
        self.config_file.chmod(0o600)

    # ---- talking to it -----------------------------------------------------------------

    def connect(self, timeout: float = 5.0, *, tls: bool = False, auth: bool = True) -> RespConnection:
        """A RESP connection (authenticated unless auth=False); TLS on tls_port if tls."""
        port, ctx = self.port, None
        if tls or (self.external and self.tls):
            port = self.tls_port or self.port
            ctx = self.client_tls_context() if self.certs else ssl.create_default_context()
        return RespConnection(self.host, port, username=self.user if auth else "",
                              password=self.password if auth else "", timeout=timeout, tls=ctx)

    def command(self, *args: object, timeout: float = 5.0, decode: bool = True) -> Reply:
        """One command on a fresh authenticated connection; its reply
        (RespError for an error reply, TimeoutError after `timeout`)."""
        with self.connect(timeout) as conn:
            if self.database and not self.sentinel:
                conn.command("SELECT", self.database)
            return conn.command(*args, decode=decode)

    def info(self, section: str = "") -> dict[str, str]:
        """INFO [section] as {field: value}."""
        text = self.command("INFO", section) if section else self.command("INFO")
        assert isinstance(text, str)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))

    def cli(self, *args: str, timeout: float = 10, tls: bool = False) -> str:
        """Runs redis-cli against this server (as dbpool, the password in
        REDISCLI_AUTH, never in argv) and returns its stdout. RuntimeError
        with stderr and the log tail when it fails; TimeoutError after `timeout`."""
        if self.password and any(self.password in a for a in args):
            raise ValueError("the password must not be on redis-cli's command line")
        bins = self.bins or find_redis_bins()
        cmd = [str(bins.cli), "-h", self.host, "-e", "--no-auth-warning"]
        if tls or (self.external and self.tls):
            cmd += ["-p", str(self.tls_port or self.port), "--tls"]
            if self.certs:
                cmd += ["--cacert", str(self.certs.ca_cert)]
        else:
            cmd += ["-p", str(self.port)]
        env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
        if self.password:
            env["REDISCLI_AUTH"] = self.password
            if self.user:
                cmd += ["--user", self.user]
        if self.database and not self.sentinel:
            cmd += ["-n", str(self.database)]
        try:
            proc = subprocess.run([*cmd, *args], stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"redis-cli {' '.join(args[:3])} did not finish within {timeout}s "
                               f"on {self!r}\n{self.log_tail(10)}") from None
        if proc.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(args[:3])} failed on {self!r} ({proc.returncode}): "
                               f"{(proc.stderr + proc.stdout).strip()[-2000:]}\n{self.log_tail(10)}")
        return proc.stdout

    # ---- control -------------------------------------------------------------------------

    def _require_private(self) -> None:
        if self.external:
            raise RuntimeError(f"the server from {ENV_URL} cannot be stopped, restarted or frozen")

    @property
    def running(self) -> bool:
        """External, or started and not stopped (a frozen server is running)."""
        return self.external or (self._proc is not None and self._proc.poll() is None)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start_on_free_port(self, attempts: int = 3) -> None:
        """start(); if that fails (most likely someone took a port since
        free_port() chose it), again on other free ports."""
        for attempt in range(attempts):
            try:
                self.start()
                return
            except RuntimeError as exc:
                if attempt == attempts - 1 or "already in use" not in str(exc):
                    raise  # only a taken port is worth another try
                self.port = free_port()
                self.tls_port = free_port() if self.tls else None
                self.ports = {name: free_port() for name in self.ports}
                self._write_config()

    def start(self, timeout: float = 30) -> None:
        """Starts the (stopped) private server; returns once it answers PING."""
        self._require_private()
        assert self.bins is not None
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        with open(self._path("stdout.log"), "ab") as out:
            self._proc = subprocess.Popen(
                [str(self.bins.server), str(self.config_file), *(["--sentinel"] if self.sentinel else [])],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=self.root,
                start_new_session=True,  # a ^C to the tests does not reach it
            )
        self._frozen = False
        try:
            self.wait_ready(timeout)
        except BaseException as exc:
            self._kill_and_reap()
            stdout = self._path("stdout.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self!r} did not start: {exc}\n{stdout}{self.log_tail()}") from None

    def wait_ready(self, timeout: float = 10) -> None:
        """Waits until the server answers PING with PONG (not LOADING) over
        TCP, and over TLS when it has a TLS port; RuntimeError at once if our
        server process has exited."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.external and not self.running:
                code = self._proc.returncode if self._proc else None
                raise RuntimeError(f"redis-server exited ({code})")
            try:
                left = max(0.1, min(2.0, deadline - time.monotonic()))
                with self.connect(left) as conn:
                    if conn.command("PING") == "PONG":
                        if not (self.tls and not self.external):
                            return
                        with self.connect(left, tls=True) as tconn:
                            if tconn.command("PING") == "PONG":
                                return
            except (OSError, RespError, TimeoutError) as exc:  # refused, LOADING, ...
                last = exc
            time.sleep(0.01)
        raise TimeoutError(f"no PONG from {self.address} within {timeout}s ({last})")

    def stop(self, mode: str = "clean", timeout: float = 30) -> None:
        """Stops the private server: mode 'clean' (SIGTERM: Redis closes its
        clients and exits) or 'kill' (SIGKILL, like a crash). A frozen server
        is thawed first."""
        self._require_private()
        if mode not in ("clean", "kill"):
            raise ValueError(f"mode must be 'clean' or 'kill', not {mode!r}")
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"{self!r} is not running")
        if mode == "kill":
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

    def kill(self) -> None:
        """SIGKILL (a crash): clients see their connections reset."""
        self.stop("kill")

    def restart(self, mode: str = "clean") -> None:
        """Stops (with `mode`) and starts the private server; the ports stay."""
        self.stop(mode)
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (a hung
        server; the kernel still completes new TCP handshakes) until thaw()."""
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
        unregister_cleanup(self.cleanup)
        try:
            self._kill_and_reap()
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        kind = "external" if self.external else f"private in {self.root}"
        what = "RedisSentinel" if self.sentinel else "RedisServer"
        return f"<{what} {self.host}:{self.port}{' tls' if self.tls else ''} {kind}>"


def _main() -> None:
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # runs the cleanup below (and atexit)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # background jobs start with SIGINT ignored
    t0 = time.monotonic()
    with RedisServer.create(tls="--tls" in sys.argv[1:]) as srv:
        print(f"{srv!r} ready in {time.monotonic() - t0:.2f}s", flush=True)
        print(srv.url, flush=True)
        if srv.tls and not srv.external:
            print(srv.tls_url, flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    _main()
