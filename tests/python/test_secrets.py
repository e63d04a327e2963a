"""Passwords never leak: a marker password holding "/", "@", ":" and "%"
goes through every error path we have on every engine — in URLs raw and
percent-encoded, as keywords and in endpoint dicts; wrong passwords, wrong
databases, bad hosts, refused ports, silent servers, timeouts, bad SQL,
pool timeouts, TLS refusals, endpoints that go down — and everything the
library emits is searched for it: exceptions (str, repr, args, every
attribute, the whole __cause__/__context__ chain and the formatted
traceback), repr/str of the pool objects, stats() with its endpoint
labels, last errors and events, every log record at DEBUG, warnings, and
whatever reaches the process's stdout and stderr (capfd, so C libraries
writing there are caught too). The markers are also searched piece by
piece, since a misread URL shows a piece of a password, not all of it."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Awaitable, Iterator
from urllib.parse import quote

import pytest

import db_pool
from db_pool import (
    AuthenticationError,
    ConfigurationError,
    DatabasePool,
    Error,
    OperationalError,
    PoolTimeout,
    ProgrammingError,
    QueryTimeout,
    SyncDatabasePool,
)

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pg_server import PgServer  # noqa: E402
from tests.tds_server import TdsTestServer  # noqa: E402

#: The right password and a wrong one. Each piece between the special
#: characters is a token found nowhere else, and "%Qc" / "%Pq" are not
#: percent escapes, so the raw and the encoded URL name the same password.
MARKER = "Mk7Tq/Zr8Wn@Yp4Lx:Hv6Jd%Qc2Bf"
WRONG = "Wq3Rt/Gh5Jk@Lz9Xc:Vb1Nm%Pq8Sd"
FORMS = sorted(
    {MARKER, WRONG, quote(MARKER, safe=""), quote(WRONG, safe="")}
    | {piece for secret in (MARKER, WRONG) for piece in re.split(r"[/@:%]", secret)}
)


class Emitted:
    """Everything the library showed during a test, to be searched."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
                 warned: list[warnings.WarningMessage]) -> None:
        self.texts: list[tuple[str, str]] = []
        self.caplog, self.capfd, self.warned = caplog, capfd, warned
        self.errors: list[Error] = []

    def add(self, where: str, value: object) -> None:
        self.texts.append((where, value if isinstance(value, str) else repr(value)))

    def exception(self, where: str, exc: BaseException) -> None:
        queue: list[BaseException | None] = [exc]
        seen: set[int] = set()
        while queue:
            e = queue.pop()
            if e is None or id(e) in seen:
                continue
            seen.add(id(e))
            self.add(f"{where}: str", str(e))
            self.add(f"{where}: repr", repr(e))
            self.add(f"{where}: args", e.args)
            self.add(f"{where}: attributes", vars(e))
            for attr in ("engine", "code", "sqlstate", "category", "detail", "hint"):
                self.add(f"{where}: {attr}", getattr(e, attr, None))
            self.add(f"{where}: traceback", "".join(traceback.format_exception(e)))
            queue += [e.__cause__, e.__context__]

    async def fails(self, where: str, call: Awaitable[Any], cls: type[Error] = Error) -> Error:
        with pytest.raises(cls) as info:
            await call
        self.exception(where, info.value)
        self.errors.append(info.value)
        return info.value

    def pool(self, where: str, pool: Any, pool_id: str | None = None) -> None:
        self.add(f"{where}: repr", repr(pool))
        self.add(f"{where}: str", str(pool))
        self.add(f"{where}: list_pools", pool.list_pools())
        if pool_id is not None:
            self.add(f"{where}: stats", json.dumps(pool.stats(pool_id), default=str))

    def check(self) -> None:
        out, err = self.capfd.readouterr()
        texts = [*self.texts, ("stdout", out), ("stderr", err), ("log", self.caplog.text)]
        texts += [(f"log record {r.name}", f"{r.getMessage()} {r.args!r} {r.exc_text}")
                  for r in self.caplog.records]
        texts += [("warning", f"{w.category.__name__}: {w.message}") for w in self.warned]
        leaks = [(where, form, text) for where, text in texts for form in FORMS if form in text]
        assert not leaks, "\n".join(f"{where}: {form!r} in {text!r}" for where, form, text in leaks)
        assert len(self.texts) > 10, "nothing was searched"


