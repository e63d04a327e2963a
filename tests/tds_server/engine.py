"""Executing T-SQL on sqlite for one session: statements, transactions
(@@TRANCOUNT, descriptors), variables, SET options, result typing, errors.

The engine is synchronous and runs in the session's own worker thread; a
batch is a generator of events (result sets, DONEs, tokens to send, sleeps)
that the session turns into the token stream (session.py).
"""

from __future__ import annotations

import decimal
import math
import os
import random
import re
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Iterator

from . import errors, sql, temporal as T, tokens as tk
from .errors import SqlError
from .sql import IfStmt, Stmt, Tok
from .types import (
    BIGINT, FLOAT, INT, NVARCHAR_MAX, VARBINARY_MAX, SqlType, coerce, parse_declared_type, to_storage,
)

IDENTITY_TABLE = "tds_identity_columns"

# ---- events ------------------------------------------------------------------------------


@dataclass
class ResultSet:
    columns: list[tk.Column]
    rows: list[list[object]]


@dataclass
class StatementDone:
    curcmd: int
    rowcount: int | None  # None: no DONE_COUNT
    error: bool = False


@dataclass
class Send:
    data: bytes  # ready-made tokens (ENVCHANGE, INFO, ERROR)


@dataclass
class Sleep:
    seconds: float


Event = ResultSet | StatementDone | Send | Sleep


# ---- databases ----------------------------------------------------------------------------


class Databases:
    """Database name -> sqlite file, shared by all sessions of a server."""

    def __init__(self, directory: str, names: list[str]) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        self.files: dict[str, str] = {}
        self._descriptor = 0x1000
        for name in names:
            self.create(name, exist_ok=True)

    def create(self, name: str, exist_ok: bool = False) -> None:
        with self.lock:
            key = name.lower()
            if key in self.files:
                if exist_ok:
                    return
                raise SqlError(1801, f"Database '{name}' already exists. Choose a different database name.", state=3)
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            path = os.path.join(self.directory, f"{safe}-{len(self.files)}.sqlite3")
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {IDENTITY_TABLE} (tbl TEXT, col TEXT, type TEXT)")
            conn.commit()
            conn.close()
            self.files[key] = path

    def drop(self, name: str) -> None:
        with self.lock:
            if name.lower() not in self.files:
                raise SqlError(3701, f"Cannot drop the database '{name}', because it does not exist "
                               "or you do not have permission.", state=1)
            if name.lower() in ("master", "tempdb"):
                raise SqlError(3708, f"Cannot drop the database '{name}' because it is a system database.")
            del self.files[name.lower()]

    def path(self, name: str) -> str | None:
        with self.lock:
            return self.files.get(name.lower())

    def canonical(self, name: str) -> str:
        return name

    def next_descriptor(self) -> bytes:
        with self.lock:
            self._descriptor += 1
            return self._descriptor.to_bytes(8, "little")


# ---- sqlite functions --------------------------------------------------------------------


def _now_text(utc: bool, digits: int, offset: bool = False) -> str:
    days, ticks, off = T.now_local()
    if utc:
        days, ticks = T.normalize(days, ticks - off * 60 * T.TICKS_PER_SECOND)
        off = 0
    if digits == 3:
        days, ticks = T.normalize(days, T.round_ticks(ticks, 3))
    if offset:
        return T.format_dto(days, ticks, off, digits)
    return T.format_datetime(days, ticks, digits)


def _decimal_fits(v: object, precision: int, scale: int) -> bool:
    if v is None:
        return True
    try:
        d = Decimal(str(v)) if not isinstance(v, bytes) else None
    except decimal.InvalidOperation:
        return False
    if d is None or not d.is_finite():
        return False
    q = d.quantize(Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP, context=decimal.Context(prec=80))
    whole = abs(int(q))
    return len(str(whole)) <= precision - scale if whole else True


def _round(v: object, n: object = 0) -> object:
    if v is None or n is None:
        return None
    places = int(n)  # type: ignore[call-overload]
    if isinstance(v, int):
        return v if places >= 0 else int(round(v, places))
    d = Decimal(str(v))
    q = d.quantize(Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP) if places >= 0 else \
        Decimal(round(d, places))
    return float(q) if isinstance(v, float) else format(q, "f")


