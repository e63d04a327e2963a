"""Tests of the TDS test server (tests/tds_server) with independent clients:
FreeTDS's ``tsql`` and ``freebcp`` (Debian freetds-bin) and pytds (PyPI
python-tds, pure Python; TLS needs pyOpenSSL). The future MSSQL driver is
tested against the same server, so these tests show the server speaks TDS
the way real clients expect, not only the way our driver does.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.tds_server import TdsTestServer  # noqa: E402
from tests.tds_server import login as L, sql as S, types as TY  # noqa: E402
from tests.tds_server.wire import Reader  # noqa: E402

pytds: Any
try:
    import pytds  # type: ignore[no-redef]
except ImportError:  # pragma: no cover - reported per test
    pytds = None

try:
    import OpenSSL  # noqa: F401

    HAVE_PYOPENSSL = True
except ImportError:  # pragma: no cover
    HAVE_PYOPENSSL = False

TSQL = shutil.which("tsql")
FREEBCP = shutil.which("freebcp")

needs_pytds = pytest.mark.skipif(pytds is None, reason="pytds not installed (pip install python-tds)")
needs_tsql = pytest.mark.skipif(TSQL is None, reason="tsql not installed (apt-get install freetds-bin)")
needs_freebcp = pytest.mark.skipif(FREEBCP is None, reason="freebcp not installed (apt-get install freetds-bin)")
needs_pyopenssl = pytest.mark.skipif(not HAVE_PYOPENSSL, reason="pytds TLS needs pyOpenSSL (pip install pyopenssl)")


# ---- fixtures and client helpers -----------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[TdsTestServer]:
    with TdsTestServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _reset_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        f = srv.faults
        f.delay_ms, f.drop_after_rows, f.refuse_connections, f.refuse_logins = 0, None, False, False
        f.strict_transaction_descriptor = False


def connect(srv: TdsTestServer, **kw: Any) -> Any:
    kw.setdefault("user", srv.user)
    kw.setdefault("password", srv.password)
    kw.setdefault("database", "dbpool")
    kw.setdefault("autocommit", True)
    kw.setdefault("login_timeout", 5)
    return pytds.connect("127.0.0.1", port=srv.port, **kw)


def freetds_env(srv: TdsTestServer, tmp: Path, extra: str = "") -> dict[str, str]:
    """A private freetds.conf (FREETDSCONF) with server entry 'tdstest'."""
    conf = tmp / "freetds.conf"
    conf.write_text(
        "[global]\n\ttds version = 7.4\n"
        f"[tdstest]\n\thost = 127.0.0.1\n\tport = {srv.port}\n{extra}"
    )
    return dict(os.environ, FREETDSCONF=str(conf), TDSDUMP=str(tmp / "freetds.log"))


def tsql(srv: TdsTestServer, tmp: Path, script: str, *, user: str | None = None, password: str | None = None,
         database: str = "dbpool", conf: str = "", timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Runs a tsql script quietly (-o qf: no prompts, no footers)."""
    assert TSQL is not None
    cmd = [TSQL, "-S", "tdstest", "-U", user or srv.user, "-P", password or srv.password, "-o", "qf"]
    if database:
        cmd += ["-D", database]
    if not script.rstrip().endswith("exit"):
        script = script.rstrip() + "\ngo\nexit\n"
    return subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=timeout,
                          env=freetds_env(srv, tmp, conf))


def tsql_rows(out: str) -> list[list[str]]:
    return [line.split("\t") for line in out.splitlines() if line and not line.startswith(("locale", "using",
                                                                                            "Setting"))]


# ---- unit checks of the server's own pieces ------------------------------------------------------


def test_password_scrambling_roundtrip() -> None:
    assert L.descramble_password(L.scramble_password("db-pool-test")) == "db-pool-test"
    # MS-TDS example: 'a' (0x61 0x00) -> nibble swap 0x16 0x00 -> xor 0xB3 0xA5
    assert L.scramble_password("a") == bytes((0xB3, 0xA5))


@pytest.mark.parametrize(
    ("type_text", "value"),
    [
        ("datetime2(7)", "9999-12-31 23:59:59.9999999"),
        ("datetime2(7)", "0001-01-01 00:00:00"),
        ("date", "0001-01-01"),
        ("date", "9999-12-31"),
        ("time(7)", "23:59:59.9999999"),
        ("datetimeoffset(7)", "9999-12-31 23:59:59.9999999 +00:00"),
        ("datetimeoffset(3)", "2020-06-01 12:00:00.123 -05:30"),
        ("decimal(38,10)", "1234567890123456789012345678.0123456789"),
        ("money", "-922337203685477.5808"),
        ("uniqueidentifier", "6F9619FF-8B86-D011-B42D-00C04FC964FF"),
    ],
)
def test_wire_roundtrip_exact(type_text: str, value: str) -> None:
    """Encode as a ROW value, decode as the client would: the same value, to 100 ns."""
    t = TY.parse_declared_type(type_text)
    assert t is not None
    typed = TY.coerce(t, value)
    wire = TY.wire_type_for(t)
    raw = TY.encode_value(wire, typed)
    decoded = TY.read_value(Reader(raw), wire, in_row=True)
    assert decoded == typed
    assert TY.coerce(t, TY.to_storage(t, decoded)) == typed  # and back through sqlite's text form
    if t.name == "uniqueidentifier":
        assert raw[1:5] == bytes.fromhex("FF19966F")  # mixed-endian: first group little-endian


