"""Bad input, bad settings and server errors: each raises the documented
exception with PostgreSQL's own SQLSTATE, message, detail and hint, and
leaves the pool with no leaked connection and still working."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import threading
import time
from typing import Any, Iterator

import polars as pl
import pytest

from db_pool import (
    AuthenticationError,
    ConfigurationError,
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)

from .conftest import POOL_ID, assert_healthy, pg_url, pool_kwargs, wait_idle


# ---- statements --------------------------------------------------------------------


async def test_syntax_error(pg: Any) -> None:
    cases = [
        ("query COPY path", lambda: pg.query(POOL_ID, "SELEC 1")),
        ("query with params", lambda: pg.query(POOL_ID, "SELEC $1", [1])),
        ("execute script", lambda: pg.execute(POOL_ID, "SELEC 1")),
        ("execute with params", lambda: pg.execute(POOL_ID, "SELEC $1", [1])),
        ("execute_many", lambda: pg.execute_many(POOL_ID, "SELEC $1", [[1], [2]])),
    ]
    for label, call in cases:
        with pytest.raises(ProgrammingError) as info:
            await call()
        err = info.value
        assert str(err) == 'syntax error at or near "SELEC"', label
        assert (err.engine, err.sqlstate, err.category) == ("postgresql", "42601", "server"), label
    await assert_healthy(pg)


async def test_unique_violation_has_detail(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE u (id int4 PRIMARY KEY, v text)")
    await pg.execute(POOL_ID, "INSERT INTO u VALUES ($1, $2)", [1, "a"])
    for call in (
        lambda: pg.execute(POOL_ID, "INSERT INTO u VALUES ($1, $2)", [1, "b"]),
        lambda: pg.execute(POOL_ID, "INSERT INTO u VALUES (1, 'b')"),
        lambda: pg.query(POOL_ID, "INSERT INTO u VALUES ($1, 'b') RETURNING id", [1]),
    ):
        with pytest.raises(IntegrityError) as info:
            await call()
        err = info.value
        assert err.sqlstate == "23505"
        assert "duplicate key value violates unique constraint" in str(err)
        assert err.detail == "Key (id)=(1) already exists."
    assert admin.execute("SELECT count(*) FROM u").fetchone() == (1,)
    await assert_healthy(pg)


async def test_other_constraint_violations(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE parent (id int4 PRIMARY KEY)")
    admin.execute(
        "CREATE TABLE c (id int4, p int4 REFERENCES parent, v int4 NOT NULL CHECK (v > 0))"
    )
    for sql, params, state in [
        ("INSERT INTO c VALUES (1, 99, 1)", None, "23503"),
        ("INSERT INTO c VALUES ($1, NULL, NULL)", [1], "23502"),
        ("INSERT INTO c VALUES ($1, NULL, $2)", [1, -5], "23514"),
    ]:
        with pytest.raises(IntegrityError) as info:
            await pg.execute(POOL_ID, sql, params)
        assert info.value.sqlstate == state
    await assert_healthy(pg)


async def test_hint_is_set(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE h (ident int4)")
    with pytest.raises(ProgrammingError) as info:
        await pg.query(POOL_ID, "SELECT idnet FROM h")
    err = info.value
    assert err.sqlstate == "42703"
    assert str(err) == 'column "idnet" does not exist'
    assert err.hint is not None and "ident" in err.hint
    with pytest.raises(ProgrammingError) as info:
        await pg.query(POOL_ID, "SELECT * FROM no_such_table")
    assert info.value.sqlstate == "42P01"
    await assert_healthy(pg)


async def test_division_by_zero(pg: Any) -> None:
    # mid-result: rows have already streamed when the error comes
    sql = "SELECT g, 1 / (g - 5000) AS x FROM generate_series(1, 10000) g"
    cases = [
        ("COPY", lambda: pg.query(POOL_ID, sql)),
        ("no copy", lambda: pg.query(POOL_ID, sql, copy=False)),
        ("params", lambda: pg.query(POOL_ID, "SELECT 1 / $1::int4 AS x", [0])),
        ("execute", lambda: pg.execute(POOL_ID, "SELECT 1 / 0")),
        ("execute params", lambda: pg.execute(POOL_ID, "SELECT 1 / $1::int4", [0])),
    ]
    for label, call in cases:
        with pytest.raises(DataError) as info:
            await call()
        assert info.value.sqlstate == "22012", label
        assert str(info.value) == "division by zero", label
        await wait_idle(pg)
    with pytest.raises(DataError, match="division by zero"):
        async for _ in pg.stream(POOL_ID, sql, batch_rows=1000):
            pass
    with pytest.raises(DataError, match="division by zero"):
        async for _ in pg.stream(POOL_ID, sql, batch_rows=1000, copy=False):
            pass
    await assert_healthy(pg)


async def test_wrong_parameter_type(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE w (a int4, d date)")
    for sql, params in [
        ("SELECT $1::int4 AS v", ["abc"]),
        ("INSERT INTO w (a) VALUES ($1)", ["abc"]),
        ("INSERT INTO w (a) VALUES ($1)", [1.5]),
    ]:
        with pytest.raises(DataError) as info:
            await pg.execute(POOL_ID, sql, params)
        assert info.value.sqlstate == "22P02"
        assert "invalid input syntax for type integer" in str(info.value)
    with pytest.raises(DataError) as info:
        await pg.query(POOL_ID, "SELECT $1::int2 AS v", [70000])
    assert info.value.sqlstate == "22003"
    with pytest.raises(DataError) as info:
        await pg.execute(POOL_ID, "INSERT INTO w (d) VALUES ($1)", ["2024-02-30"])
    assert info.value.sqlstate == "22008"
    await assert_healthy(pg)


async def test_wrong_parameter_count(pg: Any) -> None:
    for call in (
        lambda: pg.query(POOL_ID, "SELECT $1::int4 AS a, $2::int4 AS b", [1]),
        lambda: pg.query(POOL_ID, "SELECT $1::int4 AS a", [1, 2]),
        lambda: pg.execute(POOL_ID, "SELECT $1::int4", [1, 2]),
        lambda: pg.execute_many(POOL_ID, "SELECT $1::int4", [[1], [1, 2]]),
    ):
        with pytest.raises(ProgrammingError, match=r"parameter"):
            await call()
    # a parameterless read has no parameters to give
    with pytest.raises(ProgrammingError):
        await pg.query(POOL_ID, "SELECT $1::int4 AS a")
    await assert_healthy(pg)


async def test_wrong_parameter_count_is_not_a_connection_error(pg: Any) -> None:
    with pytest.raises(ProgrammingError) as info:
        await pg.query(POOL_ID, "SELECT $1::int4 AS a", [1, 2])
    assert info.value.category == "misuse"
    assert not (info.value.sqlstate or "").startswith("08"), info.value.sqlstate


async def test_query_of_a_statement_without_columns(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE n (a int4)")
    for sql in ("CREATE TABLE n2 (a int4)", "INSERT INTO n VALUES (1)", "SELECT FROM n"):
        with pytest.raises(ProgrammingError, match="no columns"):
            await pg.query(POOL_ID, sql)
    # refused before it ran
    assert admin.execute("SELECT to_regclass('n2')").fetchone() == (None,)
    assert admin.execute("SELECT count(*) FROM n").fetchone() == (0,)
    await assert_healthy(pg)


async def test_multiple_statements(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE m (a int4)")
    with pytest.raises(ProgrammingError, match="multiple commands"):
        await pg.query(POOL_ID, "SELECT 1 AS a; SELECT 2 AS b")
    # a script runs as one implicit transaction: the error undoes the insert
    with pytest.raises(DataError):
        await pg.execute(POOL_ID, "INSERT INTO m VALUES (1); SELECT 1/0; INSERT INTO m VALUES (2)")
    assert admin.execute("SELECT count(*) FROM m").fetchone() == (0,)
    assert await pg.execute(POOL_ID, "INSERT INTO m VALUES (1); INSERT INTO m VALUES (2), (3)") == 3
    await assert_healthy(pg)


async def test_copy_statements_are_refused_by_execute(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE cp (a int4)")
    for sql in ("COPY cp TO STDOUT", "COPY cp FROM STDIN"):
        with pytest.raises(DatabaseError, match="COPY"):
            await pg.execute(POOL_ID, sql)
    await assert_healthy(pg)


async def test_queries_that_copy_accepts(pg: Any, admin: Any) -> None:
    """Parameterless reads go through COPY (...) TO STDOUT: forms COPY
    accepts must work the same as through the extended protocol."""
    admin.execute("CREATE TABLE q (a int4)")
    admin.execute("INSERT INTO q VALUES (1), (2)")
    cases = {
        "VALUES (1, 'a'), (2, 'b')": [(1, "a"), (2, "b")],
        "TABLE q": [(1,), (2,)],
        "(SELECT a FROM q ORDER BY a)": [(1,), (2,)],
        "SELECT a FROM q ORDER BY a;  ": [(1,), (2,)],
        "  select a FROM q ORDER BY a": [(1,), (2,)],
        "WITH x AS (SELECT a FROM q) SELECT a FROM x ORDER BY a": [(1,), (2,)],
        "SELECT a FROM q ORDER BY a FOR UPDATE": [(1,), (2,)],
        "WITH i AS (INSERT INTO q VALUES (3) RETURNING a) SELECT a FROM i": [(3,)],
        "SELECT 'it''s ) a paren' AS s": [("it's ) a paren",)],
        "SELECT /* a comment */ 1 AS one": [(1,)],
    }
    for sql, rows in cases.items():
        for copy in ("auto", False):
            if "INSERT" in sql and copy is False:
                continue
            df = await pg.query(POOL_ID, sql, copy=copy)
            assert df.rows() == rows, (sql, copy)
    df = await pg.query(POOL_ID, "SHOW TimeZone")  # not a plain read: extended protocol
    assert df.height == 1
    df = await pg.query(POOL_ID, "EXPLAIN SELECT 1")
    assert df.height >= 1
    await assert_healthy(pg)


async def test_query_ending_in_a_line_comment(pg: Any) -> None:
    df = await pg.query(POOL_ID, "SELECT 1 AS one -- the answer")
    assert df.rows() == [(1,)]


@pytest.mark.parametrize("copy", ["auto", False])
async def test_cached_statement_after_alter_table(pg: Any, admin: Any, copy: Any) -> None:
    admin.execute("CREATE TABLE alt (a int4)")
    admin.execute("INSERT INTO alt VALUES (1)")
    sql = "SELECT * FROM alt WHERE a > $1" if copy is False else "SELECT * FROM alt"
    params = [0] if copy is False else None
    # every connection of the pool caches it
    await asyncio.gather(*(pg.query(POOL_ID, sql, params) for _ in range(4)))
    admin.execute("ALTER TABLE alt ADD COLUMN b text DEFAULT 'x'")
    for _ in range(3):
        df = await pg.query(POOL_ID, sql, params)
        assert df.rows() == [(1, "x")]


# ---- big values -----------------------------------------------------------------------


async def test_100_mb_bytea_round_trip(apg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE big (id int4, b bytea)")
    blob = os.urandom(1 << 20) * 100  # 100 MiB
    digest = hashlib.md5(blob).hexdigest()
    assert await apg.execute(POOL_ID, "INSERT INTO big VALUES ($1, $2)", [1, blob]) == 1
    assert admin.execute("SELECT length(b), md5(b) FROM big").fetchone() == (len(blob), digest)
    del blob
    df = await apg.query(POOL_ID, "SELECT b FROM big")  # COPY
    assert df.schema == pl.Schema({"b": pl.Binary})
    got = df["b"][0]
    assert len(got) == 100 << 20 and hashlib.md5(got).hexdigest() == digest
    del df, got
    df = await apg.query(POOL_ID, "SELECT b FROM big WHERE id = $1", [1])  # extended protocol
    assert hashlib.md5(df["b"][0]).hexdigest() == digest
    await assert_healthy(apg)


# ---- connecting -------------------------------------------------------------------------


async def test_create_pool_with_keywords_and_with_url(api: Any, pg_server: Any, schema: str) -> None:
    await api.create_pool("kw", **pool_kwargs(pg_server, schema))
    await api.create_pool("url", url=pg_url(pg_server, schema))
    await api.create_pool("alias", db_type="postgres", url=pg_url(pg_server, schema))
    for pool_id in ("kw", "url", "alias"):
        df = await api.query(pool_id, "SELECT current_user::text AS u, current_schema()::text AS s")
        assert df.row(0) == (pg_server.user, schema)
        assert api.stats(pool_id)["engine"] == "postgresql"
    assert sorted(api.list_pools()) == ["alias", "kw", "url"]


async def test_url_with_percent_encoded_password(api: Any, pg_server: Any, admin: Any) -> None:
    role, password = f"r_{os.getpid()}_{id(api) % 10000}", "p@ss:w/rd%?&= é"
    try:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    except Exception as exc:  # an external server may not let us
        pytest.skip(f"cannot CREATE ROLE: {exc}")
    try:
        url = pg_url(pg_server, password=password).replace(
            f"//{pg_server.user}:", f"//{role}:"
        )
        await api.create_pool("enc", url=url)
        await api.create_pool("kw", db_type="postgresql", host=pg_server.host,
                              port=pg_server.port, database=pg_server.database,
                              username=role, password=password)
        for pool_id in ("enc", "kw"):
            assert (await api.query(pool_id, "SELECT current_user::text AS u")).item() == role
        await api.close()
    finally:
        admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
        )
        admin.execute(f"DROP ROLE IF EXISTS {role}")


async def test_bad_password(api: Any, pg_server: Any) -> None:
    wrong = "not-the-secret-42"
    for kwargs in (
        {**pg_server.connect_kwargs(), "db_type": "postgresql", "password": wrong},
        {"url": pg_url(pg_server, password=wrong)},
    ):
        start = time.monotonic()
        with pytest.raises(AuthenticationError) as info:
            await api.create_pool("bad", **kwargs)
        assert time.monotonic() - start < 5
        err = info.value
        assert err.category == "auth" and err.sqlstate == "28P01", err
        assert err.sqlstate is not None and err.sqlstate.startswith("28"), err.sqlstate
        assert "password authentication failed" in str(err)
        for secret in (wrong, pg_server.password):
            assert secret not in str(err) and secret not in repr(err)
            assert secret not in str(err.detail) and secret not in str(err.hint)
        assert api.list_pools() == []


async def test_unknown_role_is_an_authentication_error(api: Any, pg_server: Any) -> None:
    with pytest.raises(AuthenticationError) as info:
        await api.create_pool("bad", **{**pg_server.connect_kwargs(), "db_type": "postgresql",
                                        "username": "no_such_role"})
    assert info.value.sqlstate is not None and info.value.sqlstate.startswith("28")
    assert api.list_pools() == []


async def test_unknown_database_is_not_an_authentication_error(api: Any, pg_server: Any) -> None:
    """The server's own SQLSTATE and text, not a network or login error."""
    for kwargs in (
        {**pg_server.connect_kwargs(), "db_type": "postgresql", "database": "no_such_db"},
        {"url": pg_url(pg_server).rpartition("/")[0] + "/no_such_db"},
    ):
        with pytest.raises(OperationalError) as info:
            await api.create_pool("bad", **kwargs)
        err = info.value
        assert not isinstance(err, AuthenticationError), err
        assert (err.sqlstate, err.category, err.engine) == ("3D000", "server", "postgresql")
        assert 'database "no_such_db" does not exist' in str(err)
        assert "3D000" not in str(err) and "LOCATION" not in str(err)
    assert api.list_pools() == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused(api: Any, pg_server: Any) -> None:
    start = time.monotonic()
    with pytest.raises(OperationalError) as info:
        await api.create_pool("down", db_type="postgresql", host="127.0.0.1",
                              port=_closed_port(), database="x", username="u", password="p",
                              connect_timeout=2)
    assert time.monotonic() - start < 2.5
    assert not isinstance(info.value, AuthenticationError)
    assert (info.value.category, info.value.sqlstate) == ("network", "08001")
    assert "Connection refused" in str(info.value) or "connect" in str(info.value)
    assert api.list_pools() == []


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def run() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        t.join(2)
        for s in accepted:
            s.close()
        srv.close()