@pytest.fixture
def emitted(caplog: pytest.LogCaptureFixture,
            capfd: pytest.CaptureFixture[str]) -> Iterator[Emitted]:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        yield Emitted(caplog, capfd, warned)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


#: A host name getaddrinfo refuses without asking DNS.
BAD_HOST = "bad!host"


async def wait_idle(pool: DatabasePool, pool_id: str) -> None:
    """Until the connection a timed-out statement held is back."""
    for _ in range(200):
        if pool.stats(pool_id)["in_use"] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"pool {pool_id} stays busy: {pool.stats(pool_id)}")


async def wait_for_down_event(pool: DatabasePool, pool_id: str) -> None:
    """Until the pool's event thread has logged an endpoint going down."""
    for _ in range(200):
        if any(e["kind"] in ("down", "suspect") for e in pool.stats(pool_id)["events"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no down event: {pool.stats(pool_id)['events']}")


# ---- SQLite ---------------------------------------------------------------------------


async def test_sqlite(emitted: Emitted, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with DatabasePool() as pool:
        for url in (f"sqlite://u:{MARKER}@/{db}", f"sqlite://u:{quote(MARKER, safe='')}@/{db}",
                    f"sqlite://u:{MARKER}@localhost/{db}", f"sqlite:///{db}?password={MARKER}",
                    f"sqlite:///{db}?password={quote(MARKER, safe='')}", f"sqlite:///{db}?{MARKER}"):
            await emitted.fails("sqlite url", pool.create_pool("s", url=url), ConfigurationError)
        await emitted.fails("sqlite keyword", pool.create_pool(
            "s", db_type="sqlite", database=str(db), password=MARKER), ConfigurationError)
        # a file: URI's query may hold an encryption key (SQLCipher, SEE)
        key_uri = f"file:{db}?key={quote(MARKER, safe='')}"
        await emitted.fails("sqlite missing file", pool.create_pool(
            "s", db_type="sqlite", database=f"file:{tmp_path}/missing.db?key={MARKER}", mode="ro"),
            OperationalError)
        await pool.create_pool("s", db_type="sqlite", database=key_uri, max_size=1,
                               acquire_timeout=0.2)
        await emitted.fails("sqlite bad sql", pool.query("s", "SELEC 1"), ProgrammingError)
        await emitted.fails("sqlite timeout", pool.query(
            "s", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
            "SELECT count(*) FROM c", timeout=0.2), QueryTimeout)
        await wait_idle(pool, "s")
        async with pool.transaction("s"):
            await emitted.fails("sqlite pool timeout", pool.query("s", "SELECT 1"), PoolTimeout)
        emitted.pool("sqlite pool", pool, "s")
        assert pool.stats("s")["endpoints"][0]["endpoint"] == f"file:{db}"
    emitted.check()


# ---- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    if "postgresql" not in db_pool.engines():
        pytest.skip("no postgresql engine in this build")
    try:
        server = PgServer.create()
    except FileNotFoundError as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE marker LOGIN SUPERUSER PASSWORD {}").format(
                sql.Literal(MARKER)))
        yield server
    finally:
        server.cleanup()


def pg_urls(server: PgServer, password: str, database: str | None = None,
            host: str | None = None, port: int | None = None) -> list[str]:
    """The raw and the percent-encoded URL, and one with the password as a
    query parameter."""
    where = f"{host or server.host}:{port or server.port}/{database or server.database}"
    return [f"postgresql://marker:{password}@{where}",
            f"postgresql://marker:{quote(password, safe='')}@{where}",
            f"postgresql://{where}?user=marker&password={quote(password, safe='')}"]


def pg_keywords(server: PgServer, password: str, **extra: Any) -> dict[str, Any]:
    return {"db_type": "postgresql", "host": server.host, "port": server.port,
            "database": server.database, "username": "marker", "password": password, **extra}


async def test_postgresql_working_pools(emitted: Emitted, pg: PgServer) -> None:
    endpoint = {"host": pg.host, "port": pg.port, "dbname": pg.database, "user": "marker",
                "password": MARKER}
    ways: list[dict[str, Any]] = [{"url": u} for u in pg_urls(pg, MARKER)]
    ways += [pg_keywords(pg, MARKER), {"db_type": "postgresql", "endpoints": [endpoint]},
             {"db_type": "postgresql", "endpoints": [{"dsn": pg_urls(pg, MARKER)[0]}]},
             {"endpoints": pg_urls(pg, MARKER)[:2]}]
    async with DatabasePool() as pool:
        for i, kwargs in enumerate(ways):
            pid = f"p{i}"
            await pool.create_pool(pid, max_size=1, acquire_timeout=0.2, **kwargs)
            assert (await pool.query(pid, "SELECT current_user::text AS u")).item() == "marker"
            await emitted.fails(f"pg {pid} bad sql", pool.query(pid, "SELEC 1"), ProgrammingError)
            await emitted.fails(f"pg {pid} timeout", pool.query(pid, "SELECT pg_sleep(5)",
                                                                timeout=0.3), QueryTimeout)
            await wait_idle(pool, pid)
            async with pool.transaction(pid):
                await emitted.fails(f"pg {pid} pool timeout", pool.query(pid, "SELECT 1"),
                                    PoolTimeout)
            emitted.pool(f"pg {pid}", pool, pid)
    emitted.check()


async def test_postgresql_failures(emitted: Emitted, pg: PgServer, silent_port: int) -> None:
    async with DatabasePool() as pool:
        for url in pg_urls(pg, WRONG):
            e = await emitted.fails("pg wrong password url", pool.create_pool("f", url=url),
                                    AuthenticationError)
            assert e.sqlstate == "28P01", e
        await emitted.fails("pg wrong password keyword",
                            pool.create_pool("f", **pg_keywords(pg, WRONG)), AuthenticationError)
        for url in pg_urls(pg, MARKER, database="no_such_db"):
            e = await emitted.fails("pg wrong database", pool.create_pool("f", url=url),
                                    OperationalError)
            assert e.sqlstate == "3D000", e
        for url in (*pg_urls(pg, MARKER, host=BAD_HOST), *pg_urls(pg, MARKER, port=closed_port())):
            await emitted.fails("pg unreachable", pool.create_pool("f", url=url, connect_timeout=2),
                                OperationalError)
        for url in pg_urls(pg, MARKER, port=silent_port):
            await emitted.fails("pg silent server", pool.create_pool("f", url=url,
                                                                     connect_timeout=0.5),
                                OperationalError)
        # a raw '/' or '@' given straight to the C library is refused, unshown
        for dsn in (f"postgresql://marker:{MARKER}@{pg.host}:{pg.port}/x",
                    f"postgresql://marker:{MARKER}x@{pg.host}/{pg.database}?x={MARKER}"):
            await emitted.fails("pg raw dsn", pool.create_pool(
                "f", db_type="postgresql", endpoints=[{"dsn": dsn}]), Error)
            await emitted.fails("pg raw dsn native", asyncio.to_thread(
                pool._manager().create_pool, "f", "postgresql", {"dsn": dsn}, {}), Error)
        await emitted.fails("pg bad query", pool.create_pool(
            "f", url=f"postgresql://{pg.host}:{pg.port}/x?password={MARKER}&a"), Error)
        # one endpoint of two is down: its event is logged with its error
        urls = [pg_urls(pg, MARKER)[0], pg_urls(pg, MARKER, port=closed_port())[0]]
        await pool.create_pool("two", endpoints=urls, connect_timeout=1, probe_interval=0.2)
        await wait_for_down_event(pool, "two")
        emitted.pool("pg two endpoints", pool, "two")
        emitted.pool("pg pool", pool)
    with SyncDatabasePool() as spool:
        with pytest.raises(AuthenticationError) as info:
            spool.create_pool("s", url=pg_urls(pg, WRONG)[0])
        emitted.exception("pg sync wrong password", info.value)
        emitted.pool("pg sync pool", spool)
    emitted.check()


# ---- MSSQL --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tds() -> Iterator[TdsTestServer]:
    if "mssql" not in db_pool.engines():
        pytest.skip("no mssql engine in this build")
    with TdsTestServer(password=MARKER) as server:
        yield server


def ms_urls(server: TdsTestServer, password: str, database: str = "dbpool",
            host: str = "127.0.0.1", port: int | None = None, **params: str) -> list[str]:
    where = f"{host}:{port or server.port}/{database}"
    query = ("?" + "&".join(f"{k}={v}" for k, v in params.items())) if params else ""
    return [f"mssql://sa:{password}@{where}{query}",
            f"mssql://sa:{quote(password, safe='')}@{where}{query}"]


def ms_keywords(server: TdsTestServer, password: str, **extra: Any) -> dict[str, Any]:
    return {"db_type": "mssql", "host": "127.0.0.1", "port": server.port, "database": "dbpool",
            "username": "sa", "password": password, **extra}


async def test_mssql_working_pools(emitted: Emitted, tds: TdsTestServer) -> None:
    endpoint = {"host": "127.0.0.1", "port": tds.port, "database": "dbpool", "user": "sa",
                "password": MARKER}
    ways: list[dict[str, Any]] = [{"url": u} for u in ms_urls(tds, MARKER)]
    ways += [ms_keywords(tds, MARKER), {"db_type": "mssql", "endpoints": [endpoint]}]
    async with DatabasePool() as pool:
        for i, kwargs in enumerate(ways):
            pid = f"m{i}"
            await pool.create_pool(pid, max_size=1, acquire_timeout=0.2, **kwargs)
            assert (await pool.query(pid, "SELECT 1 AS one")).item() == 1
            await emitted.fails(f"ms {pid} bad sql", pool.query(pid, "SELEC 1"), ProgrammingError)
            await emitted.fails(f"ms {pid} timeout", pool.query(
                pid, "WAITFOR DELAY '00:00:05'", timeout=0.3), QueryTimeout)
            await wait_idle(pool, pid)
            async with pool.transaction(pid):
                await emitted.fails(f"ms {pid} pool timeout", pool.query(pid, "SELECT 1"),
                                    PoolTimeout)
            emitted.pool(f"ms {pid}", pool, pid)
    emitted.check()


async def test_mssql_failures(emitted: Emitted, tds: TdsTestServer, silent_port: int) -> None:
    async with DatabasePool() as pool:
        for kwargs in ({"url": u} for u in ms_urls(tds, WRONG)):
            e = await emitted.fails("ms wrong password", pool.create_pool("f", **kwargs),
                                    AuthenticationError)
            assert e.code == 18456, e
        await emitted.fails("ms wrong password keyword",
                            pool.create_pool("f", **ms_keywords(tds, WRONG)), AuthenticationError)
        for url in ms_urls(tds, MARKER, database="no_such_db"):
            e = await emitted.fails("ms wrong database", pool.create_pool("f", url=url),
                                    OperationalError)
            assert e.code == 4060, e
        for url in (*ms_urls(tds, MARKER, host=BAD_HOST),
                    *ms_urls(tds, MARKER, port=closed_port())):
            await emitted.fails("ms unreachable", pool.create_pool("f", url=url,
                                                                   connect_timeout=2),
                                OperationalError)
        for url in ms_urls(tds, MARKER, port=silent_port):
            await emitted.fails("ms silent server", pool.create_pool("f", url=url,
                                                                     connect_timeout=1),
                                OperationalError)
        for url in ms_urls(tds, MARKER, encrypt="require"):  # the server has no TLS
            await emitted.fails("ms tls refused", pool.create_pool("f", url=url), OperationalError)
        for url in (f"mssql://sa:{MARKER}@127.0.0.1:{tds.port}/dbpool?{MARKER}=1",
                    f"mssql://sa:Mk7Tq?Zr8Wn@127.0.0.1:{tds.port}/dbpool"):
            await emitted.fails("ms bad url", pool.create_pool("f", url=url), Error)
        urls = [ms_urls(tds, MARKER)[0], ms_urls(tds, MARKER, port=closed_port())[0]]
        await pool.create_pool("two", endpoints=urls, connect_timeout=1, probe_interval=0.2)
        await wait_for_down_event(pool, "two")
        emitted.pool("ms two endpoints", pool, "two")
    emitted.check()
