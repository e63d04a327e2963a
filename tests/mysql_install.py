"""MariaDB programs and the template data directory of tests/mysql_server.py.

``find_mariadb_bins()`` locates mariadbd, mariadb-install-db and the mariadb
client (FileNotFoundError naming the Debian packages when one is missing).
``template_datadir()`` runs mariadb-install-db once per process (0.6-2 s)
into a temporary directory removed at exit: system tables, root without a
password (``normal`` authentication; the servers let root in over their
Unix socket only), no test database, no anonymous users, and the users and
database of BOOTSTRAP_SQL. Every private server starts from a copy of it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MariadbBins", "find_mariadb_bins", "template_datadir", "as_root",
           "USER", "PASSWORD", "DATABASE", "REPL_USER", "FAST_SETTINGS"]

USER = "dbpool_test"
PASSWORD = "dbpool-secret"
DATABASE = "dbpool_test"
REPL_USER = "dbpool_repl"  # REPLICATION SLAVE only, no password, 127.0.0.1 only

#: Run once, when the template is made (bootstrap mode: grant tables are
#: loaded by the first FLUSH PRIVILEGES). Root stays on the socket only
#: (root@127.0.0.1, @::1, @<hostname> and anonymous users are removed).
BOOTSTRAP_SQL = f"""\
DELETE FROM mysql.global_priv WHERE NOT (Host = 'localhost' AND User IN ('root', 'mariadb.sys'));
DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';
FLUSH PRIVILEGES;
CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4;
CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';
GRANT ALL PRIVILEGES ON {DATABASE}.* TO '{USER}'@'127.0.0.1', '{USER}'@'%';
GRANT PROCESS, RELOAD, BINLOG MONITOR ON *.* TO '{USER}'@'127.0.0.1', '{USER}'@'%';
CREATE USER '{REPL_USER}'@'127.0.0.1';
GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'127.0.0.1';
"""

#: Server settings of every private server (and of mariadb-install-db).
FAST_SETTINGS = """\
skip-name-resolve
performance_schema = OFF
innodb_buffer_pool_size = 32M
innodb_log_file_size = 16M
innodb_flush_log_at_trx_commit = 2
innodb_doublewrite = 0
innodb_flush_method = nosync
sync_binlog = 0
"""


@dataclass(frozen=True)
class MariadbBins:
    """Paths of the MariaDB programs the fixtures run."""

    server: Path  # mariadbd
    install_db: Path  # mariadb-install-db
    client: Path  # mariadb


def _which(name: str, *extra_dirs: str) -> Path | None:
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(extra_dirs))
    return Path(found) if found else None


def find_mariadb_bins() -> MariadbBins:
    """mariadbd (PATH, /usr/sbin, /usr/libexec), mariadb-install-db and the
    mariadb client; FileNotFoundError naming the Debian packages otherwise."""
    server = _which("mariadbd", "/usr/sbin", "/usr/libexec", "/usr/local/sbin")
    install_db = _which("mariadb-install-db", "/usr/bin", "/usr/local/bin")
    client = _which("mariadb", "/usr/bin", "/usr/local/bin")
    if server is None or install_db is None or client is None:
        missing = [n for n, p in (("mariadbd", server), ("mariadb-install-db", install_db),
                                  ("mariadb", client)) if p is None]
        raise FileNotFoundError(
            f"no MariaDB server programs ({', '.join(missing)} not found): install the "
            "Debian packages mariadb-server and mariadb-client"
        )
    return MariadbBins(server, install_db, client)


def as_root() -> bool:
    return os.geteuid() == 0


# ---- the template data directory ---------------------------------------------------

_templates: dict[Path, Path] = {}
_templates_lock = threading.Lock()


def template_datadir(bins: MariadbBins, timeout: float = 120) -> Path:
    """A data directory made once per process by mariadb-install-db (system
    tables, BOOTSTRAP_SQL), which every private server copies."""
    with _templates_lock:
        if bins.server in _templates:
            return _templates[bins.server]
        root = Path(tempfile.mkdtemp(prefix="dbpool-mysql-template-"))
        atexit.register(shutil.rmtree, root, True)
        (root / "bootstrap.sql").write_text(BOOTSTRAP_SQL)
        cmd = [
            str(bins.install_db),
            "--no-defaults",
            f"--datadir={root / 'data'}",
            "--auth-root-authentication-method=normal",  # root: no password, socket only
            "--skip-test-db",
            "--skip-name-resolve",
            f"--extra-file={root / 'bootstrap.sql'}",
            *(["--user=root"] if as_root() else []),
            # the rest goes to mariadbd --bootstrap
            *(f"--{line.replace(' ', '')}" for line in FAST_SETTINGS.splitlines()),
        ]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "LC_ALL": "C"})
        if proc.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"mariadb-install-db failed ({proc.returncode}):\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        _templates[bins.server] = root / "data"
        return root / "data"