def test_statement_splitting_without_semicolons() -> None:
    stmts = S.parse_batch("SET NOCOUNT ON SELECT 1 IF @@TRANCOUNT > 0 ROLLBACK INSERT t VALUES (1) SELECT 2 "
                          "UNION SELECT 3 UPDATE t SET a = 1 WHERE b IN (SELECT 1)")
    kinds = [s.keyword if isinstance(s, S.Stmt) else "IF" for s in stmts]
    assert kinds == ["SET", "SELECT", "IF", "INSERT", "SELECT", "UPDATE"]


def test_translation() -> None:
    ctx = S.Context(spid=51, database="master", trancount=0, rowcount=0, error=0, version="v", server_name="S",
                    user="sa", object_exists=lambda name: False)
    st = S.parse_batch("SELECT TOP 5 [a b], N'x' FROM dbo.t WITH (NOLOCK) WHERE c = @P1 ORDER BY 1")[0]
    assert isinstance(st, S.Stmt)
    tr = S.translate(st.tokens, ctx)
    assert tr.sql == "SELECT \"a b\", 'x' FROM t WHERE c = @P1 ORDER BY 1 LIMIT (5)"
    assert tr.params == ["P1"]


# ---- login ---------------------------------------------------------------------------------------


@needs_tsql
def test_tsql_login_and_server_info(server: TdsTestServer, tmp_path: Path) -> None:
    p = tsql(server, tmp_path, "SELECT @@SPID AS spid, LEFT(@@VERSION, 20) AS v, DB_NAME() AS db, @@TRANCOUNT AS tc")
    assert p.returncode == 0, p.stderr
    header, row = tsql_rows(p.stdout)[:2]
    assert header == ["spid", "v", "db", "tc"]
    assert int(row[0]) >= 51 and row[1] == "Microsoft SQL Server" and row[2] == "dbpool" and row[3] == "0"


@needs_pytds
def test_login_refused_with_18456(server: TdsTestServer) -> None:
    for user, password in (("sa", "wrong"), ("bob", "db-pool-test")):
        with pytest.raises(pytds.OperationalError) as ei:
            connect(server, user=user, password=password)
        assert ei.value.number == 18456
        assert f"Login failed for user '{user}'" in str(ei.value)
    with pytest.raises(pytds.OperationalError) as ei:
        connect(server, database="no_such_db")
    assert ei.value.number in (4060, 18456)
    server.faults.refuse_logins = True
    with pytest.raises(pytds.OperationalError) as ei:
        connect(server)
    assert ei.value.number == 18456
    server.faults.refuse_logins = False
    with connect(server) as conn:
        assert conn.cursor().execute("SELECT 1").fetchone() == (1,)


@needs_tsql
def test_tsql_login_refused(server: TdsTestServer, tmp_path: Path) -> None:
    p = tsql(server, tmp_path, "SELECT 1", password="nope")
    assert "18456" in p.stdout + p.stderr or "Login failed" in p.stdout + p.stderr


# ---- every type --------------------------------------------------------------------------------------

TYPES_DDL = """CREATE TABLE alltypes (
  a TINYINT, b SMALLINT, c INT, d BIGINT, e BIT, f DECIMAL(38,10), g NUMERIC(5,2), h MONEY, i SMALLMONEY,
  j REAL, k FLOAT, l DATE, m TIME(7), n DATETIME, o SMALLDATETIME, p DATETIME2(7), q DATETIMEOFFSET(7),
  r UNIQUEIDENTIFIER, s CHAR(3), u VARCHAR(10), v NCHAR(3), w NVARCHAR(10), x VARCHAR(MAX), y NVARCHAR(MAX),
  z TEXT, aa NTEXT, bb BINARY(3), cc VARBINARY(10), dd VARBINARY(MAX), ee IMAGE, ff XML)"""
TYPES_INSERT = """INSERT INTO alltypes VALUES (255, -32768, -2147483648, 9223372036854775807, 1,
  '1234567890123456789012345678.0123456789', -123.45, '-922337203685477.5808', '214748.3647', 1.5, -2.25e300,
  '0001-01-01', '23:59:59.9999999', '1753-01-01 00:00:00.003', '2079-06-06 23:59', '9999-12-31 23:59:59.9999999',
  '2020-06-01 12:00:00.1234567 -05:30', '6F9619FF-8B86-D011-B42D-00C04FC964FF', 'ab', 'cafe', N'ü', N'日本語',
  'big', N'ñbig', 'txt', N'ntxt', 0x0102, 0xABCD, 0x00FF, 0x0A, '<r a="1"/>')"""


@pytest.fixture(scope="module")
def alltypes(server: TdsTestServer) -> TdsTestServer:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("IF OBJECT_ID('alltypes') IS NOT NULL DROP TABLE alltypes")
        cur.execute(TYPES_DDL)
        cur.execute(TYPES_INSERT)
        cur.execute("INSERT INTO alltypes (a) VALUES (NULL)")
    return server


