"""The T-SQL side: a tokenizer, a splitter into statements (T-SQL does not
need semicolons), and the translation of one statement into sqlite SQL.

Translation (tokens in, text out): N'..' -> '..', [x] -> "x", #temp ->
"#temp", dbo./db.dbo. prefixes dropped, @@VERSION/@@SPID/... -> literals,
GETDATE()/SYSDATETIME()/NEWID()/SCOPE_IDENTITY()/ISNULL()/LEN()/... -> sqlite
or registered functions, CONVERT(t, x) -> CAST(x AS t), SQL Server type names
in CAST and CREATE TABLE -> names sqlite accepts with the right affinity,
TOP n -> LIMIT n, table hints WITH (NOLOCK) dropped. CREATE TABLE also gets
IDENTITY columns as INTEGER PRIMARY KEY and CHECK constraints that enforce
declared lengths and ranges (named so errors.py can report 2628/8115).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from .errors import LENGTH_CHECK_PREFIX, RANGE_CHECK_PREFIX, SqlError, syntax_error
from .types import INT_RANGES, SqlType, parse_declared_type

# ---- tokens ----------------------------------------------------------------------


@dataclass
class Tok:
    kind: str  # ws comment str num ident qident var sysvar op
    text: str  # original text
    value: str = ""  # unquoted string / identifier name
    national: bool = False  # N'...'

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|$))
  | (?P<str>[Nn]?'(?:[^']|'')*'?)
  | (?P<qident>\[(?:[^\]]|\]\])*\]?|"(?:[^"]|"")*"?)
  | (?P<num>0[xX][0-9A-Fa-f]*|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<sysvar>@@[A-Za-z_0-9]+)
  | (?P<var>@[A-Za-z_0-9#$@]+)
  | (?P<ident>[A-Za-z_\#][A-Za-z_0-9\#$@]*)
  | (?P<op><>|!=|<=|>=|!<|!>|\|\||::|[-+*/%=<>(),.;~&|^!:?])
  | (?P<other>.)
    """,
    re.X | re.S,
)


def tokenize(sql: str) -> list[Tok]:
    out: list[Tok] = []
    for m in _TOKEN_RE.finditer(sql):
        kind = m.lastgroup or "other"
        text = m.group()
        if kind == "str":
            national = text[0] in "Nn"
            body = text[2:] if national else text[1:]
            if not body.endswith("'") or body == "":
                raise SqlError(105, f"Unclosed quotation mark after the character string '{body}'.")
            out.append(Tok("str", text, body[:-1].replace("''", "'"), national))
        elif kind == "qident":
            if text[0] == "[":
                if not text.endswith("]"):
                    raise syntax_error(text)
                value = text[1:-1].replace("]]", "]")
            else:
                if len(text) < 2 or not text.endswith('"'):
                    raise syntax_error(text)
                value = text[1:-1].replace('""', '"')
            out.append(Tok("qident", text, value))
        elif kind == "other":
            out.append(Tok("op", text))
        else:
            out.append(Tok(kind, text, text))
    return out


def significant(tokens: list[Tok]) -> list[Tok]:
    return [t for t in tokens if t.kind not in ("ws", "comment")]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# ---- statements ---------------------------------------------------------------------


@dataclass
class Stmt:
    tokens: list[Tok]  # significant tokens only

    @property
    def keyword(self) -> str:
        return self.tokens[0].upper if self.tokens else ""

    def text(self) -> str:
        return " ".join(t.text for t in self.tokens)


@dataclass
class IfStmt:
    condition: list[Tok]
    then: list["Stmt | IfStmt"]
    otherwise: list["Stmt | IfStmt"] = field(default_factory=list)


ALWAYS_STARTS = {
    "BEGIN", "COMMIT", "ROLLBACK", "USE", "PRINT", "WAITFOR", "DECLARE", "EXEC", "EXECUTE", "CREATE",
    "DROP", "ALTER", "TRUNCATE", "RAISERROR", "THROW", "IF", "SAVE", "INSERT", "UPDATE", "DELETE",
    "MERGE", "SET", "SELECT",
}
ENDS_STATEMENT = {"ELSE", "END"}


