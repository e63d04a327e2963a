"""Fixtures of the PostgreSQL tests.

One throwaway server serves the whole session (``tests/pg_server.py``; or the
server named by ``DB_POOL_TEST_PG_DSN``). Every test gets its own schema,
created before and dropped after it, and its pools put that schema first on
their ``search_path`` (the libpq ``options`` setting), so tests can use plain
table names without stepping on each other.

- ``pg``: a DatabasePool (pool created with host/port/... keywords) or a
  SyncDatabasePool behind the same awaitable methods (pool created with a
  postgresql:// URL), each with the pool "pg" (max_size=4).
- ``apg`` / ``spg``: the async / sync pool object alone (no wrapper), with
  the pool "pg", for what only one API has.
- ``admin``: a psycopg connection (autocommit) on the same schema, for
  checks from outside the library (pg_stat_activity, row counts) and for
  setting up data without going through the code under test.

This directory is a package (``__init__.py``) only so that this conftest
module is not imported under the name ``conftest``, which would shadow
tests/python/conftest.py for the SQLite tests.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator
from urllib.parse import quote

import pytest

import db_pool
from db_pool import DatabasePool, SyncDatabasePool

TESTS_DIR = Path(__file__).resolve().parents[2]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from pg_server import ENV_DSN, PgServer  # noqa: E402
from tls_certs import CertificateSet, make_certificates  # noqa: E402
from sync_as_async import SyncAsAsync

HAVE_PG_ENGINE = "postgresql" in db_pool.engines()
SKIP_REASON = (
    "this db_pool build has no 'postgresql' engine (engines: "
    f"{db_pool.engines()}); it needs libpq-dev at build time and src/drivers/pg/pg_types.c"
)

POOL_ID = "pg"


# ---- skipping ----------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without the engine every test of this directory is skipped, with the reason."""
    if HAVE_PG_ENGINE:
        return
    here = Path(__file__).resolve().parent
    marker = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(marker)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than 10 s")


# ---- the server ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[PgServer]:
    """The session's PostgreSQL server (started here unless DB_POOL_TEST_PG_DSN is set)."""
    if not HAVE_PG_ENGINE:
        pytest.skip(SKIP_REASON)
    try:
        server = PgServer.create()
    except FileNotFoundError as exc:
        pytest.skip(f"no PostgreSQL server to test against: {exc} (or set {ENV_DSN})")
    request.addfinalizer(server.cleanup)  # atexit covers a killed session too
    yield server


#: The TLS server's roles: one that logs in by its client certificate alone
#: (pg_hba "cert"), and the test role over hostssl only.
TLS_CLIENT_ROLE = "dbpool_client"
TLS_CLIENT_PASSWORD = "client-secret"


@dataclass
class TlsServer:
    server: PgServer
    certs: CertificateSet


TLS_HBA = (
    "# written by tests/python/pg/conftest.py: TLS connections only over TCP\n"
    "local all all trust\n"
    f"hostssl postgres {TLS_CLIENT_ROLE} 127.0.0.1/32 cert\n"
    f"hostssl all {TLS_CLIENT_ROLE} 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n"
    "hostssl all all 127.0.0.1/32 scram-sha-256\n"
)


@pytest.fixture(scope="module")
def pg_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """A private server with ssl=on (certificates made now by openssl: a CA,
    a server certificate for localhost and 127.0.0.1, a client certificate
    for the role dbpool_client) that takes TCP connections over TLS only
    (hostssl lines; one needing a verified client certificate)."""
    if not HAVE_PG_ENGINE:
        pytest.skip(SKIP_REASON)
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make the test certificates")
    try:
        server = PgServer.new_private(prefix="dbpool-pg-tls-")
    except FileNotFoundError as exc:
        pytest.skip(f"no PostgreSQL server to test against: {exc}")
    try:
        assert server.root is not None
        # the server's copies live in its own directory, owned by the user it runs as
        certs = make_certificates(tmp_path_factory.mktemp("tls"), TLS_CLIENT_ROLE)
        tls_dir = server.root / "tls"
        tls_dir.mkdir()
        for src in (certs.server_cert, certs.server_key, certs.ca_cert):
            shutil.copy(src, tls_dir / src.name)
        (tls_dir / certs.server_key.name).chmod(0o600)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for f in (tls_dir, *tls_dir.iterdir()):
                os.chown(f, pw.pw_uid, pw.pw_gid)
        server._initdb(extra_conf=(
            "ssl = on\n"
            f"ssl_cert_file = '{tls_dir / certs.server_cert.name}'\n"
            f"ssl_key_file = '{tls_dir / certs.server_key.name}'\n"
            f"ssl_ca_file = '{tls_dir / certs.ca_cert.name}'\n"))
        (server.data_dir / "pg_hba.conf").write_text(TLS_HBA)
        server.start_on_free_port()
        server._bootstrap()
        server._psql(f"CREATE ROLE {TLS_CLIENT_ROLE} LOGIN PASSWORD '{TLS_CLIENT_PASSWORD}'")
    except BaseException:
        server.cleanup()
        raise
    yield TlsServer(server, certs)
    server.cleanup()


@pytest.fixture
def private_server(pg_server: PgServer) -> Iterator[PgServer]:
    """The session server, for tests that stop or restart it (skipped when
    the server is an external one from DB_POOL_TEST_PG_DSN). Restores it
    to running afterwards."""
    if pg_server.external:
        pytest.skip(f"the server from {ENV_DSN} is not ours to restart")
    yield pg_server
    if not pg_server.running:
        pg_server.start()


