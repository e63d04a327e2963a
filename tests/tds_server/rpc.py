"""RPC requests (MS-TDS 2.2.6.6): parsing the request (ALL_HEADERS already
removed) into procedure calls with typed parameters, and running the system
procedures sp_executesql, sp_prepare, sp_execute, sp_prepexec, sp_unprepare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from . import engine as E
from .errors import SqlError
from .types import INT, WireType, coerce, parse_declared_type, read_type_info, read_value, wire_type_for
from .wire import Reader

# Well-known procedure ids (ProcID form of NameLenProcID).
SP_CURSOR = 1
SP_CURSOROPEN = 2
SP_CURSORPREPARE = 3
SP_CURSOREXECUTE = 4
SP_CURSORPREPEXEC = 5
SP_CURSORUNPREPARE = 6
SP_CURSORFETCH = 7
SP_CURSOROPTION = 8
SP_CURSORCLOSE = 9
SP_EXECUTESQL = 10
SP_PREPARE = 11
SP_EXECUTE = 12
SP_PREPEXEC = 13
SP_PREPEXECRPC = 14
SP_UNPREPARE = 15

PROC_NAMES = {
    SP_CURSOR: "sp_cursor", SP_CURSOROPEN: "sp_cursoropen", SP_CURSORPREPARE: "sp_cursorprepare",
    SP_CURSOREXECUTE: "sp_cursorexecute", SP_CURSORPREPEXEC: "sp_cursorprepexec",
    SP_CURSORUNPREPARE: "sp_cursorunprepare", SP_CURSORFETCH: "sp_cursorfetch", SP_CURSOROPTION: "sp_cursoroption",
    SP_CURSORCLOSE: "sp_cursorclose", SP_EXECUTESQL: "sp_executesql", SP_PREPARE: "sp_prepare",
    SP_EXECUTE: "sp_execute", SP_PREPEXEC: "sp_prepexec", SP_PREPEXECRPC: "sp_prepexecrpc",
    SP_UNPREPARE: "sp_unprepare",
}

BATCH_FLAGS = (0x80, 0xFF, 0xFE)
STATUS_BYREF = 0x01
STATUS_DEFAULT = 0x02


@dataclass
class Param:
    name: str  # without '@'; may be empty (positional)
    status: int
    wire: WireType
    value: object

    @property
    def output(self) -> bool:
        return bool(self.status & STATUS_BYREF)


@dataclass
class Call:
    proc: str  # lower-case name
    options: int
    params: list[Param] = field(default_factory=list)


def parse_rpc(payload: bytes, pos: int) -> list[Call]:
    r = Reader(payload, pos)
    calls: list[Call] = []
    while not r.at_end():
        n = r.u16()
        if n == 0xFFFF:
            pid = r.u16()
            proc = PROC_NAMES.get(pid, f"#{pid}")
        else:
            proc = r.ucs2(n).lower()
            if proc.startswith("sys.") or proc.startswith("dbo."):
                proc = proc.split(".", 1)[1]
        call = Call(proc, r.u16())
        while not r.at_end() and r.peek_u8() not in BATCH_FLAGS:
            name = r.b_varchar()
            status = r.u8()
            wire = read_type_info(r)
            value = read_value(r, wire, in_row=False)
            call.params.append(Param(name.lstrip("@"), status, wire, value))
        calls.append(call)
        if not r.at_end():
            r.u8()  # batch flag
    return calls


def _declared(decl: str) -> list[tuple[str, str]]:
    """'@P1 int, @P2 nvarchar(10) OUTPUT' -> [('P1', 'int'), ('P2', 'nvarchar(10)')]."""
    names: list[tuple[str, str]] = []
    depth = 0
    current = ""
    for ch in decl + ",":
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            word = current.strip().split()
            if word:
                type_words = [w for w in word[1:] if w.upper() not in ("OUTPUT", "OUT")]
                names.append((word[0].lstrip("@"), " ".join(type_words)))
            current = ""
        else:
            current += ch
    return names


def _text(p: Param | None) -> str:
    if p is None or p.value is None:
        return ""
    return p.value if isinstance(p.value, str) else str(p.value)


def bind_params(decl: str, values: list[Param]) -> dict[str, E.Variable]:
    """Each value converted to the type its @params declaration gives, as
    SQL Server converts a parameter whose wire type differs (a datetime2 sent
    for a date, an nvarchar for a uniqueidentifier)."""
    declared = _declared(decl)
    types = {name.lower(): parse_declared_type(text) for name, text in declared}
    out: dict[str, E.Variable] = {}
    for i, p in enumerate(values):
        name = (p.name or (declared[i][0] if i < len(declared) else f"P{i + 1}")).lstrip("@").lower()
        typ = types.get(name)
        if typ is None or typ.name == p.wire.sql_type().name:
            out[name] = E.Variable(p.wire.sql_type(), p.value)
        else:
            out[name] = E.Variable(typ, coerce(typ, p.value))
    return out


@dataclass
class ProcOutcome:
    """What the session sends after a procedure's statements."""

    return_status: int = 0
    return_values: list[tuple[int, str, WireType, object]] = field(default_factory=list)