class _Parser:
    def __init__(self, tokens: list[Tok]) -> None:
        self.toks = tokens
        self.pos = 0

    def peek(self, k: int = 0) -> Tok | None:
        i = self.pos + k
        return self.toks[i] if i < len(self.toks) else None

    def statements(self, until_end: bool = False) -> list[Stmt | IfStmt]:
        out: list[Stmt | IfStmt] = []
        while True:
            tok = self.peek()
            if tok is None:
                if until_end:
                    raise syntax_error("END")
                return out
            if tok.kind == "op" and tok.text == ";":
                self.pos += 1
                continue
            if until_end and tok.is_kw("END"):
                self.pos += 1
                return out
            out.append(self.statement())

    def statement(self) -> Stmt | IfStmt:
        tok = self.peek()
        assert tok is not None
        if tok.is_kw("IF"):
            return self.if_statement()
        if tok.is_kw("BEGIN"):
            nxt = self.peek(1)
            if nxt is None or not nxt.is_kw("TRAN", "TRANSACTION", "DISTRIBUTED", "TRY", "CATCH"):
                self.pos += 1
                block = self.statements(until_end=True)
                return IfStmt([Tok("num", "1", "1")], block)
        if tok.is_kw("ELSE", "END"):
            raise syntax_error(tok.text)
        return self.simple()

    def if_statement(self) -> IfStmt:
        self.pos += 1
        cond: list[Tok] = []
        depth = 0
        while True:
            tok = self.peek()
            if tok is None:
                raise syntax_error(cond[-1].text if cond else "IF")
            if tok.kind == "op" and tok.text == "(":
                depth += 1
            elif tok.kind == "op" and tok.text == ")":
                depth -= 1
            elif depth == 0 and cond and tok.kind == "ident" and tok.upper in ALWAYS_STARTS:
                break
            cond.append(tok)
            self.pos += 1
        then = [self.statement()]
        otherwise: list[Stmt | IfStmt] = []
        while self.peek() is not None and self.peek().kind == "op" and self.peek().text == ";":  # type: ignore[union-attr]
            self.pos += 1
        tok = self.peek()
        if tok is not None and tok.is_kw("ELSE"):
            self.pos += 1
            otherwise = [self.statement()]
        return IfStmt(cond, then, otherwise)

    def simple(self) -> Stmt:
        start = self.pos
        first = self.toks[start].upper
        depth = 0
        case_depth = 0
        seen_set = False
        seen_select = first == "SELECT"
        seen_main = False  # WITH ... <main statement>
        second = self.toks[start + 1].upper if start + 1 < len(self.toks) else ""
        if first in ("CREATE", "ALTER") and second in ("PROCEDURE", "PROC", "TRIGGER", "FUNCTION"):
            self.pos = len(self.toks)  # must be alone in its batch; runs (and fails) as a whole
            return Stmt(self.toks[start:])
        self.pos += 1
        if first == "BEGIN" or first in ("COMMIT", "ROLLBACK", "SAVE"):
            # BEGIN TRAN [name] / COMMIT [TRAN [name]] / ROLLBACK [TRAN [name]]
            while (tok := self.peek()) is not None and (
                tok.is_kw("TRAN", "TRANSACTION", "WORK", "DISTRIBUTED")
                or (tok.kind in ("ident", "qident", "var") and tok.upper not in ALWAYS_STARTS | ENDS_STATEMENT
                    and self.pos - start <= 2 and self.toks[self.pos - 1].is_kw("TRAN", "TRANSACTION"))
            ):
                self.pos += 1
            return Stmt(self.toks[start : self.pos])
        while (tok := self.peek()) is not None:
            if tok.kind == "op":
                if tok.text == "(":
                    depth += 1
                elif tok.text == ")":
                    depth -= 1
                elif tok.text == ";" and depth == 0:
                    break
            elif tok.kind == "ident" and depth == 0:
                u = tok.upper
                prev = self.toks[self.pos - 1]
                if u == "CASE":
                    case_depth += 1
                elif u == "END" and case_depth:
                    case_depth -= 1
                elif u in ENDS_STATEMENT and not case_depth:
                    break
                elif u in ALWAYS_STARTS and self._starts_new(first, u, prev, seen_set, seen_select, seen_main):
                    break
                if u == "SET":
                    seen_set = True
                if u in ("SELECT", "VALUES"):
                    seen_select = True
                if first == "WITH" and u in ("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"):
                    seen_main = True
            self.pos += 1
        return Stmt(self.toks[start : self.pos])

    @staticmethod
    def _starts_new(first: str, u: str, prev: Tok, seen_set: bool, seen_select: bool, seen_main: bool) -> bool:
        if first == "CREATE" and u == "SELECT" and not seen_select:
            return False  # CREATE VIEW v AS SELECT ...
        if u == "SET":
            return not (first in ("UPDATE", "MERGE") and not seen_set) and not (first == "WITH" and not seen_set)
        if u == "SELECT":
            if prev.is_kw("UNION", "ALL", "EXCEPT", "INTERSECT", "AS", "DISTINCT"):
                return False
            if first == "INSERT" and not seen_select:
                return False
            if first == "WITH" and not seen_main:
                return False
            return True
        if u in ("INSERT", "UPDATE", "DELETE", "MERGE"):
            if prev.is_kw("ON", "OF", "FOR", "INSTEAD", "AFTER", "BEFORE"):
                return False
            if first == "WITH" and not seen_main:
                return False
            return True
        return True


def parse_batch(sql: str) -> list[Stmt | IfStmt]:
    return _Parser(significant(tokenize(sql))).statements()


# ---- type names -------------------------------------------------------------------------

#: T-SQL types whose values must keep sqlite TEXT affinity (stored as text).
_TEXT_AFFINITY = {"decimal", "numeric", "money", "smallmoney", "date", "time", "datetime", "datetime2",
                  "smalldatetime", "datetimeoffset", "uniqueidentifier", "xml"}
_BLOB_AFFINITY = {"binary", "varbinary", "image"}