@needs_pytds
def test_select_every_type_pytds(alltypes: TdsTestServer) -> None:
    with connect(alltypes) as conn:
        cur = conn.cursor()
        cur.execute("SELECT * FROM alltypes ORDER BY a DESC")
        row, nulls = cur.fetchall()
        names = [d[0] for d in cur.description]
    got = dict(zip(names, row))
    assert got["a"] == 255 and got["b"] == -32768 and got["c"] == -(2**31) and got["d"] == 2**63 - 1
    assert got["e"] is True
    assert got["f"] == Decimal("1234567890123456789012345678.0123456789")
    assert got["g"] == Decimal("-123.45")
    assert got["h"] == Decimal("-922337203685477.5808") and got["i"] == Decimal("214748.3647")
    assert got["j"] == 1.5 and got["k"] == -2.25e300
    assert got["l"] == dt.date(1, 1, 1)
    assert got["m"] == dt.time(23, 59, 59, 999999)  # pytds keeps microseconds
    assert got["n"] == dt.datetime(1753, 1, 1, 0, 0, 0, 3000)  # 1/300 s; pytds rounds to ms
    assert got["o"] == dt.datetime(2079, 6, 6, 23, 59)
    assert got["p"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    q = got["q"]
    assert q.replace(tzinfo=None) == dt.datetime(2020, 6, 1, 12, 0, 0, 123456)
    assert q.utcoffset() == -dt.timedelta(hours=5, minutes=30)
    assert got["r"] == uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF")
    assert got["s"] == "ab " and got["u"] == "cafe" and got["v"] == "ü  " and got["w"] == "日本語"
    assert got["x"] == "big" and got["y"] == "ñbig" and got["z"] == "txt" and got["aa"] == "ntxt"
    assert got["bb"] == b"\x01\x02\x00" and got["cc"] == b"\xab\xcd" and got["dd"] == b"\x00\xff"
    assert got["ee"] == b"\x0a" and got["ff"] == '<r a="1"/>'
    assert all(v is None for v in nulls)  # NBCROW
    # the extremes survive as text in sqlite (100 ns precision)
    with connect(alltypes) as conn:
        cur = conn.cursor()
        cur.execute("SELECT CAST(p AS NVARCHAR(40)), CAST(l AS NVARCHAR(20)), CAST(m AS NVARCHAR(20)) FROM alltypes "
                    "WHERE a = 255")
        assert cur.fetchone() == ("9999-12-31 23:59:59.9999999", "0001-01-01", "23:59:59.9999999")


@needs_pytds
def test_column_metadata_types(alltypes: TdsTestServer) -> None:
    """TYPE_INFO ids as pytds reports them (cursor.description type codes)."""
    with connect(alltypes) as conn:
        cur = conn.cursor()
        cur.execute("SELECT a, c, e, f, h, i, l, m, p, q, r, w, y, dd, z, aa, ee, ff FROM alltypes")
        codes = {d[0]: d[1] for d in cur.description}
        sizes = {d[0]: (d[3], d[4], d[5]) for d in cur.description}
    assert codes["a"] == TY.INT1 and codes["c"] == TY.INT4 and codes["e"] == TY.BIT  # pytds normalises INTN/BITN
    assert codes["f"] == TY.DECIMALN and sizes["f"][1:] == (38, 10)
    assert codes["l"] == TY.DATEN and codes["m"] == TY.TIMEN and codes["p"] == TY.DATETIME2N
    assert codes["q"] == TY.DATETIMEOFFSETN and codes["r"] == TY.GUID
    assert codes["z"] == TY.TEXT and codes["ee"] == TY.IMAGE and codes["ff"] == TY.XML


@needs_tsql
@needs_pytds
def test_select_every_type_tsql(alltypes: TdsTestServer, tmp_path: Path) -> None:
    p = tsql(alltypes, tmp_path, "SELECT * FROM alltypes WHERE a = 255")
    assert p.returncode == 0, p.stderr
    header, row = tsql_rows(p.stdout)[:2]
    got = dict(zip(header, row))
    assert got["a"] == "255" and got["d"] == "9223372036854775807" and got["e"] == "1"
    assert got["f"] == "1234567890123456789012345678.0123456789" and got["g"] == "-123.45"
    assert got["h"] == "-922337203685477.5808" and got["i"] == "214748.3647"
    assert float(got["j"]) == 1.5 and float(got["k"]) == -2.25e300
    assert got["l"].split() == ["Jan", "1", "1", "12:00AM"]
    assert got["p"].split() == ["Dec", "31", "9999", "11:59PM"] and got["o"].split() == ["Jun", "6", "2079", "11:59PM"]
    assert got["r"] == "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    assert got["s"] == "ab " and got["v"] == "ü  " and got["w"] == "日本語" and got["y"] == "ñbig"
    assert got["aa"] == "ntxt" and got["bb"] == "010200" and got["cc"] == "abcd" and got["ee"] == "0a"
    assert got["ff"] == '<r a="1"/>'


@needs_pytds
def test_expression_types_follow_sql_server(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("SELECT 1, N'abc', 'xy', 1.50, CAST('2020-01-02' AS DATE), CONVERT(DECIMAL(10,2), '3.14159'), "
                    "CAST(NULL AS DATETIME2(3)), GETDATE(), SYSDATETIMEOFFSET(), NEWID(), 2.5e0, 0x0A0B")
        row = cur.fetchone()
        codes = [d[1] for d in cur.description]
        names = [d[0] for d in cur.description]
    assert row[:6] == (1, "abc", "xy", Decimal("1.50"), dt.date(2020, 1, 2), Decimal("3.14"))
    assert row[6] is None and isinstance(row[7], dt.datetime) and row[8].utcoffset() is not None
    assert isinstance(row[9], uuid.UUID) and row[10] == 2.5 and row[11] == b"\x0a\x0b"
    assert codes[0] == TY.INT4  # NOT NULL literal: fixed-length INT4, as SQL Server sends it
    assert names == [""] * len(names)  # unnamed expressions, as in SQL Server


# ---- parameters (RPC) ---------------------------------------------------------------------------------


@needs_pytds
def test_sp_executesql_parameters_roundtrip(server: TdsTestServer) -> None:
    values = [
        None, True, 0, -5, 2**40, 1.25, Decimal("-12345.6789"), "héllo", "x" * 5000, pytds.Binary(b"\x00\xff" * 3),
        dt.date(1, 1, 1), dt.time(23, 59, 59, 999999), dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
    ]
    with connect(server) as conn:
        cur = conn.cursor()
        for v in values:
            cur.execute("SELECT %s AS v", (v,))
            got = cur.fetchone()[0]
            assert got == v, (v, got)
        cur.execute("SELECT %(a)s + %(b)s AS s, %(c)s AS c", {"a": 40, "b": 2, "c": "named"})
        assert cur.fetchone() == (42, "named")
    rpcs = [r for r in server.stats.requests if r[1] == "RPC"]
    assert any(r[2].startswith("sp_executesql") and "datetimeoffset" in r[2] for r in rpcs)


@needs_pytds
def test_params_into_typed_table(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE ptab (id INT IDENTITY(1,1) PRIMARY KEY, d DECIMAL(18,4), t DATETIME2(7), "
                    "o DATETIMEOFFSET(2), n NVARCHAR(MAX), b VARBINARY(MAX), g UNIQUEIDENTIFIER, m MONEY)")
        row = (Decimal("12345678901234.5678"), dt.datetime(2021, 2, 3, 4, 5, 6, 789012),
               dt.datetime(2021, 2, 3, 4, 5, 6, 120000, tzinfo=dt.timezone(dt.timedelta(hours=1))),
               "ü" * 10000, pytds.Binary(bytes(range(256)) * 100), uuid.uuid4(), Decimal("1.2345"))
        cur.execute("INSERT INTO ptab (d, t, o, n, b, g, m) VALUES (%s, %s, %s, %s, %s, %s, %s)", row)
        assert cur.rowcount == 1
        cur.execute("SELECT SCOPE_IDENTITY()")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT d, t, o, n, b, g, m FROM ptab WHERE id = %s", (1,))
        assert cur.fetchone() == row


@needs_pytds
def test_sp_prepexec_prepare_execute_unprepare(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.callproc("sp_prepexec", (pytds.output(param_type="int"), "@P1 int, @P2 nvarchar(10)",
                                     "SELECT @P1 + 1 AS x, @P2 AS y", 41, "hi"))
        assert cur.fetchall() == [(42, "hi")]
        while cur.nextset():
            pass
        handle = cur.get_proc_outputs()[0]
        assert isinstance(handle, int) and cur.return_value == 0
        cur.callproc("sp_execute", (handle, 9, "yo"))
        assert cur.fetchall() == [(10, "yo")]
        cur.callproc("sp_unprepare", (handle,))
        with pytest.raises(pytds.OperationalError, match="prepared statement"):
            cur.callproc("sp_execute", (handle, 1, "x"))
        # an OUTPUT parameter of sp_executesql (pytds indexes outputs by ordinal: read them directly)
        cur.callproc("sp_executesql", ("SET @o = @i * 2", "@i int, @o int OUTPUT", 21,
                                       pytds.output(param_type="int")))
        cur._session.complete_rpc()
        assert {k: v.value for k, v in cur._session.output_params.items()} == {3: 42}


# ---- transactions ----------------------------------------------------------------------------------


@needs_pytds
def test_transactions_pytds_transaction_manager(server: TdsTestServer) -> None:
    """pytds uses TM_BEGIN/COMMIT/ROLLBACK requests and sends the descriptor
    from ENVCHANGE in every ALL_HEADERS: strict checking must pass."""
    server.faults.strict_transaction_descriptor = True
    before = server.stats.get("descriptor_mismatches")
    with connect(server, autocommit=False) as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE tx1 (id INT PRIMARY KEY)")
        conn.commit()
        cur.execute("INSERT INTO tx1 VALUES (1)")
        cur.execute("SELECT @@TRANCOUNT")
        assert cur.fetchone() == (1,)
        conn.rollback()
        cur.execute("SELECT COUNT(*) FROM tx1")
        assert cur.fetchone() == (0,)
        cur.execute("INSERT INTO tx1 VALUES (2)")
        conn.commit()
    with connect(server) as conn:
        assert conn.cursor().execute("SELECT id FROM tx1").fetchall() == [(2,)]
    assert server.stats.get("descriptor_mismatches") == before


@needs_pytds
def test_transactions_tsql_statements(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE tx2 (id INT)")
        cur.execute("SET NOCOUNT ON; BEGIN TRAN; INSERT INTO tx2 VALUES (1); SELECT @@TRANCOUNT")
        assert cur.fetchone() == (1,)
        cur.execute("BEGIN TRANSACTION; SELECT @@TRANCOUNT")  # nested
        assert cur.fetchone() == (2,)
        cur.execute("COMMIT")
        cur.execute("IF @@TRANCOUNT > 0 ROLLBACK")
        cur.execute("SELECT COUNT(*), @@TRANCOUNT FROM tx2")
        assert cur.fetchone() == (0, 0)
        with pytest.raises(pytds.OperationalError) as ei:
            cur.execute("COMMIT TRAN")
        assert ei.value.number == 3902
        cur.execute("BEGIN TRAN; INSERT INTO tx2 VALUES (5); COMMIT TRAN")
        cur.execute("SELECT id FROM tx2")
        assert cur.fetchall() == [(5,)]


@needs_tsql
def test_tsql_transaction_and_rollback(server: TdsTestServer, tmp_path: Path) -> None:
    p = tsql(server, tmp_path, "CREATE TABLE tx3 (v NVARCHAR(10))\nBEGIN TRAN\nINSERT INTO tx3 VALUES (N'x')\n"
             "ROLLBACK\nSELECT COUNT(*) AS n FROM tx3")
    assert p.returncode == 0, p.stderr
    assert tsql_rows(p.stdout)[-1] == ["0"]


# ---- errors -------------------------------------------------------------------------------------------


@needs_pytds
def test_error_numbers_and_messages(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE err (id INT PRIMARY KEY, v NVARCHAR(5) NOT NULL, n TINYINT, "
                    "c INT CHECK (c > 0))")
        cur.execute("INSERT INTO err VALUES (1, N'a', 1, 1)")
        cases = [
            ("SELEC 1", 102, "Incorrect syntax near 'SELEC'"),
            ("SELECT * FROM nope", 208, "Invalid object name 'nope'"),
            ("INSERT INTO err VALUES (1, N'b', 1, 1)", 2627, "Violation of PRIMARY KEY"),
            ("INSERT INTO err (id) VALUES (2)", 515, "Cannot insert the value NULL into column 'v'"),
            ("INSERT INTO err VALUES (3, N'c', 1, -1)", 547, "CHECK constraint"),
            ("INSERT INTO err VALUES (4, N'toolong', 1, 1)", 2628, "String or binary data would be truncated"),
            ("INSERT INTO err VALUES (5, N'e', 300, 1)", 8115, "Arithmetic overflow"),
            ("SELECT @nope", 137, "Must declare the scalar variable"),
            ("EXEC sp_who", 2812, "Could not find stored procedure"),
            ("RAISERROR('custom %s', 16, 7, 'x')", 50000, "custom x"),
        ]
        for statement, number, text in cases:
            with pytest.raises(pytds.Error) as ei:
                cur.execute(statement)
            assert ei.value.number == number, (statement, ei.value)
            assert text in str(ei.value), (statement, ei.value)
        cur.execute("SELECT COUNT(*) FROM err")
        assert cur.fetchone() == (1,)  # failed statements changed nothing; the session is fine


@needs_pytds
def test_deadlock_marker_rolls_back(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE dl (id INT)")
        cur.execute("BEGIN TRAN; INSERT INTO dl VALUES (1)")
        with pytest.raises(pytds.OperationalError) as ei:
            cur.execute("SELECT 'tds:deadlock'")
        assert ei.value.number == 1205 and "deadlock victim" in str(ei.value)
        cur.execute("SELECT @@TRANCOUNT, (SELECT COUNT(*) FROM dl)")
        assert cur.fetchone() == (0, 0)


@needs_pytds
def test_print_and_low_severity_raiserror_are_info(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("PRINT 'hello'; RAISERROR('warn %d', 10, 1, 5); SELECT 1")
        assert cur.fetchall() == [(1,)]
        assert [str(m[1].args[0]) for m in cur.messages] == ["hello", "warn 5"]


@needs_tsql
def test_tsql_error_message(server: TdsTestServer, tmp_path: Path) -> None:
    p = tsql(server, tmp_path, "SELECT * FROM missing_table")
    out = p.stdout + p.stderr
    assert "Msg 208" in out and "Invalid object name 'missing_table'" in out


# ---- attention / cancel -----------------------------------------------------------------------------


@needs_pytds
def test_attention_cancels_waitfor_and_session_survives(server: TdsTestServer) -> None:
    acked = server.stats.get("attentions_acknowledged")
    with connect(server, timeout=0.5) as conn:
        cur = conn.cursor()
        t0 = time.monotonic()
        with pytest.raises(pytds.TimeoutError):
            cur.execute("WAITFOR DELAY '00:00:05'")
        assert time.monotonic() - t0 < 3
        assert cur.execute("SELECT 42").fetchone() == (42,)
        server.faults.delay_ms = 3000  # the delay fault is cancellable too
        with pytest.raises(pytds.TimeoutError):
            cur.execute("SELECT 1")
        server.faults.delay_ms = 0
        assert cur.execute("SELECT 43").fetchone() == (43,)
    assert server.stats.get("attentions_acknowledged") >= acked + 2


@needs_pytds
def test_attention_during_large_result(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) "
                    "SELECT x, 'padding padding padding' AS p FROM c")
        assert cur.fetchone() == (1, "padding padding padding")
        cur.cancel()  # attention while rows are still coming
        assert cur.execute("SELECT 7").fetchone() == (7,)


# ---- multi-packet ---------------------------------------------------------------------------------


@needs_pytds
def test_large_results_and_requests(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) "
                    "SELECT x, 'row' || x AS s FROM c")
        rows = cur.fetchall()
        assert len(rows) == 100000 and rows[-1] == (100000, "row100000")
        big = "é" * (5 * 1024 * 1024 // 2)  # 5 MB as UTF-16: a multi-packet request and result
        cur.execute("CREATE TABLE bigtext (t NVARCHAR(MAX))")
        cur.execute("INSERT INTO bigtext VALUES (%s)", (big,))
        cur.execute("SELECT t FROM bigtext")
        assert cur.fetchone()[0] == big


@needs_pytds
def test_negotiated_packet_size(server: TdsTestServer) -> None:
    with TdsTestServer() as own:  # fresh counters
        with connect(own, blocksize=16384) as conn:
            cur = conn.cursor()
            cur.execute("SELECT REPLICATE(N'x', 20000), %s", ("y" * 40000,))
            assert cur.fetchone() == ("x" * 20000, "y" * 40000)
        assert own.stats.get("max_client_packet") == 16384  # the client took the ENVCHANGE packet size


@needs_tsql
def test_tsql_large_result(server: TdsTestServer, tmp_path: Path) -> None:
    p = tsql(server, tmp_path, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) "
             "SELECT x FROM c")
    rows = tsql_rows(p.stdout)
    assert rows[0] == ["x"] and len(rows) == 20001 and rows[-1] == ["20000"]


# ---- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TdsTestServer]:
    with TdsTestServer(tls="on") as srv:
        yield srv


@needs_tsql
@pytest.mark.parametrize(("encryption", "mode"), [("request", "tls_login"), ("require", "tls_full")])
def test_tls_with_freetds(tls_server: TdsTestServer, tmp_path: Path, encryption: str, mode: str) -> None:
    before = tls_server.stats.get(mode)
    p = tsql(tls_server, tmp_path, "SELECT N'secret' AS s", conf=f"\tencryption = {encryption}\n")
    assert p.returncode == 0, p.stderr
    assert tsql_rows(p.stdout)[-1] == ["secret"]
    assert tls_server.stats.get(mode) == before + 1


@needs_pytds
@needs_pyopenssl
def test_tls_with_pytds(tls_server: TdsTestServer) -> None:
    before = tls_server.stats.get("tls_full")
    with connect(tls_server, cafile=tls_server.cafile, validate_host=False) as conn:
        cur = conn.cursor()
        cur.execute("SELECT %s", ("x" * 100000,))  # TLS records spanning many TDS packets
        assert cur.fetchone()[0] == "x" * 100000
    assert tls_server.stats.get("tls_full") == before + 1


@needs_tsql
def test_encryption_required_by_client_without_server_tls(server: TdsTestServer, tmp_path: Path) -> None:
    p = tsql(server, tmp_path, "SELECT 1", conf="\tencryption = require\n")
    assert p.returncode != 0


# ---- fault modes ------------------------------------------------------------------------------------


@needs_pytds
def test_fault_refuse_connections(server: TdsTestServer) -> None:
    server.faults.refuse_connections = True
    with pytest.raises(Exception):
        connect(server, login_timeout=0.5)
    server.faults.refuse_connections = False
    with connect(server) as conn:
        assert conn.cursor().execute("SELECT 1").fetchone() == (1,)


@needs_pytds
def test_fault_drop_mid_result(server: TdsTestServer) -> None:
    before = server.stats.get("dropped_mid_result")
    server.faults.drop_after_rows = 5000
    with connect(server) as conn:
        cur = conn.cursor()
        with pytest.raises(Exception):
            cur.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) "
                        "SELECT x FROM c")
            cur.fetchall()
    assert server.stats.get("dropped_mid_result") == before + 1
    server.faults.drop_after_rows = None
    with connect(server) as conn:  # small results are not affected once the knob is off
        assert conn.cursor().execute("SELECT 1").fetchone() == (1,)


@needs_pytds
def test_fault_delay(server: TdsTestServer) -> None:
    server.faults.delay_ms = 300
    with connect(server) as conn:
        t0 = time.monotonic()
        conn.cursor().execute("SELECT 1").fetchone()
        assert time.monotonic() - t0 >= 0.3


@needs_tsql
def test_fault_refuse_connections_tsql(server: TdsTestServer, tmp_path: Path) -> None:
    server.faults.refuse_connections = True
    p = tsql(server, tmp_path, "SELECT 1")
    assert p.returncode != 0 or "failed" in p.stderr.lower()


# ---- bulk load ------------------------------------------------------------------------------------


@needs_freebcp
@needs_tsql
@needs_pytds
def test_bulk_load_with_freebcp(server: TdsTestServer, tmp_path: Path) -> None:
    """freebcp uses db-lib's bcp_* API, which the driver will use: SET FMTONLY
    metadata query, INSERT BULK, then a BULK LOAD message."""
    p = tsql(server, tmp_path, "CREATE TABLE bcp1 (id INT NOT NULL, name NVARCHAR(10), amount DECIMAL(10,2), "
             "ts DATETIME2(3), flag BIT)")
    assert p.returncode == 0, p.stderr
    data = tmp_path / "data.txt"
    data.write_text("".join(f"{i}\tname{i}\t{i}.25\t2020-01-02 03:04:05.123\t{i % 2}\n" for i in range(1000)))
    b = subprocess.run([FREEBCP, "dbpool.dbo.bcp1", "in", str(data), "-c", "-S", "tdstest", "-U", server.user,
                        "-P", server.password], capture_output=True, text=True, timeout=30,
                       env=freetds_env(server, tmp_path))
    assert b.returncode == 0, b.stdout + b.stderr
    assert "1000 rows copied" in b.stdout
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*), MIN(name), MAX(amount), MIN(ts), SUM(flag) FROM bcp1")
        count, name, _amount, ts, flags = cur.fetchone()
        assert (count, name, flags) == (1000, "name0", 500)
        assert ts == "2020-01-02 03:04:05.1230000"
        cur.execute("SELECT amount, ts FROM bcp1 WHERE id = 999")
        assert cur.fetchone() == (Decimal("999.25"), dt.datetime(2020, 1, 2, 3, 4, 5, 123000))
    assert any(r[1] == "BULK" for r in server.stats.requests)


@needs_pytds
def test_bulk_load_pytds_all_or_nothing(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE bcp2 (id INT NOT NULL, name NVARCHAR(5), d DATE)")
        cur.copy_to(table_or_view="bcp2", data=[("1", "a", "2020-01-01"), ("2", "b", None)],
                    columns=["id", "name", "d"])
        cur.execute("SELECT * FROM bcp2 ORDER BY id")
        assert cur.fetchall() == [(1, "a", dt.date(2020, 1, 1)), (2, "b", None)]
        with pytest.raises(pytds.OperationalError) as ei:
            cur.copy_to(table_or_view="bcp2", data=[("3", "c", None), ("4", "toolong", None)],
                        columns=["id", "name", "d"])
        assert ei.value.number == 4815
        with pytest.raises(pytds.Error):
            cur.copy_to(table_or_view="bcp2", data=[("5", "e", None), ("x", "f", None)], columns=["id", "name", "d"])
        cur.execute("SELECT COUNT(*) FROM bcp2")
        assert cur.fetchone() == (2,)  # neither failed load left a row behind


# ---- misc T-SQL -------------------------------------------------------------------------------------


@needs_pytds
def test_use_database_and_temp_tables(server: TdsTestServer) -> None:
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("USE tempdb; SELECT DB_NAME()")
        assert cur.fetchone() == ("tempdb",)
        cur.execute("SET NOCOUNT ON; CREATE TABLE #tmp (a INT); INSERT INTO #tmp VALUES (1), (2); SELECT TOP 1 a FROM #tmp "
                    "ORDER BY a DESC")
        assert cur.fetchone() == (2,)
        cur.execute("SET NOCOUNT OFF; SET ANSI_NULLS ON; SET TEXTSIZE 2147483647; SELECT [a] FROM [#tmp] "
                    "WHERE a = 1")
        assert cur.fetchall() == [(1,)]
        with pytest.raises(pytds.OperationalError) as ei:
            cur.execute("USE nosuchdb")
        assert ei.value.number == 911


# ---- the command line ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_tsql
def test_command_line_server(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.tds_server", "--port", str(port), "--delay-ms", "10"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"listening on 127.0.0.1:{port}" in line
        conf = tmp_path / "freetds.conf"
        conf.write_text(f"[global]\n\ttds version = 7.4\n[cli]\n\thost = 127.0.0.1\n\tport = {port}\n")
        p = subprocess.run([TSQL, "-S", "cli", "-U", "sa", "-P", "db-pool-test", "-o", "qf"],
                           input="SELECT 6 * 7 AS answer\ngo\nexit\n", capture_output=True, text=True, timeout=20,
                           env=dict(os.environ, FREETDSCONF=str(conf)))
        assert tsql_rows(p.stdout)[-1] == ["42"], p.stdout + p.stderr
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def test_background_server_restarts_cleanly() -> None:
    srv = TdsTestServer(delay_ms=0).start()
    port = srv.port
    thread = srv._thread
    assert thread is not None and thread.is_alive()
    srv.stop()
    assert not thread.is_alive()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


# ---- FreeTDS db-lib (the API the MSSQL driver will use), through ctypes --------------------------


class DbLib:
    """Just enough of db-lib (libsybdb) to log in, run batches and RPCs,
    read rows as text, and cancel."""

    SUCCEED, FAIL, NO_MORE_RESULTS, NO_MORE_ROWS = 1, 0, 2, -2
    INT_CANCEL, INT_TIMEOUT = 2, 3
    SYBCHAR, SYBVARCHAR, SYBINT4 = 47, 39, 56

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        self.ct = ctypes
        self.lib = ctypes.CDLL(ctypes.util.find_library("sybdb") or "libsybdb.so.5")
        lib = self.lib
        vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        lib.dblogin.restype = vp
        lib.dbopen.restype = vp
        lib.dbopen.argtypes = [vp, cp]
        lib.dbsetlname.argtypes = [vp, cp, i]
        lib.dbsetlversion.argtypes = [vp, ctypes.c_ubyte]
        for name in ("dbsqlexec", "dbresults", "dbnextrow", "dbnumcols", "dbcancel", "dbclose", "dbrpcsend",
                     "dbsqlok"):
            getattr(lib, name).argtypes = [vp]
        lib.dbcmd.argtypes = [vp, cp]
        lib.dbdata.restype = vp
        lib.dbdata.argtypes = [vp, i]
        lib.dbdatlen.argtypes = [vp, i]
        lib.dbcoltype.argtypes = [vp, i]
        lib.dbcolname.restype = cp
        lib.dbcolname.argtypes = [vp, i]
        lib.dbconvert.argtypes = [vp, i, vp, i, i, vp, i]
        lib.dbrpcinit.argtypes = [vp, cp, ctypes.c_short]
        lib.dbrpcparam.argtypes = [vp, cp, ctypes.c_ubyte, i, i, i, vp]
        lib.dbloginfree.argtypes = [vp]
        self.ERR = ctypes.CFUNCTYPE(i, vp, i, i, i, cp, cp)
        self.MSG = ctypes.CFUNCTYPE(i, vp, ctypes.c_int32, i, i, cp, cp, cp, i)
        self.messages: list[tuple[int, int, str]] = []
        self.errors: list[int] = []
        self.on_timeout = self.INT_CANCEL

        def err_handler(_proc: Any, _sev: int, dberr: int, _oserr: int, _text: bytes, _ostext: bytes) -> int:
            self.errors.append(dberr)
            return self.on_timeout if dberr == 20003 else self.INT_CANCEL

        def msg_handler(_proc: Any, msgno: int, _state: int, severity: int, text: bytes, *_rest: Any) -> int:
            self.messages.append((msgno, severity, text.decode("utf-8", "replace")))
            return 0

        self._err = self.ERR(err_handler)  # keep references: called from C
        self._msg = self.MSG(msg_handler)
        lib.dbinit()
        lib.dberrhandle(self._err)
        lib.dbmsghandle(self._msg)

    def open(self, host: str, user: str, password: str, database: str = "dbpool") -> Any:
        lib = self.lib
        login = lib.dblogin()
        lib.dbsetlname(login, user.encode(), 2)
        lib.dbsetlname(login, password.encode(), 3)
        lib.dbsetlname(login, b"dblib-test", 5)
        lib.dbsetlname(login, database.encode(), 14)
        lib.dbsetlversion(login, 8)  # DBVERSION_74
        proc = lib.dbopen(login, host.encode())
        lib.dbloginfree(login)
        return proc

    def rows(self, proc: Any, limit: int | None = None) -> list[list[list[str | None]]]:
        """All result sets of the current command, values converted to text by db-lib."""
        lib, ct = self.lib, self.ct
        out: list[list[list[str | None]]] = []
        buf = ct.create_string_buffer(256)
        while (rc := lib.dbresults(proc)) != self.NO_MORE_RESULTS:
            if rc == self.FAIL:
                break
            ncols = lib.dbnumcols(proc)
            if ncols == 0:
                continue
            rows: list[list[str | None]] = []
            while lib.dbnextrow(proc) != self.NO_MORE_ROWS:
                row: list[str | None] = []
                for c in range(1, ncols + 1):
                    data, n = lib.dbdata(proc, c), lib.dbdatlen(proc, c)
                    if data is None:
                        row.append(None)
                        continue
                    m = lib.dbconvert(proc, lib.dbcoltype(proc, c), data, n, self.SYBCHAR, buf, len(buf))
                    row.append(buf.raw[: max(m, 0)].decode("utf-8", "replace"))
                rows.append(row)
                if limit is not None and len(rows) >= limit:
                    return out + [rows]
            out.append(rows)
        return out

    def query(self, proc: Any, sql: str) -> list[list[list[str | None]]] | None:
        self.lib.dbcmd(proc, sql.encode())
        if self.lib.dbsqlexec(proc) != self.SUCCEED:
            return None
        return self.rows(proc)


@pytest.fixture(scope="module")
def dblib() -> DbLib:
    import ctypes.util

    if ctypes.util.find_library("sybdb") is None and not Path("/usr/lib/x86_64-linux-gnu/libsybdb.so.5").exists():
        pytest.skip("FreeTDS db-lib (libsybdb) not installed (apt-get install freetds-dev)")
    return DbLib()


def test_dblib_login_query_and_errors(server: TdsTestServer, dblib: DbLib) -> None:
    host = f"127.0.0.1:{server.port}"
    assert not dblib.open(host, "sa", "wrong")
    assert any(m[0] == 18456 for m in dblib.messages)
    proc = dblib.open(host, server.user, server.password)
    assert proc
    try:
        res = dblib.query(proc, "SELECT 1 AS a, N'日本' AS b, CAST('2020-01-02 03:04:05.1234567' AS DATETIME2(7)), "
                                "CAST(12.345 AS DECIMAL(10,3)), NEWID(), NULL; SELECT 2")
        assert res is not None
        (row,), (row2,) = res
        assert row[:2] == ["1", "日本"] and row[3] == "12.345" and row[5] is None and len(row[4] or "") == 36
        assert row[2] is not None and row[2].startswith(("Jan  2 2020", "2020-01-02"))
        assert row2 == ["2"]
        dblib.messages.clear()
        assert dblib.query(proc, "SELECT * FROM nowhere") in (None, [])
        assert any(m[0] == 208 for m in dblib.messages)
        assert dblib.query(proc, "SELECT 3") == [[["3"]]]
    finally:
        dblib.lib.dbclose(proc)


def test_dblib_rpc_sp_executesql(server: TdsTestServer, dblib: DbLib) -> None:
    ct = dblib.ct
    lib = dblib.lib
    proc = dblib.open(f"127.0.0.1:{server.port}", server.user, server.password)
    assert proc
    try:
        assert lib.dbrpcinit(proc, b"sp_executesql", 0) == dblib.SUCCEED
        stmt, decl = b"SELECT @P1 * 2 AS doubled", b"@P1 int"
        lib.dbrpcparam(proc, b"@stmt", 0, dblib.SYBVARCHAR, -1, len(stmt), ct.c_char_p(stmt))
        lib.dbrpcparam(proc, b"@params", 0, dblib.SYBVARCHAR, -1, len(decl), ct.c_char_p(decl))
        value = ct.c_int32(21)
        lib.dbrpcparam(proc, b"@P1", 0, dblib.SYBINT4, -1, -1, ct.byref(value))
        assert lib.dbrpcsend(proc) == dblib.SUCCEED
        assert lib.dbsqlok(proc) == dblib.SUCCEED
        assert dblib.rows(proc) == [[["42"]]]
    finally:
        lib.dbclose(proc)


def test_dblib_cancel_and_timeout(server: TdsTestServer, dblib: DbLib) -> None:
    lib = dblib.lib
    proc = dblib.open(f"127.0.0.1:{server.port}", server.user, server.password)
    assert proc
    try:
        acked = server.stats.get("attentions_acknowledged") + server.stats.get("attentions")
        # dbcancel in the middle of a large result
        lib.dbcmd(proc, b"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
                        b"SELECT x FROM c")
        assert lib.dbsqlexec(proc) == dblib.SUCCEED
        assert dblib.rows(proc, limit=10)[0][-1] == ["10"]
        assert lib.dbcancel(proc) == dblib.SUCCEED
        assert dblib.query(proc, "SELECT 5") == [[["5"]]]
        # query timeout. FreeTDS 1.3: the error handler must answer SYBETIME (20003) with INT_TIMEOUT to
        # get an ATTENTION and a usable connection; INT_CANCEL makes db-lib drop the connection.
        dblib.on_timeout = dblib.INT_TIMEOUT
        lib.dbsettime(1)
        t0 = time.monotonic()
        assert dblib.query(proc, "WAITFOR DELAY '00:00:05'") in (None, [])
        assert time.monotonic() - t0 < 4
        assert 20003 in dblib.errors
        lib.dbsettime(0)
        assert dblib.query(proc, "SELECT 6") == [[["6"]]]
        assert server.stats.get("attentions_acknowledged") + server.stats.get("attentions") >= acked + 2
    finally:
        dblib.on_timeout = dblib.INT_CANCEL
        lib.dbsettime(0)
        lib.dbclose(proc)