def register_functions(conn: sqlite3.Connection) -> None:
    f = conn.create_function
    f("tds_getdate", 0, lambda: _now_text(False, 3))
    f("tds_getutcdate", 0, lambda: _now_text(True, 3))
    f("tds_sysdatetime", 0, lambda: _now_text(False, 7))
    f("tds_sysutcdatetime", 0, lambda: _now_text(True, 7))
    f("tds_sysdatetimeoffset", 0, lambda: _now_text(False, 7, offset=True))
    f("tds_newid", 0, lambda: str(uuid.uuid4()).upper())
    f("tds_len", 1, lambda s: None if s is None else len(str(s).rstrip(" ")) if not isinstance(s, bytes) else len(s))
    f("tds_datalength", 1, lambda s: None if s is None else len(s) if isinstance(s, bytes)
      else len(str(s).encode("utf-16-le")) if isinstance(s, str) else 8)
    f("tds_charindex", 2, lambda a, b: None if a is None or b is None else str(b).find(str(a)) + 1)
    f("tds_charindex", 3, lambda a, b, c: None if a is None or b is None else str(b).find(str(a), max(0, int(c) - 1)) + 1)
    f("tds_ceiling", 1, lambda v: None if v is None else math.ceil(float(v)))
    f("tds_floor", 1, lambda v: None if v is None else math.floor(float(v)))
    f("tds_square", 1, lambda v: None if v is None else float(v) ** 2)
    f("tds_power", 2, lambda a, b: None if a is None or b is None else a ** b)
    f("tds_sqrt", 1, lambda v: None if v is None else math.sqrt(float(v)))
    f("tds_left", 2, lambda s, n: None if s is None else str(s)[: max(0, int(n))])
    f("tds_right", 2, lambda s, n: None if s is None else (str(s)[-int(n):] if int(n) > 0 else ""))
    f("tds_replicate", 2, lambda s, n: None if s is None else str(s) * max(0, int(n)))
    f("tds_space", 1, lambda n: None if n is None else " " * max(0, int(n)))
    f("tds_round", 2, _round)
    f("tds_round", 1, _round)
    f("tds_rand", 0, random.random)
    f("tds_rand", 1, lambda seed: random.Random(seed).random())
    f("tds_ident_current", 1, lambda name: None)
    f("tds_decimal_fits", 3, _decimal_fits, deterministic=True)


# ---- the engine ---------------------------------------------------------------------------


@dataclass
class Variable:
    type: SqlType
    value: object  # internal form


@dataclass
class BulkTarget:
    table: str
    columns: list[tuple[str, SqlType]]
    hints: str = ""
    schema: str | None = None  # attached database, or None for the current one


@dataclass
class EngineSettings:
    server_name: str = "TDSTEST"
    version: str = ""
    lock_timeout_s: float = 10.0
    deadlock_marker: str = "tds:deadlock"
    #: Asked per statement, so a test can flip the server's role while it runs.
    read_only: Callable[[], bool] = lambda: False


#: Statements that fail with 3906 while the server is read-only.
WRITING_KEYWORDS = {"INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER", "TRUNCATE"}