def sqlite_type_text(t: SqlType) -> str:
    """How a T-SQL type is declared to sqlite: readable by parse_declared_type,
    acceptable to sqlite's grammar (no MAX), with the intended affinity."""
    n = t.name
    if n in ("decimal", "numeric"):
        return f"{n.upper()} TDSTEXT({t.precision},{t.scale})"
    if n in ("time", "datetime2", "datetimeoffset"):
        return f"{n.upper()} TDSTEXT({t.scale})"
    if n in _TEXT_AFFINITY:
        return f"{n.upper()} TDSTEXT"
    if n in _BLOB_AFFINITY:
        return f"{n.upper()} TDSBLOB" + (f"({t.length})" if t.length is not None else "")
    if t.length is not None:
        return f"{n.upper()}({t.length})"
    return n.upper()


def _type_span(toks: list[Tok], i: int) -> int:
    """Index just past a type name starting at toks[i] (words, then (args))."""
    j = i
    while j < len(toks) and toks[j].kind == "ident" and (j == i or toks[j].upper in (
            "PRECISION", "VARYING", "CHAR", "CHARACTER", "TEXT")):
        j += 1
    if j < len(toks) and toks[j].kind == "op" and toks[j].text == "(":
        k = j
        while k < len(toks) and not (toks[k].kind == "op" and toks[k].text == ")"):
            k += 1
        j = k + 1
    return j


def _type_of(toks: list[Tok], default_char_length: int) -> SqlType | None:
    text = " ".join(t.text for t in toks)
    return parse_declared_type(text, default_char_length=default_char_length)


# ---- translation --------------------------------------------------------------------------


@dataclass
class Context:
    """What translation needs to know about the session."""

    spid: int
    database: str
    trancount: int
    rowcount: int
    error: int
    version: str
    server_name: str
    user: str
    object_exists: Callable[[str], bool]
    #: database name -> sqlite schema to qualify with (None: the current database)
    attach: Callable[[str], str | None] = lambda name: None
    textsize: int = 2147483647
    read_only: bool = False


SYSVARS_INT = {"@@SPID", "@@TRANCOUNT", "@@ROWCOUNT", "@@ERROR", "@@MAX_PRECISION", "@@DATEFIRST",
               "@@TEXTSIZE", "@@OPTIONS", "@@LOCK_TIMEOUT", "@@NESTLEVEL", "@@PROCID", "@@LANGID",
               "@@MAX_CONNECTIONS", "@@FETCH_STATUS"}

FUNCTION_MAP = {
    "GETDATE": "tds_getdate",
    "CURRENT_TIMESTAMP": "tds_getdate",
    "SYSDATETIME": "tds_sysdatetime",
    "GETUTCDATE": "tds_getutcdate",
    "SYSUTCDATETIME": "tds_sysutcdatetime",
    "SYSDATETIMEOFFSET": "tds_sysdatetimeoffset",
    "NEWID": "tds_newid",
    "NEWSEQUENTIALID": "tds_newid",
    "SCOPE_IDENTITY": "last_insert_rowid",
    "IDENT_CURRENT": "tds_ident_current",
    "ISNULL": "ifnull",
    "LEN": "tds_len",
    "DATALENGTH": "tds_datalength",
    "CHARINDEX": "tds_charindex",
    "CEILING": "tds_ceiling",
    "FLOOR": "tds_floor",
    "SQUARE": "tds_square",
    "POWER": "tds_power",
    "SQRT": "tds_sqrt",
    "LEFT": "tds_left",
    "RIGHT": "tds_right",
    "REPLICATE": "tds_replicate",
    "SPACE": "tds_space",
    "ROUND": "tds_round",
    "RAND": "tds_rand",
}

TABLE_HINTS = {"NOLOCK", "READUNCOMMITTED", "UPDLOCK", "HOLDLOCK", "ROWLOCK", "PAGLOCK", "TABLOCK", "TABLOCKX",
               "READPAST", "XLOCK", "SERIALIZABLE", "REPEATABLEREAD", "READCOMMITTED", "NOWAIT", "INDEX",
               "FORCESEEK", "SNAPSHOT"}


@dataclass
class Translation:
    sql: str
    params: list[str]  # @names used (without @), in order of first use
    null_sql: str  # same statement with every parameter replaced by NULL (for CREATE VIEW)


