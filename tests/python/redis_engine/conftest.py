"""Fixtures of the Redis tests: real Redis servers (tests/redis_server.py),
a real master + replicas + Sentinels set (tests/redis_sentinel.py) and a
real Redis Cluster (tests/redis_cluster.py). No mocks.

- ``redis_server``: one server for the session (or the server named by
  ``DB_POOL_TEST_REDIS_URL``); user dbpool / dbpool-secret (also the
  ``default`` user's password), no persistence. Tests share its keyspace:
  use keys under a prefix of their own (``redis_prefix``).
- ``redis_url``: its redis:// URL.
- ``redis_private_server``: the session server, for tests that stop,
  restart, kill or freeze it (skipped for an external server); thawed and
  running again afterwards.
- ``redis_server_factory``: ``make(**kwargs)`` for private servers of other
  shapes (``persistence=True``, ``auth=False``, ``extra_conf="maxmemory
  1mb"``); removed after the test.
- ``redis_tls_server``: a private server (never the external one) that also
  listens for TLS on ``tls_port`` with certificates from tests/tls_certs.py;
  skipped, with the reason, when this redis-server was built without TLS.
- ``redis_sentinel``: a fresh master (node 0) + 2 replicas + 3 Sentinels for
  each test, ready (2.2-2.3 s); tests kill and fail over, so nothing is
  shared. ``redis_sentinel_factory``: ``make(replicas=2, sentinels=3)``.
- ``redis_cluster``: a fresh 3-master cluster for each test (2.1 s, at times 3-4 s,
  most of it redis-cli polling the join once a second; tests reshard
  slots, so nothing is shared). ``redis_cluster_factory``:
  ``make(masters=3, replicas_per_master=0)``.

Missing Redis programs FAIL the tests (with a hint) rather than skip them:
`make test` installs them, and a suite that silently skipped would prove
nothing.

This directory is a package (``__init__.py``) so that this module is not
imported under the name ``conftest`` (see tests/python/pg/conftest.py). It
is not called ``redis``: pytest puts tests/python on sys.path, and a
package ``redis`` there would shadow redis-py.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

import pytest

TESTS_DIR = Path(__file__).resolve().parents[2]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from redis_cluster import RedisCluster  # noqa: E402
from redis_resp import RespError  # noqa: E402
from redis_sentinel import RedisSentinelSet  # noqa: E402
from redis_server import ENV_URL, RedisServer, find_redis_bins, tls_unsupported_reason  # noqa: E402


def _missing(exc: FileNotFoundError) -> NoReturn:
    pytest.fail(f"{exc}\n-> run `make test`, which installs the Debian packages "
                "redis-server, redis-tools and libhiredis-dev", pytrace=False)


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """The session's Redis server (started here unless DB_POOL_TEST_REDIS_URL is set)."""
    try:
        server = RedisServer.create()
    except FileNotFoundError as exc:
        _missing(exc)
    request.addfinalizer(server.cleanup)  # atexit and SIGTERM cover a killed session too
    yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """redis://dbpool:dbpool-secret@127.0.0.1:PORT/0"""
    return redis_server.url


@pytest.fixture
def redis_private_server(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session server, for tests that stop, restart, kill or freeze it
    (skipped when it is an external one from DB_POOL_TEST_REDIS_URL). Thawed
    and running again afterwards."""
    if redis_server.external:
        pytest.skip(f"the server from {ENV_URL} is not ours to stop or freeze")
    yield redis_server
    redis_server.thaw()
    if not redis_server.running:
        redis_server.start()


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., RedisServer]]:
    """make(**kwargs) -> a started private RedisServer (keywords of
    RedisServer.start_private: auth, tls, persistence, extra_conf such as
    "maxmemory 1mb"); all of them are removed after the test."""
    made: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        try:
            server = RedisServer.start_private(**kwargs)
        except FileNotFoundError as exc:
            _missing(exc)
        made.append(server)
        return server

    yield make
    for server in made:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_tls_server() -> Iterator[RedisServer]:
    """A private server with a TLS port (tls_port, tls_url, certs) besides its plain one."""
    try:
        reason = tls_unsupported_reason(find_redis_bins())
    except FileNotFoundError as exc:
        _missing(exc)
    if reason:
        pytest.skip(reason)
    server = RedisServer.start_private(tls=True, prefix="dbpool-redis-tls-")
    yield server
    server.cleanup()


@pytest.fixture
def redis_prefix(redis_server: RedisServer) -> Iterator[str]:
    """A fresh key prefix ("t:<12 hex>:") for one test; its keys are deleted afterwards."""
    prefix = f"t:{uuid.uuid4().hex[:12]}:"
    yield prefix
    try:
        cursor = "0"
        while True:
            reply = redis_server.command("SCAN", cursor, "MATCH", prefix + "*", "COUNT", 1000)
            assert isinstance(reply, list)
            cursor, keys = str(reply[0]), reply[1]
            if keys:
                redis_server.command("DEL", *keys)  # type: ignore[misc]
            if cursor == "0":
                break
    except (OSError, RespError, TimeoutError):  # the server may be down after a failed test
        pass


@pytest.fixture
def redis_sentinel_factory() -> Iterator[Callable[..., RedisSentinelSet]]:
    """make(replicas=2, sentinels=3, auth=True) -> a ready RedisSentinelSet;
    all of them are cleaned up after the test."""
    made: list[RedisSentinelSet] = []

    def make(replicas: int = 2, sentinels: int = 3, auth: bool = True) -> RedisSentinelSet:
        try:
            group = RedisSentinelSet.create(replicas, sentinels, auth=auth)
        except FileNotFoundError as exc:
            _missing(exc)
        made.append(group)
        return group

    yield make
    for group in made:
        group.cleanup()


@pytest.fixture
def redis_sentinel(redis_sentinel_factory: Callable[..., RedisSentinelSet]) -> RedisSentinelSet:
    """A fresh master (node 0) + 2 replicas + 3 Sentinels, ready."""
    return redis_sentinel_factory()


@pytest.fixture
def redis_cluster_factory() -> Iterator[Callable[..., RedisCluster]]:
    """make(masters=3, replicas_per_master=0, auth=True) -> a ready
    RedisCluster; all of them are cleaned up after the test."""
    made: list[RedisCluster] = []

    def make(masters: int = 3, replicas_per_master: int = 0, auth: bool = True) -> RedisCluster:
        try:
            cluster = RedisCluster.create(masters, replicas_per_master, auth=auth)
        except FileNotFoundError as exc:
            _missing(exc)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.cleanup()


@pytest.fixture
def redis_cluster(redis_cluster_factory: Callable[..., RedisCluster]) -> RedisCluster:
    """A fresh 3-master cluster (nodes 0-2), every slot assigned."""
    return redis_cluster_factory()