def run_call(engine: E.Engine, call: Call, outcome: ProcOutcome) -> Iterator[E.Event]:
    """Events of one procedure call; fills ``outcome`` (status and OUTPUT values)."""
    p = call.params
    name = call.proc
    if name == "sp_executesql":
        if not p:
            raise SqlError(201, "Procedure or function 'sp_executesql' expects parameter '@statement', "
                           "which was not supplied.", state=4)
        stmt = _text(p[0])
        decl = _text(p[1]) if len(p) > 1 else ""
        values = p[2:]
        params = bind_params(decl, values)
        yield from engine.run_batch(stmt, params, proc="")
        _collect_outputs(values, params, outcome, first_ordinal=2)
        return
    if name in ("sp_prepare", "sp_prepexec"):
        if len(p) < 3:
            raise SqlError(201, f"Procedure or function '{name}' expects parameter '@stmt', which was not supplied.",
                           state=4)
        decl, stmt = _text(p[1]), _text(p[2])
        handle = engine.next_handle
        engine.next_handle += 1
        engine.prepared[handle] = (decl, stmt)
        if name == "sp_prepexec":
            values = p[3:]
            params = bind_params(decl, values)
            yield from engine.run_batch(stmt, params, proc="")
            outcome.return_values.append((0, p[0].name, wire_type_for(INT), handle))
            _collect_outputs(values, params, outcome, first_ordinal=3)
        else:
            outcome.return_values.append((0, p[0].name, wire_type_for(INT), handle))
        return
    if name == "sp_execute":
        if not p:
            raise SqlError(201, "Procedure or function 'sp_execute' expects parameter '@handle'.", state=4)
        handle = p[0].value
        if handle not in engine.prepared:
            raise SqlError(8179, f"Could not find prepared statement with handle {handle}.", state=4)
        decl, stmt = engine.prepared[handle]  # type: ignore[index]
        values = p[1:]
        params = bind_params(decl, values)
        yield from engine.run_batch(stmt, params, proc="")
        _collect_outputs(values, params, outcome, first_ordinal=1)
        return
    if name == "sp_unprepare":
        handle = p[0].value if p else None
        if engine.prepared.pop(handle, None) is None:  # type: ignore[arg-type]
            raise SqlError(8179, f"Could not find prepared statement with handle {handle}.", state=4)
        return
    raise SqlError(2812, f"Could not find stored procedure '{name}'.", state=62)
    yield  # pragma: no cover


def _collect_outputs(values: list[Param], params: dict[str, E.Variable], outcome: ProcOutcome,
                     first_ordinal: int) -> None:
    names = list(params)
    for i, p in enumerate(values):
        if not p.output:
            continue
        var = params[names[i]]
        outcome.return_values.append((first_ordinal + i, p.name, p.wire, var.value))