def translate(tokens: list[Tok], ctx: Context) -> Translation:
    """One statement's significant tokens -> sqlite SQL."""
    toks = _rewrite_structure(tokens, ctx)
    out: list[str] = []
    null_out: list[str] = []
    params: list[str] = []
    i = 0
    n = len(toks)
    while i < n:
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < n else None
        piece: str
        null_piece: str | None = None
        if t.kind == "str":
            piece = quote_str(t.value)
        elif t.kind == "qident":
            piece = quote_ident(t.value)
        elif t.kind == "ident" and t.text.startswith("#"):
            piece = quote_ident(t.text)
        elif t.kind == "var":
            name = t.text[1:]
            if name.lower() not in [p.lower() for p in params]:
                params.append(name)
            piece = "@" + name
            null_piece = "NULL"
        elif t.kind == "sysvar":
            piece = _sysvar(t.text.upper(), ctx)
        elif t.kind == "ident" and nxt is not None and nxt.kind == "op" and nxt.text == "." and t.upper == "DBO":
            i += 2  # dbo.table -> table
            continue
        elif t.kind == "ident" and t.upper in ("CURRENT_TIMESTAMP",) and not (nxt and nxt.text == "("):
            piece = "tds_getdate()"
        elif t.kind == "ident" and nxt is not None and nxt.kind == "op" and nxt.text == "(":
            u = t.upper
            if u in ("DB_NAME",) and i + 2 < n and toks[i + 2].text == ")":
                piece = quote_str(ctx.database)
                i += 3
                out.append(piece)
                null_out.append(piece)
                continue
            if u in ("SUSER_SNAME", "SUSER_NAME", "USER_NAME", "ORIGINAL_LOGIN", "SYSTEM_USER") and i + 2 < n \
                    and toks[i + 2].text == ")":
                piece = quote_str(ctx.user if u != "USER_NAME" else "dbo")
                i += 3
                out.append(piece)
                null_out.append(piece)
                continue
            if u == "DATABASEPROPERTYEX":  # only 'Updateability' is known; NULL otherwise
                j = _match_paren(toks, i + 1)
                args = [a for a in toks[i + 2 : j] if a.kind == "str"]
                known = bool(args) and args[-1].value.lower() == "updateability"
                piece = quote_str("READ_ONLY" if ctx.read_only else "READ_WRITE") if known else "NULL"
                i = j + 1
                out.append(piece)
                null_out.append(piece)
                continue
            if u == "OBJECT_ID":
                j = _match_paren(toks, i + 1)
                args = [a for a in toks[i + 2 : j] if a.kind == "str"]
                exists = bool(args) and ctx.object_exists(args[0].value)
                piece = "1" if exists else "NULL"
                i = j + 1
                out.append(piece)
                null_out.append(piece)
                continue
            piece = FUNCTION_MAP.get(u, t.text)
        elif t.kind == "ident" and t.upper == "SYSTEM_USER":
            piece = quote_str(ctx.user)
        elif t.kind == "num" and t.text[:2].lower() == "0x":
            piece = "X'" + (t.text[2:] if len(t.text[2:]) % 2 == 0 else "0" + t.text[2:]) + "'"
        else:
            piece = t.text
        out.append(piece)
        null_out.append(piece if null_piece is None else null_piece)
        i += 1
    return Translation(_join(out), params, _join(null_out))


def _join(parts: list[str]) -> str:
    s = " ".join(parts)
    return re.sub(r" ?\. ?", ".", s).replace("( ", "(").replace(" )", ")").replace(" ,", ",")


def _sysvar(name: str, ctx: Context) -> str:
    if name == "@@VERSION":
        return quote_str(ctx.version)
    if name == "@@SPID":
        return str(ctx.spid)
    if name == "@@TRANCOUNT":
        return str(ctx.trancount)
    if name == "@@ROWCOUNT":
        return str(ctx.rowcount)
    if name == "@@ERROR":
        return str(ctx.error)
    if name == "@@IDENTITY":
        return "last_insert_rowid()"
    if name in ("@@SERVERNAME", "@@SERVICENAME"):
        return quote_str(ctx.server_name)
    if name == "@@LANGUAGE":
        return "'us_english'"
    if name == "@@MAX_PRECISION":
        return "38"
    if name == "@@DATEFIRST":
        return "7"
    if name == "@@TEXTSIZE":
        return str(ctx.textsize)
    if name == "@@LOCK_TIMEOUT":
        return "-1"
    if name in SYSVARS_INT:
        return "0"
    raise SqlError(137, f'Must declare the scalar variable "{name}".', state=2)