def test_connect_timeout(silent_server: int) -> None:
    """connect_timeout bounds a connection attempt to a server that accepts
    and never answers (one API only: the 2 s wait is the same code)."""
    from db_pool import SyncDatabasePool  # noqa: PLC0415

    api = SyncDatabasePool()
    start = time.monotonic()
    with pytest.raises(OperationalError) as info:
        api.create_pool("mute", db_type="postgresql", host="127.0.0.1", port=silent_server,
                              database="x", username="u", password="p", connect_timeout=2,
                              sslmode="disable")
    elapsed = time.monotonic() - start
    api.close()
    assert 1.5 < elapsed < 4, elapsed
    assert info.value.category == "network"
    assert "timeout" in str(info.value)


HANGING_CONNECT = r"""
import asyncio, socket, sys, threading, time
from db_pool import DatabasePool
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
held = []
threading.Thread(target=lambda: [held.append(srv.accept()[0]) for _ in range(16)], daemon=True).start()

async def main():
    pool = DatabasePool()
    await pool.create_pool("x", db_type="postgresql", host="127.0.0.1", port=srv.getsockname()[1],
                           database="d", username="u", password="p", sslmode="disable", min_size=0)
    query = asyncio.ensure_future(pool.query("x", "SELECT 1 AS a"))
    if sys.argv[1] == "cancel":  # the caller gives up first
        try:
            await asyncio.wait_for(query, 0.5)
        except TimeoutError:
            pass
    else:  # nobody gives up: closing the pool abandons the attempt
        await asyncio.sleep(0.5)
    start = time.monotonic()
    await pool.close()
    print("closed in", round(time.monotonic() - start, 2))
    if sys.argv[1] != "cancel":
        try:
            await query
        except Exception as exc:
            print("query failed:", type(exc).__name__)

asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["cancel", "close"])
def test_close_does_not_hang_on_a_stuck_connect(tmp_path: Any, how: str) -> None:
    """A server that accepts and never answers: the connection attempt gives
    up as soon as its query is cancelled or its pool closes, so close() does
    not wait for connect_timeout (10 s)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    script = tmp_path / "hang.py"
    script.write_text(HANGING_CONNECT)
    try:
        proc = subprocess.run([sys.executable, str(script), how], capture_output=True,
                              text=True, timeout=4)
    except subprocess.TimeoutExpired:
        pytest.fail("close() of a pool whose connection attempt hangs did not return in 4 s")
    assert proc.returncode == 0, proc.stderr
    closed_in = float(proc.stdout.split("closed in")[1].split()[0])
    assert closed_in < 1.0, proc.stdout
    if how == "close":  # work cut short by a closing pool fails with PoolClosed
        assert "query failed: PoolClosed" in proc.stdout, proc.stdout


