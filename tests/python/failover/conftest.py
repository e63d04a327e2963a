"""Fixtures of the failover tests: real PostgreSQL streaming replication
(tests/pg_cluster.py) and a real PgBouncer (tests/pgbouncer.py). No mocks.

- ``pg_cluster``: a fresh primary (node 0) + synchronous standby (node 1)
  for each test, already streaming; tests kill, stop and promote nodes, so
  nothing is shared between tests. About 1.5-3 s each.
- ``pg_cluster_factory``: ``make(standbys=1, synchronous=True)`` for other
  shapes; every cluster made is removed after the test.
- ``pgbouncer``: one PgBouncer (transaction pooling) for the session, in
  front of its own private PgServer (``pgbouncer_server``), never the
  server of DB_POOL_TEST_PG_DSN.

Missing PostgreSQL server binaries or a missing pgbouncer FAIL the tests
(with a hint) rather than skip them: `make test` installs both, and a
failover suite that silently skipped would prove nothing.

This directory is a package (``__init__.py``) so that this module is not
imported under the name ``conftest`` (see tests/python/pg/conftest.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator, NoReturn

import pytest

TESTS_DIR = Path(__file__).resolve().parents[2]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from pg_cluster import PgCluster  # noqa: E402
from pg_server import PgServer  # noqa: E402
from pgbouncer import PgBouncer  # noqa: E402


def _missing(exc: FileNotFoundError) -> NoReturn:
    pytest.fail(f"{exc}\n-> run `make test`, which installs the Debian packages "
                "postgresql and pgbouncer", pytrace=False)


@pytest.fixture
def pg_cluster_factory() -> Iterator[Callable[..., PgCluster]]:
    """make(standbys=1, synchronous=True) -> a started, streaming PgCluster;
    all of them are cleaned up after the test."""
    made: list[PgCluster] = []

    def make(standbys: int = 1, synchronous: bool = True) -> PgCluster:
        try:
            cluster = PgCluster.create(standbys, synchronous=synchronous)
        except FileNotFoundError as exc:
            _missing(exc)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.cleanup()


@pytest.fixture
def pg_cluster(pg_cluster_factory: Callable[..., PgCluster]) -> PgCluster:
    """A fresh primary (node 0) + synchronous streaming standby (node 1)."""
    return pg_cluster_factory()


@pytest.fixture(scope="session")
def pgbouncer_server() -> Iterator[PgServer]:
    """The private PostgreSQL server behind the session's PgBouncer."""
    try:
        server = PgServer.start_private()
    except FileNotFoundError as exc:
        _missing(exc)
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def pgbouncer(pgbouncer_server: PgServer) -> Iterator[PgBouncer]:
    """PgBouncer in transaction pool mode in front of pgbouncer_server
    (max_client_conn 200, default_pool_size 10); ``.dsn`` to connect."""
    try:
        bouncer = PgBouncer.for_server(pgbouncer_server)
    except FileNotFoundError as exc:
        _missing(exc)
    yield bouncer
    bouncer.cleanup()