def _match_paren(toks: list[Tok], open_idx: int) -> int:
    depth = 0
    for j in range(open_idx, len(toks)):
        if toks[j].kind == "op" and toks[j].text == "(":
            depth += 1
        elif toks[j].kind == "op" and toks[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    raise syntax_error(toks[-1].text if toks else "")


def _rewrite_structure(tokens: list[Tok], ctx: Context) -> list[Tok]:
    """Token-level rewrites that move things around: CONVERT, CAST types,
    TOP, table hints, INSERT without INTO, DELETE without FROM,
    three-part names, CREATE TABLE columns."""
    toks = list(tokens)
    if not toks:
        return toks
    first = toks[0].upper
    if first == "CREATE" and len(toks) > 2 and toks[1].is_kw("TABLE"):
        toks = _rewrite_create_table(toks)
    elif first == "ALTER" and len(toks) > 4 and toks[1].is_kw("TABLE"):
        toks = _rewrite_alter_add(toks)
    if first == "INSERT" and len(toks) > 1 and not toks[1].is_kw("INTO"):
        toks.insert(1, Tok("ident", "INTO", "INTO"))
    if first == "DELETE" and len(toks) > 1 and not toks[1].is_kw("FROM"):
        toks.insert(1, Tok("ident", "FROM", "FROM"))
    toks = _drop_db_prefix(toks, ctx)
    toks = _rewrite_convert_cast(toks)
    toks = _drop_table_hints(toks)
    toks = _rewrite_top(toks)
    return toks


def _drop_db_prefix(toks: list[Tok], ctx: Context) -> list[Tok]:
    """db.dbo.t / db..t -> t in the current database, "db".t (an attached
    sqlite database) for another one."""
    out: list[Tok] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if (t.kind in ("ident", "qident") and i + 3 < len(toks) and toks[i + 1].text == "."
                and (toks[i + 2].text == "." or (toks[i + 2].kind in ("ident", "qident") and toks[i + 3].text == "."
                                                  and toks[i + 2].value.lower() == "dbo"))):
            schema = ctx.attach(t.value)
            if schema is not None:
                out += [Tok("qident", quote_ident(schema), schema), Tok("op", ".")]
            i += 3 if toks[i + 2].text == "." else 4
            continue
        out.append(t)
        i += 1
    return out


def _rewrite_convert_cast(toks: list[Tok]) -> list[Tok]:
    out: list[Tok] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.is_kw("CONVERT", "TRY_CONVERT") and i + 1 < len(toks) and toks[i + 1].text == "(":
            close = _match_paren(toks, i + 1)
            inner = toks[i + 2 : close]
            # split at top-level commas
            parts: list[list[Tok]] = [[]]
            depth = 0
            for tok in inner:
                if tok.text == "(":
                    depth += 1
                elif tok.text == ")":
                    depth -= 1
                if tok.text == "," and depth == 0 and tok.kind == "op":
                    parts.append([])
                else:
                    parts[-1].append(tok)
            if len(parts) < 2:
                raise syntax_error("CONVERT")
            typ = _type_of(parts[0], 30)
            expr = _rewrite_convert_cast(parts[1])
            out += [Tok("ident", "CAST"), Tok("op", "(")] + expr + [Tok("ident", "AS")]
            out += _cast_type_tokens(typ, parts[0])
            out.append(Tok("op", ")"))
            i = close + 1
            continue
        if t.is_kw("CAST", "TRY_CAST") and i + 1 < len(toks) and toks[i + 1].text == "(":
            close = _match_paren(toks, i + 1)
            inner = toks[i + 2 : close]
            depth = 0
            as_idx = -1
            for k, tok in enumerate(inner):
                if tok.text == "(":
                    depth += 1
                elif tok.text == ")":
                    depth -= 1
                elif depth == 0 and tok.is_kw("AS"):
                    as_idx = k
            if as_idx < 0:
                raise syntax_error("CAST")
            typ_toks = inner[as_idx + 1 :]
            typ = _type_of(typ_toks, 30)
            out += [Tok("ident", "CAST"), Tok("op", "(")] + _rewrite_convert_cast(inner[:as_idx]) + [Tok("ident", "AS")]
            out += _cast_type_tokens(typ, typ_toks)
            out.append(Tok("op", ")"))
            i = close + 1
            continue
        out.append(t)
        i += 1
    return out


def _cast_type_tokens(typ: SqlType | None, original: list[Tok]) -> list[Tok]:
    if typ is None:
        raise SqlError(243, f"Type {' '.join(t.text for t in original)} is not a defined system type.")
    if typ.name in ("tinyint", "smallint", "int", "bigint", "bit"):
        return [Tok("ident", "INTEGER")]
    if typ.name in ("float", "real"):
        return [Tok("ident", "REAL")]
    if typ.name in _BLOB_AFFINITY:
        return [Tok("ident", "BLOB")]
    return [Tok("ident", "TEXT")]


def _drop_table_hints(toks: list[Tok]) -> list[Tok]:
    out: list[Tok] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        j = i + 1 if t.is_kw("WITH") else i
        if j < len(toks) and toks[j].text == "(" and j + 1 < len(toks) and toks[j + 1].is_kw(*TABLE_HINTS):
            close = _match_paren(toks, j)
            i = close + 1
            continue
        out.append(t)
        i += 1
    return out


def _rewrite_top(toks: list[Tok]) -> list[Tok]:
    """SELECT [DISTINCT] TOP (n) [PERCENT] ... -> SELECT ... LIMIT n, at the end
    of that SELECT's scope (its closing parenthesis or the statement end)."""
    i = 0
    toks = list(toks)
    while i < len(toks):
        t = toks[i]
        if t.is_kw("SELECT"):
            j = i + 1
            if j < len(toks) and toks[j].is_kw("DISTINCT", "ALL"):
                j += 1
            if j < len(toks) and toks[j].is_kw("TOP"):
                if j + 1 < len(toks) and toks[j + 1].text == "(":
                    close = _match_paren(toks, j + 1)
                    limit = toks[j + 2 : close]
                    end_top = close + 1
                else:
                    limit = [toks[j + 1]]
                    end_top = j + 2
                if end_top < len(toks) and toks[end_top].is_kw("PERCENT"):
                    raise SqlError(40000, "TOP ... PERCENT is not supported by this test server")
                if end_top + 1 < len(toks) and toks[end_top].is_kw("WITH") and toks[end_top + 1].is_kw("TIES"):
                    end_top += 2
                del toks[j:end_top]
                # find the scope end from i
                depth = 0
                k = i
                while k < len(toks):
                    if toks[k].text == "(" and toks[k].kind == "op":
                        depth += 1
                    elif toks[k].text == ")" and toks[k].kind == "op":
                        if depth == 0:
                            break
                        depth -= 1
                    k += 1
                toks[k:k] = [Tok("ident", "LIMIT")] + [Tok("op", "(")] + limit + [Tok("op", ")")]
        i += 1
    return toks


# ---- CREATE TABLE ---------------------------------------------------------------------------

CONSTRAINT_WORDS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "INDEX", "PERIOD"}
COLUMN_STOP_WORDS = {"NOT", "NULL", "PRIMARY", "UNIQUE", "CHECK", "DEFAULT", "REFERENCES", "IDENTITY",
                     "CONSTRAINT", "COLLATE", "GENERATED", "AS", "ROWGUIDCOL", "SPARSE", "FILESTREAM",
                     "CLUSTERED", "NONCLUSTERED", "AUTOINCREMENT"}