async def test_unknown_and_bad_settings(api: Any, pg_server: Any, schema: str) -> None:
    base = pool_kwargs(pg_server, schema)
    for extra, match in [
        ({"no_such_setting": "1"}, "no_such_setting"),
        ({"statement_cache_size": -1}, "statement_cache_size"),
        ({"statement_cache_size": "many"}, "statement_cache_size"),
        ({"client_encoding": "LATIN1"}, "client_encoding"),
    ]:
        with pytest.raises(ConfigurationError, match=match):
            await api.create_pool("cfg", **base, **extra)
    with pytest.raises(ConfigurationError):
        await api.create_pool("cfg", url=pg_url(pg_server, schema), db_type="sqlite")
    assert api.list_pools() == []
    # a bad value of a known libpq keyword is refused by libpq when connecting
    with pytest.raises(DatabaseError, match="sslmode"):
        await api.create_pool("cfg", **base, sslmode="sometimes")
    assert api.list_pools() == []


async def test_unknown_url_parameter_is_a_configuration_error(
    api: Any, pg_server: Any, schema: str
) -> None:
    with pytest.raises(ConfigurationError, match="no_such_setting"):
        await api.create_pool("cfg", url=pg_url(pg_server, schema) + "&no_such_setting=1",
                              min_size=0)