def psycopg_connect(server: PgServer, schema: str | None = None, **kwargs: Any) -> Any:
    psycopg = pytest.importorskip("psycopg")
    options = "-c TimeZone=UTC"
    if schema:
        options += f" -c search_path={schema}"
    return psycopg.connect(server.dsn, autocommit=True, options=options, **kwargs)


@pytest.fixture
def schema(pg_server: PgServer) -> Iterator[str]:
    """A fresh schema for one test, dropped (CASCADE) afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg_connect(pg_server) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield name
    try:
        with psycopg_connect(pg_server, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    except Exception:  # the server may be down after a failed restart test
        pass


@pytest.fixture
def admin(pg_server: PgServer, schema: str) -> Iterator[Any]:
    """psycopg connection (autocommit, TimeZone UTC) with the test's schema first."""
    conn = psycopg_connect(pg_server, schema)
    try:
        yield conn
    finally:
        conn.close()


# ---- creating pools -------------------------------------------------------------------


def pg_options(schema: str, timezone: str | None = None) -> str:
    """The libpq 'options' value putting `schema` first on the search_path."""
    opts = f"-c search_path={schema}"
    if timezone:
        opts += f" -c TimeZone={timezone}"
    return opts


def pg_url(server: PgServer, schema: str | None = None, timezone: str | None = None,
           password: str | None = None, **params: Any) -> str:
    """postgresql://user:pass@host:port/db?options=...; every part percent-encoded."""
    pw = server.password if password is None else password
    url = (
        f"postgresql://{quote(server.user, safe='')}:{quote(pw, safe='')}"
        f"@{server.host}:{server.port}/{quote(server.database, safe='')}"
    )
    query = dict(params)
    if schema:
        query["options"] = pg_options(schema, timezone)
    if query:
        url += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
    return url


def pool_kwargs(server: PgServer, schema: str, timezone: str | None = None,
                **options: Any) -> dict[str, Any]:
    """create_pool keywords (db_type + host/port/...) for the test's schema."""
    return {
        "db_type": "postgresql",
        **server.connect_kwargs(),
        "options": pg_options(schema, timezone),
        **options,
    }


# ---- pool fixtures ---------------------------------------------------------------------


@pytest.fixture(params=["async-kwargs", "sync-url"])
async def pg(request: pytest.FixtureRequest, pg_server: PgServer, schema: str) -> AsyncIterator[Any]:
    """The pool "pg" (max_size=4) in a DatabasePool created with keywords, or
    in a SyncDatabasePool (awaitable wrapper) created with a URL."""
    if request.param == "async-kwargs":
        pool: Any = DatabasePool()
        try:
            await pool.create_pool(POOL_ID, **pool_kwargs(pg_server, schema), max_size=4)
        except BaseException:
            await pool.close()
            raise
    else:
        pool = SyncAsAsync(SyncDatabasePool())
        try:
            await pool.create_pool(POOL_ID, url=pg_url(pg_server, schema), max_size=4)
        except BaseException:
            await pool.close()
            raise
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def apg(pg_server: PgServer, schema: str) -> AsyncIterator[DatabasePool]:
    """A DatabasePool with the pool "pg" (keywords, max_size=4)."""
    pool = DatabasePool()
    try:
        await pool.create_pool(POOL_ID, **pool_kwargs(pg_server, schema), max_size=4)
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def spg(pg_server: PgServer, schema: str) -> Iterator[SyncDatabasePool]:
    """A SyncDatabasePool with the pool "pg" (URL, max_size=4)."""
    pool = SyncDatabasePool()
    try:
        pool.create_pool(POOL_ID, url=pg_url(pg_server, schema), max_size=4)
        yield pool
    finally:
        pool.close()


@pytest.fixture(params=["async", "sync"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """An empty DatabasePool or SyncDatabasePool (wrapped), for tests that
    create their own pools."""
    pool: Any = DatabasePool() if request.param == "async" else SyncAsAsync(SyncDatabasePool())
    try:
        yield pool
    finally:
        await pool.close()


# ---- helpers -----------------------------------------------------------------------------


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
    """No connection leaked, and the pool answers a query (both read paths)."""
    stats = pool.stats(pool_id)
    assert stats["in_use"] == 0, stats
    assert stats["waiting"] == 0, stats
    df = await pool.query(pool_id, "SELECT 41 + 1 AS answer")
    assert df.to_dict(as_series=False) == {"answer": [42]}
    df = await pool.query(pool_id, "SELECT $1::int4 + 1 AS answer", [41])
    assert df.to_dict(as_series=False) == {"answer": [42]}
    assert pool.stats(pool_id)["in_use"] == 0


def active_queries(admin: Any, like: str) -> list[tuple[Any, ...]]:
    """Backends (other than admin's) running a query containing `like`."""
    return admin.execute(
        "SELECT pid, state, query FROM pg_stat_activity "
        "WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE %s",
        (f"%{like}%",),
    ).fetchall()


async def wait_no_active(admin: Any, like: str, timeout: float = 3.0) -> float:
    """Waits until no backend runs a query containing `like`; returns the seconds it took."""
    start = time.monotonic()
    while True:
        rows = active_queries(admin, like)
        if not rows:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"still running on the server after {timeout}s: {rows}")
        await asyncio.sleep(0.02)