@dataclass
class ColumnDef:
    name: str
    type: SqlType | None
    identity: bool


#: Filled by _rewrite_create_table for the engine (identity registry).
last_create_columns: list[ColumnDef] = []


def _rewrite_create_table(toks: list[Tok]) -> list[Tok]:
    global last_create_columns
    # CREATE TABLE name ( defs ) [options]
    open_idx = next((k for k, t in enumerate(toks) if t.kind == "op" and t.text == "("), -1)
    if open_idx < 0:
        return toks  # CREATE TABLE .. AS SELECT (sqlite syntax) passes through
    head = toks[:open_idx]
    if any(t.is_kw("AS") for t in head):
        return toks
    name_toks = [t for t in head[2:] if t.kind in ("ident", "qident")]
    is_temp = bool(name_toks) and name_toks[-1].value.startswith("#")
    table = name_toks[-1].value if name_toks else "?"
    close = _match_paren(toks, open_idx)
    defs: list[list[Tok]] = [[]]
    depth = 0
    for t in toks[open_idx + 1 : close]:
        if t.text == "(" and t.kind == "op":
            depth += 1
        elif t.text == ")" and t.kind == "op":
            depth -= 1
        if t.text == "," and t.kind == "op" and depth == 0:
            defs.append([])
        else:
            defs[-1].append(t)
    table_has_pk = any(d and d[0].is_kw("PRIMARY") or any(x.is_kw("PRIMARY") for x in d[:3] if d and d[0].is_kw("CONSTRAINT"))
                       for d in defs)
    new_defs: list[list[Tok]] = []
    columns: list[ColumnDef] = []
    for d in defs:
        if not d:
            raise syntax_error(")")
        if d[0].is_kw(*CONSTRAINT_WORDS):
            new_defs.append([t for t in d if not t.is_kw("CLUSTERED", "NONCLUSTERED")])
            continue
        new_defs.append(_rewrite_column(d, table, columns, table_has_pk))
    last_create_columns = columns
    out = [Tok("ident", "CREATE")]
    if is_temp:
        out.append(Tok("ident", "TEMP"))
    out += toks[1:open_idx] + [Tok("op", "(")]
    for k, d in enumerate(new_defs):
        if k:
            out.append(Tok("op", ","))
        out += d
    out.append(Tok("op", ")"))
    trailing = toks[close + 1 :]
    if trailing and not trailing[0].is_kw("ON", "WITH", "TEXTIMAGE_ON"):
        raise syntax_error(trailing[0].text)
    return out  # SQL Server table options (ON [PRIMARY], WITH (...)) are dropped


def _rewrite_column(d: list[Tok], table: str, columns: list[ColumnDef], table_has_pk: bool) -> list[Tok]:
    col = d[0]
    i = 1
    end_type = i
    while end_type < len(d) and not d[end_type].is_kw(*COLUMN_STOP_WORDS):
        end_type += 1
    type_toks = d[1:end_type]
    rest = d[end_type:]
    sql_t = _type_of(type_toks, 1) if type_toks else None
    identity = any(t.is_kw("IDENTITY") for t in rest)
    new_rest: list[Tok] = []
    k = 0
    while k < len(rest):
        t = rest[k]
        if t.is_kw("IDENTITY"):
            if k + 1 < len(rest) and rest[k + 1].text == "(":
                k = _match_paren(rest, k + 1) + 1
            else:
                k += 1
            continue
        if t.is_kw("CLUSTERED", "NONCLUSTERED", "ROWGUIDCOL", "SPARSE"):
            k += 1
            continue
        if t.is_kw("COLLATE"):
            k += 2
            continue
        new_rest.append(t)
        k += 1
    cname = col.value if col.kind == "qident" else col.text
    columns.append(ColumnDef(cname, sql_t, identity))
    out = [col]
    if identity:
        out.append(Tok("ident", "INTEGER"))
        if not any(t.is_kw("PRIMARY") for t in new_rest) and not table_has_pk:
            new_rest = [Tok("ident", "PRIMARY"), Tok("ident", "KEY")] + new_rest
        return out + new_rest
    if sql_t is None:
        if type_toks:
            raise SqlError(2715, f"Column, parameter, or variable #{len(columns)}: Cannot find data type "
                           f"{' '.join(t.text for t in type_toks)}.", state=6)
        return out + new_rest
    out.append(Tok("ident", sqlite_type_text(sql_t)))
    qcol = quote_ident(cname)
    check: str | None = None
    prefix = ""
    if sql_t.name in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary") and not sql_t.is_max:
        check = f"length({qcol}) <= {sql_t.length}"
        prefix = LENGTH_CHECK_PREFIX
    elif sql_t.name in INT_RANGES and sql_t.name != "bigint":
        lo, hi = INT_RANGES[sql_t.name]
        check = f"typeof({qcol}) <> 'integer' OR {qcol} BETWEEN {lo} AND {hi}"
        prefix = RANGE_CHECK_PREFIX
    elif sql_t.name in ("decimal", "numeric"):
        check = f"tds_decimal_fits({qcol}, {sql_t.precision}, {sql_t.scale})"
        prefix = RANGE_CHECK_PREFIX
    if check:
        cons = quote_ident(f"{prefix}{table}/{cname}/{sql_t}")
        out += new_rest + [Tok("ident", f"CONSTRAINT {cons} CHECK ({check})")]
        return out
    return out + new_rest