async def test_isolation_and_readonly_options_are_checked(pg: Any) -> None:
    with pytest.raises(ConfigurationError, match="isolation"):
        pg.transaction(POOL_ID, isolation="chaotic")
    await assert_healthy(pg)


# ---- notices -------------------------------------------------------------------------


async def test_notices_go_to_logging(pg: Any, admin: Any, caplog: pytest.LogCaptureFixture) -> None:
    admin.execute(
        "CREATE FUNCTION noisy(n int4) RETURNS int4 LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE NOTICE 'noisy %', n; RAISE WARNING 'careful %', n; RETURN n; END $$"
    )
    caplog.set_level(logging.DEBUG, logger="db_pool")
    await pg.execute(POOL_ID, "DO $$ BEGIN RAISE NOTICE 'hello'; END $$")
    await pg.query(POOL_ID, "SELECT noisy(1) AS n")  # COPY
    await pg.query(POOL_ID, "SELECT noisy($1) AS n", [2])
    await pg.execute(POOL_ID, "SELECT noisy($1)", [3])
    async with pg.transaction(POOL_ID) as tx:
        await tx.execute("DO $$ BEGIN RAISE NOTICE 'in tx'; END $$")
    records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name == "db_pool"]
    assert ("db_pool", logging.INFO, "NOTICE: hello") in records
    for n in (1, 2, 3):
        assert ("db_pool", logging.INFO, f"NOTICE: noisy {n}") in records, records
        assert ("db_pool", logging.WARNING, f"WARNING: careful {n}") in records, records
    assert ("db_pool", logging.INFO, "NOTICE: in tx") in records
    caplog.clear()
    # a failing statement still delivers the notices it raised first
    with pytest.raises(DatabaseError, match="boom"):
        await pg.execute(POOL_ID, "DO $$ BEGIN RAISE NOTICE 'before'; RAISE EXCEPTION 'boom'; END $$")
    assert "NOTICE: before" in [r.getMessage() for r in caplog.records]
    await assert_healthy(pg)