@dataclass
class Engine:
    databases: Databases
    spid: int
    user: str
    database: str
    settings: EngineSettings = field(default_factory=EngineSettings)

    def __post_init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.login_database = self.database
        self.trancount = 0
        self.descriptor = bytes(8)
        self.savepoints: set[str] = set()
        self.nocount = False
        self.fmtonly = False
        self.textsize = 2147483647
        self.rowcount = 0
        self.last_error = 0
        self.variables: dict[str, Variable] = {}
        self.prepared: dict[int, tuple[str, str]] = {}
        self.next_handle = 1
        self.pending_bulk: BulkTarget | None = None
        self.describe_seq = 0
        self.open(self.database)

    # -- connection --------------------------------------------------------------------

    def open(self, name: str) -> None:
        path = self.databases.path(name)
        if path is None:
            raise SqlError(911, f"Database '{name}' does not exist. Make sure that the name is entered correctly.",
                           state=1)
        if self.conn is not None:
            self.conn.close()
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                    timeout=self.settings.lock_timeout_s)
        self.conn.execute("PRAGMA foreign_keys=ON")
        register_functions(self.conn)
        self.database = name
        self.attached: set[str] = set()

    def close(self) -> None:
        if self.conn is not None:
            try:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self.conn.close()
            self.conn = None

    def interrupt(self) -> None:
        """From another thread: stop the running sqlite statement (attention)."""
        conn = self.conn
        if conn is not None:
            conn.interrupt()

    def reset(self) -> list[bytes]:
        """sp_reset_connection semantics (RESETCONNECTION bit): roll back,
        drop temp tables, back to the login database and default options."""
        out: list[bytes] = []
        self.close()
        self.trancount = 0
        self.descriptor = bytes(8)
        self.savepoints.clear()
        self.nocount = self.fmtonly = False
        self.textsize = 2147483647
        self.variables.clear()
        self.prepared.clear()
        self.pending_bulk = None
        self.open(self.login_database)
        return out

    @property
    def db(self) -> sqlite3.Connection:
        assert self.conn is not None
        return self.conn

    # -- helpers -----------------------------------------------------------------------

    def context(self) -> sql.Context:
        return sql.Context(
            spid=self.spid, database=self.database, trancount=self.trancount, rowcount=self.rowcount,
            error=self.last_error, version=self.settings.version, server_name=self.settings.server_name,
            user=self.user, object_exists=self.object_exists, attach=self.attach, textsize=self.textsize,
            read_only=self.settings.read_only(),
        )

    def attach(self, name: str) -> str | None:
        """Make database ``name`` reachable as a sqlite schema (three-part names)."""
        if name.lower() == self.database.lower():
            return None
        path = self.databases.path(name)
        if path is None:
            raise SqlError(911, f"Database '{name}' does not exist. Make sure that the name is entered correctly.")
        alias = name.lower()
        if alias not in self.attached:
            if self.db.in_transaction:
                raise SqlError(40000, "cross-database names inside a transaction are not supported by this test "
                               "server unless used before BEGIN TRAN")
            self.db.execute("ATTACH DATABASE ? AS " + sql.quote_ident(alias), (path,))
            self.attached.add(alias)
        return alias

    def object_exists(self, name: str, schema: str | None = None) -> bool:
        parts = [p.strip("[]\"") for p in name.split(".")]
        obj = parts[-1]
        if schema is None and len(parts) >= 3 and parts[0]:
            schema = self.attach(parts[0])
        master = "sqlite_temp_master" if obj.startswith("#") else \
            f"{sql.quote_ident(schema)}.sqlite_master" if schema else "sqlite_master"
        row = self.db.execute(f"SELECT 1 FROM {master} WHERE lower(name) = lower(?)", (obj,)).fetchone()
        return row is not None

    def message(self, number: int, text: str, state: int = 1, severity: int = 0) -> Send:
        return Send(tk.info(number, state, severity, text, self.settings.server_name))

    def error_event(self, err: SqlError, proc: str = "", line: int = 1) -> Send:
        self.last_error = err.number
        return Send(tk.error(err.number, err.state, err.severity, err.message, self.settings.server_name, proc, line))

    def sync_transaction_state(self) -> list[Send]:
        """After an error: if sqlite rolled the transaction back by itself,
        tell the client like SQL Server would."""
        if self.trancount and self.conn is not None and not self.conn.in_transaction:
            return [self._end_transaction(tk.ENV_ROLLBACK_TRAN)]
        return []

    def _end_transaction(self, kind: int) -> Send:
        old = self.descriptor
        self.trancount = 0
        self.descriptor = bytes(8)
        self.savepoints.clear()
        return Send(tk.envchange_bytes(kind, b"", old))

    def bindings(self, names: list[str], params: dict[str, Variable]) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in names:
            key = name.lower()
            var = params.get(key) or self.variables.get(key)
            if var is None:
                raise SqlError(137, f'Must declare the scalar variable "@{name}".', state=2)
            out[name] = to_storage(var.type, var.value)
        return out

    def evaluate(self, expr: list[Tok], params: dict[str, Variable]) -> object:
        toks = [Tok("ident", "SELECT", "SELECT")] + expr
        tr = sql.translate(toks, self.context())
        try:
            row = self.db.execute(tr.sql, self.bindings(tr.params, params)).fetchone()
        except sqlite3.Error as exc:
            raise errors.from_sqlite(exc, self.database, "SELECT") from None
        return row[0] if row else None

    # -- batches -------------------------------------------------------------------------

    def run_batch(self, text: str, params: dict[str, Variable] | None = None, proc: str = "") -> Iterator[Event]:
        """Execute a T-SQL batch; yields events. Compile errors (syntax) stop
        the batch before anything runs, like SQL Server."""
        params = params or {}
        self.variables = {}
        try:
            stmts = sql.parse_batch(text)
        except SqlError as err:
            yield self.error_event(err, proc)
            yield StatementDone(tk.CMD_OTHER, None, error=True)
            return
        yield from self.run_statements(stmts, params, proc)

    def run_statements(self, stmts: list[Stmt | IfStmt], params: dict[str, Variable], proc: str) -> Iterator[Event]:
        for st in stmts:
            aborted = yield from self.run_one(st, params, proc)
            if aborted:
                return

    def run_one(self, st: Stmt | IfStmt, params: dict[str, Variable], proc: str) -> Iterator[Event]:
        """Runs one statement; returns True (via StopIteration) when the batch must stop."""
        try:
            if isinstance(st, IfStmt):
                if len(st.condition) == 1 and st.condition[0].text == "1":
                    cond = True  # BEGIN ... END block
                else:
                    toks = [Tok("ident", "CASE"), Tok("ident", "WHEN")] + st.condition + \
                        [Tok("ident", "THEN"), Tok("num", "1"), Tok("ident", "ELSE"), Tok("num", "0"), Tok("ident", "END")]
                    cond = bool(self.evaluate(toks, params))
                for sub in (st.then if cond else st.otherwise):
                    aborted = yield from self.run_one(sub, params, proc)
                    if aborted:
                        return True
                return False
            yield from self.execute(st, params)
            return False
        except SqlError as err:
            if err.rolls_back and self.trancount:
                self.db.execute("ROLLBACK") if self.db.in_transaction else None
                yield self._end_transaction(tk.ENV_ROLLBACK_TRAN)
            yield from self.sync_transaction_state()
            line = 1
            yield self.error_event(err, proc, line)
            yield StatementDone(_curcmd(st.keyword if isinstance(st, Stmt) else ""), None, error=True)
            return err.aborts_batch

    # -- statements -----------------------------------------------------------------------

    def execute(self, st: Stmt, params: dict[str, Variable]) -> Iterator[Event]:
        kw = st.keyword
        toks = st.tokens
        marker = self.settings.deadlock_marker
        if marker and any(t.kind == "str" and marker in t.value for t in toks):
            raise errors.deadlock(self.spid)
        if kw in WRITING_KEYWORDS and self.settings.read_only():
            raise errors.read_only_database(self.database)
        if kw == "SET":
            yield from self.do_set(toks, params)
        elif kw == "DECLARE":
            self.do_declare(toks, params)
        elif kw == "USE":
            yield from self.do_use(toks)
        elif kw in ("BEGIN", "COMMIT", "ROLLBACK", "SAVE"):
            yield from self.do_transaction(toks)
        elif kw == "PRINT":
            yield self.message(0, _to_text(self.evaluate(toks[1:], params)), state=1)
            yield StatementDone(tk.CMD_OTHER, None)
        elif kw == "RAISERROR":
            yield from self.do_raiserror(toks, params)
        elif kw == "THROW":
            yield from self.do_throw(toks, params)
        elif kw == "WAITFOR":
            yield Sleep(_waitfor_seconds(toks))
            yield StatementDone(tk.CMD_OTHER, None)
        elif kw in ("EXEC", "EXECUTE"):
            name = toks[1].value if len(toks) > 1 else ""
            if name.startswith("@"):
                name = toks[3].value if len(toks) > 3 else name
            raise SqlError(2812, f"Could not find stored procedure '{name}'.", state=62)
        elif kw == "INSERT" and len(toks) > 1 and toks[1].is_kw("BULK"):
            self.pending_bulk = self.parse_insert_bulk(toks)
            yield StatementDone(tk.CMD_OTHER, None)
        elif kw in ("CREATE", "DROP") and len(toks) > 2 and toks[1].is_kw("DATABASE"):
            if kw == "CREATE":
                self.databases.create(toks[2].value)
            else:
                self.databases.drop(toks[2].value)
            yield StatementDone(tk.CMD_OTHER, None)
        else:
            yield from self.do_sql(st, params)

    def do_sql(self, st: Stmt, params: dict[str, Variable]) -> Iterator[Event]:
        kw = st.keyword
        if self.fmtonly and kw not in ("SELECT", "WITH"):
            yield StatementDone(tk.CMD_OTHER, None)
            return
        tr = sql.translate(st.tokens, self.context())
        created = list(sql.last_create_columns) if kw == "CREATE" else []
        sql.last_create_columns = []
        binding = self.bindings(tr.params, params)
        try:
            cur = self.db.execute(tr.sql, binding)
            if cur.description is not None:
                rows = [] if self.fmtonly else cur.fetchall()
            else:
                rows = []
        except sqlite3.Error as exc:
            raise errors.from_sqlite(exc, self.database, kw if kw in ("INSERT", "UPDATE", "DELETE") else "INSERT") \
                from None
        if kw == "CREATE" and created and len(st.tokens) > 2 and st.tokens[1].is_kw("TABLE"):
            table = _table_name(st.tokens)
            for c in created:
                if c.identity:
                    self.db.execute(f"INSERT INTO {IDENTITY_TABLE} VALUES (?, ?, ?)",
                                    (table, c.name, str(c.type or INT)))
        if cur.description is not None:
            columns = self.describe(st, tr, cur.description, rows, params)
            out_rows = []
            for r in rows:
                out_rows.append([coerce(c.type, v) for c, v in zip(columns, r)])
            self.rowcount = len(out_rows)
            yield ResultSet(columns, out_rows)
            yield StatementDone(tk.CMD_SELECT, None if self.nocount else len(out_rows))
            return
        cmd = _curcmd(kw)
        if cmd in (tk.CMD_INSERT, tk.CMD_UPDATE, tk.CMD_DELETE):
            self.rowcount = max(cur.rowcount, 0)
            yield StatementDone(cmd, None if self.nocount else self.rowcount)
        else:
            yield StatementDone(cmd, None)

    # -- result typing --------------------------------------------------------------------

    def describe(self, st: Stmt, tr: sql.Translation, description: tuple, rows: list, params: dict[str, Variable]
                 ) -> list[tk.Column]:
        n = len(description)
        names = [d[0] for d in description]
        var_types = {k: v.type for k, v in params.items()}
        var_types.update({k: v.type for k, v in self.variables.items()})
        infos, table = sql.analyze_select(st.tokens, var_types)
        if infos is not None and len(infos) != n:
            infos = None
        decltypes = self.view_decltypes(tr.null_sql, n) if st.keyword in ("SELECT", "WITH", "VALUES") else [None] * n
        notnull: dict[str, bool] = {}
        identity: dict[str, str] = {}
        if table:
            try:
                for _cid, cname, _ctype, cnn, _dflt, _pk in self.db.execute(f"PRAGMA table_info({sql.quote_ident(table)})"):
                    notnull[cname.lower()] = bool(cnn)
                for col, typ in self.db.execute(f"SELECT col, type FROM {IDENTITY_TABLE} WHERE lower(tbl) = lower(?)",
                                                (table,)):
                    identity[col.lower()] = typ
            except sqlite3.Error:
                pass
        columns: list[tk.Column] = []
        for i in range(n):
            info = infos[i] if infos else None
            name = info.name if info is not None and info.name is not None else names[i]
            values = (r[i] for r in rows)
            decl = parse_declared_type(decltypes[i])
            ident = False
            nullable = True
            if decl is not None:
                typ = decl
                key = names[i].lower()
                if key in identity and (decltypes[i] or "").upper() == "INTEGER":
                    typ = parse_declared_type(identity[key]) or INT
                    ident = True
                if key in notnull:
                    nullable = not notnull[key] and not ident
            elif info is not None and info.type is not None:
                typ, nullable = info.type, info.nullable
            else:
                typ = _storage_type([r[i] for r in rows])
            if not nullable and any(v is None for v in values):
                nullable = True
            columns.append(tk.Column(name, typ, nullable=nullable, identity=ident,
                                     table_parts=["dbo", table or "t"]))
        return columns

    def view_decltypes(self, select_sql: str, n: int) -> list[str | None]:
        """Declared types of the result columns: sqlite reports, for a view,
        the declared type of each column that is a plain table column."""
        self.describe_seq += 1
        view = f"__tds_describe_{self.describe_seq}"
        try:
            self.db.execute(f"CREATE TEMP VIEW {view} AS {select_sql}")
            try:
                info = self.db.execute(f"PRAGMA temp.table_info({view})").fetchall()
            finally:
                self.db.execute(f"DROP VIEW temp.{view}")
        except sqlite3.Error:
            return [None] * n
        out: list[str | None] = [row[2] or None for row in info]
        return out if len(out) == n else [None] * n

    # -- SET / DECLARE / USE -----------------------------------------------------------------

    def do_set(self, toks: list[Tok], params: dict[str, Variable]) -> Iterator[Event]:
        if len(toks) >= 3 and toks[1].kind == "var":
            key = toks[1].text[1:].lower()
            var = self.variables.get(key) or params.get(key)
            if var is None:
                raise SqlError(137, f'Must declare the scalar variable "{toks[1].text}".', state=2)
            if toks[2].text != "=":
                raise errors.syntax_error(toks[2].text)
            var.value = coerce(var.type, self.evaluate(toks[3:], params))
            yield StatementDone(tk.CMD_OTHER, None)
            return
        words = [t.text.upper() for t in toks[1:]]
        if not words:
            raise errors.syntax_error("SET")
        value = words[-1] if words else ""
        on = value == "ON"
        opt = words[0]
        if opt == "NOCOUNT":
            self.nocount = on
        elif opt == "FMTONLY":
            self.fmtonly = on
        elif opt == "TEXTSIZE":
            try:
                self.textsize = int(words[1])
            except (IndexError, ValueError):
                raise errors.syntax_error(words[1] if len(words) > 1 else "TEXTSIZE") from None
        yield StatementDone(tk.CMD_OTHER, None)

    def do_declare(self, toks: list[Tok], params: dict[str, Variable]) -> None:
        # DECLARE @a type [= expr] [, @b type [= expr]]
        parts: list[list[Tok]] = [[]]
        depth = 0
        for t in toks[1:]:
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
            if t.kind == "op" and t.text == "," and depth == 0:
                parts.append([])
            else:
                parts[-1].append(t)
        for part in parts:
            if not part or part[0].kind != "var":
                raise errors.syntax_error(part[0].text if part else ",")
            eq = next((k for k, t in enumerate(part) if t.kind == "op" and t.text == "="), len(part))
            type_toks = [t for t in part[1:eq] if not t.is_kw("AS")]
            typ = parse_declared_type(" ".join(t.text for t in type_toks), default_char_length=1)
            if typ is None:
                raise SqlError(2715, f"Column, parameter, or variable #1: Cannot find data type "
                               f"{' '.join(t.text for t in type_toks)}.", state=6)
            value = coerce(typ, self.evaluate(part[eq + 1 :], params)) if eq < len(part) else None
            self.variables[part[0].text[1:].lower()] = Variable(typ, value)

    def do_use(self, toks: list[Tok]) -> Iterator[Event]:
        if len(toks) != 2:
            raise errors.syntax_error(toks[-1].text)
        name = toks[1].value
        if self.trancount:
            raise SqlError(40000, "USE inside a transaction is not supported by this test server.")
        old = self.database
        path = self.databases.path(name)
        if path is None:
            raise SqlError(911, f"Database '{name}' does not exist. Make sure that the name is entered correctly.")
        self.open(name)
        yield Send(tk.envchange_str(tk.ENV_DATABASE, name, old))
        yield self.message(5701, f"Changed database context to '{name}'.", state=2)
        yield StatementDone(tk.CMD_OTHER, None)

    # -- transactions ---------------------------------------------------------------------------

    def do_transaction(self, toks: list[Tok]) -> Iterator[Event]:
        kw = toks[0].upper
        rest = [t for t in toks[1:] if not t.is_kw("TRAN", "TRANSACTION", "WORK", "DISTRIBUTED")]
        name = rest[0].value if rest else None
        if kw == "BEGIN":
            if len(toks) < 2 or not toks[1].is_kw("TRAN", "TRANSACTION", "DISTRIBUTED"):
                raise errors.syntax_error(toks[1].text if len(toks) > 1 else "BEGIN")
            yield from self.begin()
        elif kw == "SAVE":
            if not self.trancount:
                raise SqlError(628, "Cannot issue SAVE TRANSACTION when there is no active transaction.")
            if not name:
                raise errors.syntax_error("SAVE")
            self.db.execute(f"SAVEPOINT {sql.quote_ident(name)}")
            self.savepoints.add(name)
        elif kw == "COMMIT":
            yield from self.commit()
        else:
            yield from self.rollback(name)
        yield StatementDone(tk.CMD_OTHER, None)

    def begin(self) -> Iterator[Event]:
        if self.trancount == 0:
            try:
                self.db.execute("BEGIN")
            except sqlite3.Error as exc:
                raise errors.from_sqlite(exc, self.database) from None
            self.descriptor = self.databases.next_descriptor()
            yield Send(tk.envchange_bytes(tk.ENV_BEGIN_TRAN, self.descriptor, b""))
        self.trancount += 1

    def commit(self) -> Iterator[Event]:
        if self.trancount == 0:
            raise SqlError(3902, "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.", state=1)
        if self.trancount == 1:
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise errors.from_sqlite(exc, self.database) from None
            yield self._end_transaction(tk.ENV_COMMIT_TRAN)
        else:
            self.trancount -= 1

    def rollback(self, name: str | None = None) -> Iterator[Event]:
        if name and name in self.savepoints:
            self.db.execute(f"ROLLBACK TO {sql.quote_ident(name)}")
            return
        if self.trancount == 0:
            raise SqlError(3903, "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.", state=1)
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        yield self._end_transaction(tk.ENV_ROLLBACK_TRAN)

    # -- messages ---------------------------------------------------------------------------

    def do_raiserror(self, toks: list[Tok], params: dict[str, Variable]) -> Iterator[Event]:
        if len(toks) < 3 or toks[1].text != "(":
            raise errors.syntax_error(toks[-1].text)
        close = sql._match_paren(toks, 1)
        args = _split_args(toks[2:close])
        if len(args) < 3:
            raise errors.syntax_error(")")
        msg = self.evaluate(args[0], params)
        severity = int(self.evaluate(args[1], params) or 0)  # type: ignore[call-overload]
        state = int(self.evaluate(args[2], params) or 1)  # type: ignore[call-overload]
        text = _to_text(msg)
        for a in args[3:]:
            text = re.sub(r"%[-+ 0#]*\d*(?:\.\d+)?(?:h|l)?[sdiuxXo]", lambda _m, v=self.evaluate(a, params): _to_text(v),
                          text, count=1)
        number = int(msg) if isinstance(msg, int) else 50000  # type: ignore[arg-type]
        if severity <= 10:
            yield self.message(number, text, state=state, severity=0)
            yield StatementDone(tk.CMD_OTHER, None)
        else:
            raise SqlError(number, text, severity=min(severity, 18), state=state, aborts_batch=False)

    def do_throw(self, toks: list[Tok], params: dict[str, Variable]) -> Iterator[Event]:
        args = _split_args(toks[1:])
        if len(args) != 3:
            raise errors.syntax_error("THROW")
        number = int(self.evaluate(args[0], params))  # type: ignore[call-overload]
        text = _to_text(self.evaluate(args[1], params))
        state = int(self.evaluate(args[2], params))  # type: ignore[call-overload]
        raise SqlError(number, text, severity=16, state=state)
        yield  # pragma: no cover

    # -- bulk load target ----------------------------------------------------------------------

    def parse_insert_bulk(self, toks: list[Tok]) -> BulkTarget:
        """INSERT BULK table (col type, ...) [WITH (hints)]."""
        i = 2
        name_parts: list[str] = []
        while i < len(toks) and toks[i].kind in ("ident", "qident"):
            name_parts.append(toks[i].value)
            if i + 1 < len(toks) and toks[i + 1].text == ".":
                i += 2
                continue
            i += 1
            break
        if not name_parts:
            raise errors.syntax_error("BULK")
        table = name_parts[-1]
        schema = self.attach(name_parts[0]) if len(name_parts) >= 3 else None
        if not self.object_exists(table, schema):
            raise errors.invalid_object(table)
        columns: list[tuple[str, SqlType]] = []
        hints = ""
        if i < len(toks) and toks[i].text == "(":
            close = sql._match_paren(toks, i)
            for part in _split_args(toks[i + 1 : close]):
                if not part:
                    continue
                cname = part[0].value
                typ = parse_declared_type(" ".join(t.text for t in part[1:] if not t.is_kw("COLLATE")
                                                   and not (t.kind == "ident" and "_" in t.text)))
                if typ is None:
                    raise SqlError(2715, f"Cannot find data type {' '.join(t.text for t in part[1:])}.")
                columns.append((cname, typ))
            i = close + 1
        if i < len(toks) and toks[i].is_kw("WITH"):
            hints = " ".join(t.text for t in toks[i + 1 :])
        return BulkTarget(table, columns, hints, schema)

    def table_columns(self, table: str, schema: str | None = None) -> list[tuple[str, SqlType | None, bool]]:
        out = []
        prefix = f"{sql.quote_ident(schema)}." if schema else ""
        for _cid, cname, ctype, cnn, _d, _pk in self.db.execute(f"PRAGMA {prefix}table_info({sql.quote_ident(table)})"):
            out.append((cname, parse_declared_type(ctype), bool(cnn)))
        return out


