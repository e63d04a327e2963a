"""Fixtures of the MSSQL tests.

One TDS 7.4 test server (``tests/tds_server``, SQL Server's wire protocol on
sqlite) serves the whole session; ``DB_POOL_TEST_MSSQL_DSN`` (an mssql://
URL) points the suite at a real SQL Server instead, and the tests that need
the test server's fault knobs or counters are then skipped.

- ``server``: a ``Target`` (host, port, user, password, database; ``tds``
  is the TdsTestServer, None for a real server).
- ``ms``: a DatabasePool (pool created with keywords) or a
  SyncDatabasePool behind the same awaitable methods (pool created with an
  mssql:// URL), each with the pool "ms" (max_size=4).
- ``ams`` / ``sms``: the async / sync pool alone.
- ``table``: a fresh table name, dropped after the test.

This directory is a package (``__init__.py``) so that this conftest is not
imported under the name ``conftest`` (which would shadow
tests/python/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator
from urllib.parse import quote, unquote, urlsplit

import pytest

import db_pool
from db_pool import DatabasePool, SyncDatabasePool

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.python.sync_as_async import SyncAsAsync  # noqa: E402
from tests.tds_server import TdsTestServer  # noqa: E402

ENV_DSN = "DB_POOL_TEST_MSSQL_DSN"
POOL_ID = "ms"
HAVE_ENGINE = "mssql" in db_pool.engines()
SKIP_REASON = (
    f"this db_pool build has no 'mssql' engine (engines: {db_pool.engines()}); "
    "it needs FreeTDS db-lib (freetds-dev) at build time"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_ENGINE:
        return
    here = Path(__file__).resolve().parent
    marker = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(marker)


# ---- the server ----------------------------------------------------------------------


@dataclass
class Target:
    host: str
    port: int
    user: str
    password: str
    database: str
    tds: TdsTestServer | None  # None: a real SQL Server from ENV_DSN

    def kwargs(self, **extra: Any) -> dict[str, Any]:
        """create_pool keywords (db_type + host/port/...)."""
        return {
            "db_type": "mssql",
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "username": self.user,
            "password": self.password,
            **extra,
        }

    def url(self, password: str | None = None, database: str | None = None, **params: Any) -> str:
        pw = self.password if password is None else password
        db = self.database if database is None else database
        url = (f"mssql://{quote(self.user, safe='')}:{quote(pw, safe='')}@{self.host}:{self.port}/"
               f"{quote(db, safe='')}")
        if params:
            url += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
        return url


@pytest.fixture(scope="session")
def server() -> Iterator[Target]:
    if not HAVE_ENGINE:
        pytest.skip(SKIP_REASON)
    dsn = os.environ.get(ENV_DSN)
    if dsn:
        parts = urlsplit(dsn)
        yield Target(parts.hostname or "localhost", parts.port or 1433, unquote(parts.username or "sa"),
                     unquote(parts.password or ""), unquote(parts.path.lstrip("/")) or "master", None)
        return
    with TdsTestServer() as tds:
        yield Target(tds.host, tds.port, tds.user, tds.password, "dbpool", tds)


@pytest.fixture
def tds(server: Target) -> Iterator[TdsTestServer]:
    """The test server, for tests of its fault knobs and counters; the knobs
    are reset afterwards."""
    if server.tds is None:
        pytest.skip(f"the server from {ENV_DSN} has no fault knobs")
    yield server.tds
    f = server.tds.faults
    f.delay_ms, f.drop_after_rows, f.refuse_connections, f.refuse_logins = 0, None, False, False


@pytest.fixture
def table(server: Target, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh table name; the table (if created) is dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    with SyncDatabasePool() as pool:
        pool.create_pool("cleanup", **server.kwargs(min_size=1, max_size=1))
        pool.execute("cleanup", f"IF OBJECT_ID('{name}') IS NOT NULL DROP TABLE {name}")


# ---- the sync API behind awaitable methods ------------------------------------------


# ---- pools ------------------------------------------------------------------------------


@pytest.fixture(params=["async-kwargs", "sync-url"])
async def ms(request: pytest.FixtureRequest, server: Target) -> AsyncIterator[Any]:
    """The pool "ms" (max_size=4) in a DatabasePool created with keywords, or
    in a SyncDatabasePool (awaitable wrapper) created with a URL."""
    pool: Any
    if request.param == "async-kwargs":
        pool = DatabasePool()
        create = pool.create_pool(POOL_ID, **server.kwargs(max_size=4))
    else:
        pool = SyncAsAsync(SyncDatabasePool())
        create = pool.create_pool(POOL_ID, url=server.url(), max_size=4)
    try:
        await create
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def ams(server: Target) -> AsyncIterator[DatabasePool]:
    """A DatabasePool with the pool "ms" (keywords, max_size=4)."""
    pool = DatabasePool()
    try:
        await pool.create_pool(POOL_ID, **server.kwargs(max_size=4))
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def sms(server: Target) -> Iterator[SyncDatabasePool]:
    """A SyncDatabasePool with the pool "ms" (URL, max_size=4)."""
    pool = SyncDatabasePool()
    try:
        pool.create_pool(POOL_ID, url=server.url(), max_size=4)
        yield pool
    finally:
        pool.close()


# ---- helpers ------------------------------------------------------------------------------


def series(server: Target, n: int, extra: str = "") -> str:
    """SQL returning x = 1..n (plus `extra` select-list text): a recursive
    CTE, with SQL Server's recursion limit lifted on a real server."""
    sql = f"WITH c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT x{extra} FROM c"
    return sql if server.tds is not None else sql + " OPTION (MAXRECURSION 0)"


async def wait_idle(pool: Any, pool_id: str = POOL_ID, timeout: float = 5.0) -> dict[str, Any]:
    """Polls stats until nothing is in use or waiting; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        stats = pool.stats(pool_id)
        if stats["in_use"] == 0 and stats["waiting"] == 0:
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"pool {pool_id!r} still busy after {timeout}s: {stats}")
        await asyncio.sleep(0.01)


async def assert_healthy(pool: Any, pool_id: str = POOL_ID) -> None:
    """No connection leaked; the pool answers a batch and an RPC; no
    transaction is left open."""
    stats = await wait_idle(pool, pool_id)
    assert stats["in_use"] == 0, stats
    df = await pool.query(pool_id, "SELECT 41 + 1 AS answer, @@TRANCOUNT AS tc")
    assert df.to_dict(as_series=False) == {"answer": [42], "tc": [0]}
    df = await pool.query(pool_id, "SELECT @P1 + 1 AS answer", [41])
    assert df["answer"].to_list() == [42]
