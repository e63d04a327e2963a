"""Fixtures of the MySQL/MariaDB tests: real MariaDB servers
(tests/mysql_server.py) and a real primary/replica cluster with
semi-synchronous replication (tests/mysql_cluster.py). No mocks.

- ``mysql_server``: one server for the session (or the server named by
  ``DB_POOL_TEST_MYSQL_DSN``); user dbpool_test / dbpool-secret, database
  dbpool_test, strict sql_mode, utf8mb4, local_infile on, time zone +00:00.
  Tests share its database: use table names of their own (``table_name``).
- ``mysql_dsn``: its mysql:// URL.
- ``mysql_private_server``: the session server, for tests that stop,
  restart or freeze it (skipped for an external server); left running and
  thawed afterwards.
- ``mysql_cluster``: a fresh primary (node 0) + semi-synchronous replica
  (node 1) for each test, already replicating; tests kill, stop and promote
  nodes, so nothing is shared between tests.
- ``mysql_cluster_factory``: ``make(replicas=1, semisync=True)`` for other
  shapes; every cluster made is removed after the test.

Missing MariaDB programs FAIL the tests (with a hint) rather than skip
them: `make test` installs them, and a suite that silently skipped would
prove nothing.

This directory is a package (``__init__.py``) so that this module is not
imported under the name ``conftest`` (see tests/python/pg/conftest.py).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator, NoReturn

import pytest

TESTS_DIR = Path(__file__).resolve().parents[2]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from mysql_cluster import MysqlCluster  # noqa: E402
from mysql_server import ENV_DSN, MysqlServer  # noqa: E402


def _missing(exc: FileNotFoundError) -> NoReturn:
    pytest.fail(f"{exc}\n-> run `make test`, which installs the Debian packages "
                "mariadb-server, mariadb-client and libmariadb-dev", pytrace=False)


@pytest.fixture(scope="session")
def mysql_server(request: pytest.FixtureRequest) -> Iterator[MysqlServer]:
    """The session's MariaDB server (started here unless DB_POOL_TEST_MYSQL_DSN is set)."""
    try:
        server = MysqlServer.create()
    except FileNotFoundError as exc:
        _missing(exc)
    request.addfinalizer(server.cleanup)  # atexit covers a killed session too
    yield server


@pytest.fixture
def mysql_dsn(mysql_server: MysqlServer) -> str:
    """mysql://dbpool_test:dbpool-secret@127.0.0.1:PORT/dbpool_test"""
    return mysql_server.dsn


@pytest.fixture
def mysql_private_server(mysql_server: MysqlServer) -> Iterator[MysqlServer]:
    """The session server, for tests that stop, restart or freeze it (skipped
    when it is an external one from DB_POOL_TEST_MYSQL_DSN). Thawed and
    running again afterwards."""
    if mysql_server.external:
        pytest.skip(f"the server from {ENV_DSN} is not ours to restart or freeze")
    yield mysql_server
    mysql_server.thaw()
    if not mysql_server.running:
        mysql_server.start()


@pytest.fixture
def table_name(mysql_server: MysqlServer) -> Iterator[str]:
    """A fresh table name in dbpool_test for one test; the table (if the
    test made it) is dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    try:
        mysql_server.sql(f"DROP TABLE IF EXISTS {mysql_server.database}.{name}", timeout=10)
    except Exception:  # the server may be down after a failed restart test
        pass


@pytest.fixture
def mysql_cluster_factory() -> Iterator[Callable[..., MysqlCluster]]:
    """make(replicas=1, semisync=True) -> a started, replicating MysqlCluster;
    all of them are cleaned up after the test."""
    made: list[MysqlCluster] = []

    def make(replicas: int = 1, semisync: bool = True) -> MysqlCluster:
        try:
            cluster = MysqlCluster.create(replicas, semisync=semisync)
        except FileNotFoundError as exc:
            _missing(exc)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.cleanup()


@pytest.fixture
def mysql_cluster(mysql_cluster_factory: Callable[..., MysqlCluster]) -> MysqlCluster:
    """A fresh primary (node 0) + semi-synchronous replica (node 1)."""
    return mysql_cluster_factory()