# ---- small helpers --------------------------------------------------------------------------


def _curcmd(kw: str) -> int:
    return {"SELECT": tk.CMD_SELECT, "INSERT": tk.CMD_INSERT, "UPDATE": tk.CMD_UPDATE, "DELETE": tk.CMD_DELETE,
            "WITH": tk.CMD_SELECT}.get(kw, tk.CMD_OTHER)


def _storage_type(values: list[object]) -> SqlType:
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return INT
    if str in kinds:
        return NVARCHAR_MAX
    if bytes in kinds:
        return VARBINARY_MAX
    if float in kinds:
        return FLOAT
    return BIGINT


def _to_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bytes):
        return "0x" + v.hex().upper()
    return str(v)


def _split_args(toks: list[Tok]) -> list[list[Tok]]:
    parts: list[list[Tok]] = [[]]
    depth = 0
    for t in toks:
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
        if t.kind == "op" and t.text == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def _table_name(toks: list[Tok]) -> str:
    names = []
    for t in toks[2:]:
        if t.kind in ("ident", "qident"):
            names.append(t.value)
        elif t.text == ".":
            continue
        else:
            break
    return names[-1] if names else "?"


def _waitfor_seconds(toks: list[Tok]) -> float:
    if len(toks) < 3 or not toks[1].is_kw("DELAY") or toks[2].kind != "str":
        raise SqlError(40000, "only WAITFOR DELAY 'hh:mm:ss[.mmm]' is supported by this test server")
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,3}))?)?\s*", toks[2].value)
    if not m:
        raise SqlError(148, f"Incorrect time syntax in time string '{toks[2].value}' used with WAITFOR.")
    h, mi, s = (int(g) if g else 0 for g in m.groups()[:3])
    ms = int((m.group(4) or "0").ljust(3, "0"))
    return h * 3600 + mi * 60 + s + ms / 1000