def _rewrite_alter_add(toks: list[Tok]) -> list[Tok]:
    # ALTER TABLE t ADD [COLUMN] col type ...
    idx = next((k for k, t in enumerate(toks) if t.is_kw("ADD")), -1)
    if idx < 0 or idx + 1 >= len(toks):
        return toks
    start = idx + 1
    if toks[start].is_kw("COLUMN"):
        start += 1
    if toks[start].is_kw(*CONSTRAINT_WORDS):
        return toks
    table = toks[2].value
    cols: list[ColumnDef] = []
    return toks[:idx + 1] + [Tok("ident", "COLUMN")] + _rewrite_column(toks[start:], table, cols, True)


# ---- select-list analysis (types and names of expression columns) ------------------------


@dataclass
class ItemInfo:
    name: str | None  # None: keep sqlite's column name
    type: SqlType | None
    nullable: bool = True


def analyze_select(tokens: list[Tok], var_types: dict[str, SqlType]) -> tuple[list[ItemInfo] | None, str | None]:
    """For a plain SELECT: per select-list item its T-SQL type when the
    expression fixes one (CAST, CONVERT, literals, known functions,
    variables), and whether it is unnamed; plus the single FROM table.
    Returns (None, table) when the list has a * or cannot be read."""
    if not tokens or not tokens[0].is_kw("SELECT"):
        return None, None
    i = 1
    while i < len(tokens) and tokens[i].is_kw("DISTINCT", "ALL"):
        i += 1
    if i < len(tokens) and tokens[i].is_kw("TOP"):
        i += 2 if tokens[i + 1].text != "(" else (_match_paren(tokens, i + 1) - i + 1)
    items: list[list[Tok]] = [[]]
    depth = 0
    end = len(tokens)
    for k in range(i, len(tokens)):
        t = tokens[k]
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
        if depth == 0 and t.is_kw("FROM", "WHERE", "GROUP", "ORDER", "UNION", "EXCEPT", "INTERSECT", "HAVING",
                                  "INTO", "OPTION", "FOR"):
            end = k
            break
        if depth == 0 and t.kind == "op" and t.text == ",":
            items.append([])
        else:
            items[-1].append(t)
    table = _single_table(tokens[end:])
    if any(not it for it in items) or any(t.text == "*" and (len(it) == 1 or it[-2].text == ".") for it in items
                                          for t in it[-1:]):
        return None, table
    infos = [_item_info(it, var_types) for it in items]
    return infos, table


def _single_table(rest: list[Tok]) -> str | None:
    if not rest or not rest[0].is_kw("FROM"):
        return None
    j = 1
    parts: list[str] = []
    while j < len(rest) and rest[j].kind in ("ident", "qident"):
        parts.append(rest[j].value if rest[j].kind == "qident" else rest[j].text)
        if j + 1 < len(rest) and rest[j + 1].text == ".":
            j += 2
            continue
        j += 1
        break
    if not parts:
        return None
    # anything else that joins more tables -> not a single table
    for t in rest[j:]:
        if t.is_kw("JOIN", "APPLY") or (t.kind == "op" and t.text == ","):
            return None
        if t.is_kw("WHERE", "ORDER", "GROUP"):
            break
    return parts[-1]


