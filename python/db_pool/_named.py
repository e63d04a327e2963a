"""Named parameters for engines whose protocol has only positional ones
(MySQL's ``?``): ``:name`` in the SQL becomes ``?`` and a dict of values
becomes the list in that order. The one place this mapping is done
(docs/mysql.md). Quoted strings, quoted identifiers and comments are left
alone, so ``':x'`` in a literal is text, not a parameter."""

from __future__ import annotations

import re
from typing import Any, Mapping

from .errors import ProgrammingError

# what to skip whole: '...', "..." (backslash escapes, doubled quotes), `...`,
# -- comments (MySQL wants a space after them), # comments, /* ... */
_SKIP = r"""'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`(?:[^`]|``)*`|--\s[^\n]*|#[^\n]*|/\*.*?\*/"""
_TOKEN = re.compile(rf"({_SKIP})|(?<![:\w]):([A-Za-z_]\w*)", re.DOTALL)


def _rewrite(sql: str) -> tuple[str, list[str]]:
    """The SQL with each :name as ?, and the names in order."""
    names: list[str] = []

    def swap(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return m.group(1)
        names.append(m.group(2))
        return "?"

    return _TOKEN.sub(swap, sql), names


def _values(names: list[str], row: Mapping[str, Any]) -> list[Any]:
    missing = [n for n in dict.fromkeys(names) if n not in row]
    if missing:
        raise ProgrammingError(f"no value for :{missing[0]} (the parameters are "
                               f"{', '.join(sorted(map(str, row))) or 'empty'})")
    unused = [k for k in row if k not in names]
    if unused:
        raise ProgrammingError(f"parameter {unused[0]!r} is not in the statement as :{unused[0]}")
    return [row[n] for n in names]


def positional(sql: str, params: Any, many: bool) -> tuple[str, Any]:
    """(sql, params) with named parameters made positional; positional ones
    (a sequence, or rows of sequences) go through unchanged."""
    if params is None:
        return sql, params
    if not many:
        if not isinstance(params, Mapping):
            return sql, params
        text, names = _rewrite(sql)
        return text, _values(names, params)
    rows = params if isinstance(params, (list, tuple)) else list(params)
    if not rows or not isinstance(rows[0], Mapping):
        return sql, rows
    text, names = _rewrite(sql)
    out: list[Any] = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise ProgrammingError("execute_many rows must all be dicts or all be sequences")
        out.append(_values(names, row))
    return text, out