async def test_raise_exception_with_sqlstate_detail_hint(pg: Any) -> None:
    with pytest.raises(DatabaseError) as info:
        await pg.execute(
            POOL_ID,
            "DO $$ BEGIN RAISE EXCEPTION 'custom' USING ERRCODE = 'P0001', "
            "DETAIL = 'the detail', HINT = 'the hint'; END $$",
        )
    err = info.value
    assert (str(err), err.sqlstate, err.detail, err.hint) == ("custom", "P0001", "the detail", "the hint")
    with pytest.raises(IntegrityError):
        await pg.execute(POOL_ID, "DO $$ BEGIN RAISE unique_violation USING MESSAGE = 'dup'; END $$")
    await assert_healthy(pg)


async def test_statement_timeout(pg: Any) -> None:
    """A server-side statement_timeout raises 57014 (QueryTimeout, an
    OperationalError); the transaction rolls back and the pool stays usable."""
    with pytest.raises(OperationalError) as info:
        async with pg.transaction(POOL_ID) as tx:
            await tx.execute("SET LOCAL statement_timeout = 100")
            await tx.query("SELECT pg_sleep(2) AS s")
    assert info.value.sqlstate == "57014"
    await assert_healthy(pg)


async def test_badly_encoded_url_does_not_echo_the_password(api: Any) -> None:
    # libpq quotes the offending part of a URL, which may be the password: in
    # the credentials a '%' that starts no escape is taken as it is, anywhere
    # else libpq's complaint is shown without the part (test_secrets.py)
    with pytest.raises(OperationalError) as info:
        await api.create_pool("cfg", url="postgresql://u:s3cr%zzet@127.0.0.1:1/db")
    assert "s3cr" not in str(info.value) and info.value.category == "network"
    with pytest.raises(ConfigurationError) as cfg:
        await api.create_pool("cfg", url="postgresql://127.0.0.1:1/db?password=s3cr%zzet")
    assert "s3cr" not in str(cfg.value) and "percent" in str(cfg.value)
    assert api.list_pools() == []