def _literal_type(t: Tok) -> SqlType | None:
    if t.kind == "str":
        n = max(1, len(t.value))
        return SqlType("nvarchar", min(n, 4000) if n <= 4000 else -1) if t.national else \
            SqlType("varchar", min(n, 8000) if n <= 8000 else -1)
    if t.kind == "num":
        txt = t.text.lower()
        if txt.startswith("0x"):
            return SqlType("varbinary", max(1, (len(txt) - 1) // 2))
        if "e" in txt:
            return SqlType("float")
        if "." in txt:
            whole, frac = txt.split(".")
            s = len(frac)
            p = max(1, len(whole.lstrip("0")) + s)
            return SqlType("numeric", precision=max(p, s), scale=s)
        v = int(txt)
        if v <= 2**31 - 1:
            return SqlType("int")
        return SqlType("numeric", precision=len(txt), scale=0)
    return None


_FUNC_TYPES = {
    "GETDATE": SqlType("datetime"),
    "GETUTCDATE": SqlType("datetime"),
    "CURRENT_TIMESTAMP": SqlType("datetime"),
    "SYSDATETIME": SqlType("datetime2", scale=7),
    "SYSUTCDATETIME": SqlType("datetime2", scale=7),
    "SYSDATETIMEOFFSET": SqlType("datetimeoffset", scale=7),
    "NEWID": SqlType("uniqueidentifier"),
    "SCOPE_IDENTITY": SqlType("numeric", precision=38, scale=0),
    "IDENT_CURRENT": SqlType("numeric", precision=38, scale=0),
    "DB_NAME": SqlType("nvarchar", 128),
    "DATABASEPROPERTYEX": SqlType("nvarchar", 128),
    "SUSER_SNAME": SqlType("nvarchar", 128),
    "USER_NAME": SqlType("nvarchar", 128),
    "COUNT": SqlType("int"),
    "COUNT_BIG": SqlType("bigint"),
    "LEN": SqlType("int"),
    "DATALENGTH": SqlType("int"),
    "OBJECT_ID": SqlType("int"),
}

_SYSVAR_TYPES = {
    "@@VERSION": SqlType("nvarchar", 300),
    "@@SERVERNAME": SqlType("nvarchar", 128),
    "@@SERVICENAME": SqlType("nvarchar", 128),
    "@@LANGUAGE": SqlType("nvarchar", 128),
    "@@SPID": SqlType("smallint"),
    "@@IDENTITY": SqlType("numeric", precision=38, scale=0),
    "@@DATEFIRST": SqlType("tinyint"),
    "@@MAX_PRECISION": SqlType("tinyint"),
}


def _item_info(item: list[Tok], var_types: dict[str, SqlType]) -> ItemInfo:
    alias: str | None = None
    expr = item
    if len(item) >= 3 and item[-2].is_kw("AS") and item[-1].kind in ("ident", "qident", "str"):
        alias = item[-1].value
        expr = item[:-2]
    elif len(item) >= 3 and item[0].kind in ("ident", "qident") and item[1].kind == "op" and item[1].text == "=":
        alias = item[0].value
        expr = item[2:]
    elif len(item) >= 2 and item[-1].kind in ("ident", "qident") and item[-2].kind in ("num", "str", "qident", "ident",
                                                                                        "sysvar", "var") \
            and not item[-2].is_kw("CASE", "END", "NOT", "AND", "OR", "IS", "NULL", "ELSE", "THEN") \
            and not item[-1].is_kw("END", "NULL"):
        alias = item[-1].value
        expr = item[:-1]
    elif len(item) >= 2 and item[-1].kind in ("ident", "qident") and item[-2].text == ")":
        alias = item[-1].value
        expr = item[:-1]
    typ: SqlType | None = None
    nullable = True
    if len(expr) == 1:
        t = expr[0]
        if t.kind in ("str", "num"):
            typ, nullable = _literal_type(t), False
        elif t.is_kw("NULL"):
            typ = SqlType("int")
        elif t.kind == "sysvar":
            typ = _SYSVAR_TYPES.get(t.text.upper(), SqlType("int"))
            nullable = t.text.upper() != "@@IDENTITY"
        elif t.kind == "var":
            typ = var_types.get(t.text[1:].lower())
        elif t.is_kw("CURRENT_TIMESTAMP"):
            typ = SqlType("datetime")
        elif t.kind in ("ident", "qident"):
            return ItemInfo(alias, None)
    elif len(expr) == 2 and expr[0].text == "-" and expr[1].kind == "num":
        typ, nullable = _literal_type(expr[1]), False
    elif len(expr) >= 3 and expr[0].kind in ("ident", "qident") and expr[1].text == "." and len(expr) == 3:
        return ItemInfo(alias, None)
    elif len(expr) >= 3 and expr[0].kind == "ident" and expr[1].text == "(" and expr[-1].text == ")" \
            and _match_paren(expr, 1) == len(expr) - 1:
        fn = expr[0].upper
        if fn in ("CAST", "TRY_CAST"):
            depth = 0
            for k, tok in enumerate(expr[2:-1]):
                if tok.text == "(":
                    depth += 1
                elif tok.text == ")":
                    depth -= 1
                elif depth == 0 and tok.is_kw("AS"):
                    typ = _type_of(expr[2 + k + 1 : -1], 30)
        elif fn in ("CONVERT", "TRY_CONVERT"):
            k = 2
            depth = 0
            while k < len(expr) - 1 and not (expr[k].text == "," and expr[k].kind == "op" and depth == 0):
                depth += expr[k].text == "("
                depth -= expr[k].text == ")"
                k += 1
            typ = _type_of(expr[2:k], 30)
        else:
            typ = _FUNC_TYPES.get(fn)
            if fn in ("COUNT", "COUNT_BIG", "GETDATE", "SYSDATETIME", "NEWID", "SYSDATETIMEOFFSET", "GETUTCDATE",
                      "SYSUTCDATETIME"):
                nullable = False
    return ItemInfo(alias if alias is not None else "", typ, nullable)
