"""SQL Server errors the server reports (ERROR tokens), and the mapping of
sqlite's exceptions onto SQL Server error numbers."""

from __future__ import annotations

import re
import sqlite3


class SqlError(Exception):
    """An error to send to the client as an ERROR token.

    ``aborts_batch``: SQL Server stops the rest of the batch (compile errors,
    deadlocks, ...); otherwise only the statement fails and the batch goes on.
    ``rolls_back``: the server also ends the open transaction (deadlock).
    """

    def __init__(
        self,
        number: int,
        message: str,
        *,
        severity: int = 16,
        state: int = 1,
        aborts_batch: bool = True,
        rolls_back: bool = False,
    ) -> None:
        super().__init__(f"Msg {number}, Level {severity}, State {state}: {message}")
        self.number = number
        self.message = message
        self.severity = severity
        self.state = state
        self.aborts_batch = aborts_batch
        self.rolls_back = rolls_back


def syntax_error(near: str) -> SqlError:
    return SqlError(102, f"Incorrect syntax near '{near}'.", state=1)


def invalid_object(name: str) -> SqlError:
    return SqlError(208, f"Invalid object name '{name}'.", state=1)


def conversion_failed(value: object, from_type: str, to_type: str) -> SqlError:
    if to_type in ("date", "time", "datetime", "datetime2", "smalldatetime", "datetimeoffset"):
        return SqlError(241, "Conversion failed when converting date and/or time from character string.", aborts_batch=False)
    if to_type == "uniqueidentifier":
        return SqlError(8169, "Conversion failed when converting from a character string to uniqueidentifier.", aborts_batch=False)
    return SqlError(245, f"Conversion failed when converting the {from_type} value '{value}' to data type {to_type}.", aborts_batch=False)


def overflow(to_type: str, value: object | None = None) -> SqlError:
    if value is not None and to_type in ("tinyint", "smallint", "int", "bigint"):
        return SqlError(220, f"Arithmetic overflow error for data type {to_type}, value = {value}.", aborts_batch=False)
    return SqlError(8115, f"Arithmetic overflow error converting expression to data type {to_type}.", aborts_batch=False)


def truncation(table: str, column: str, value: str | None = None) -> SqlError:
    shown = f" Truncated value: '{value[:40]}'." if value is not None else ""
    return SqlError(
        2628,
        f"String or binary data would be truncated in table '{table}', column '{column}'.{shown}",
        state=1,
        aborts_batch=False,
    )


def read_only_database(database: str) -> SqlError:
    return SqlError(3906, f'Failed to update database "{database}" because the database is read-only.',
                    severity=16, state=1)


def deadlock(spid: int) -> SqlError:
    return SqlError(
        1205,
        f"Transaction (Process ID {spid}) was deadlocked on lock resources with another process "
        "and has been chosen as the deadlock victim. Rerun the transaction.",
        severity=13,
        state=51,
        rolls_back=True,
    )


def login_failed(user: str, state: int = 8) -> SqlError:
    return SqlError(18456, f"Login failed for user '{user}'.", severity=14, state=state)


# Constraint names the SQL translation adds to CREATE TABLE (sql.py):
#   tds_len__<column>  length check of char/binary(n)   -> 2628
#   tds_rng__<column>  range check of integer/decimal    -> 8115
LENGTH_CHECK_PREFIX = "tds_len__"
RANGE_CHECK_PREFIX = "tds_rng__"

_NEAR = re.compile(r'near "(.*?)": syntax error', re.S)
_NO_TABLE = re.compile(r"no such table: (?:\w+\.)?(.+)")
_NO_COLUMN = re.compile(r"no such column: (.+)")
_UNIQUE = re.compile(r"UNIQUE constraint failed: ([^.,\s]+)\.(\S+)")
_NOT_NULL = re.compile(r"NOT NULL constraint failed: ([^.,\s]+)\.(\S+)")
_CHECK = re.compile(r"CHECK constraint failed: (.+)")
_EXISTS = re.compile(r"(?:table|index|view|trigger) (\S+) already exists")


def from_sqlite(exc: sqlite3.Error, database: str, statement_kind: str = "INSERT") -> SqlError:
    """A sqlite3 exception as the SQL Server error a client would see."""
    msg = str(exc)
    m = _NEAR.search(msg)
    if m:
        return syntax_error(m.group(1))
    if "incomplete input" in msg or "unrecognized token" in msg:
        near = msg.split(":", 1)[-1].strip().strip('"') if "unrecognized token" in msg else ""
        return syntax_error(near)
    m = _NO_TABLE.search(msg)
    if m:
        return invalid_object(m.group(1))
    m = _NO_COLUMN.search(msg)
    if m:
        col = m.group(1).split(".")[-1]
        return SqlError(207, f"Invalid column name '{col}'.", state=1)
    m = _UNIQUE.search(msg)
    if m:
        table = m.group(1)
        return SqlError(
            2627,
            f"Violation of PRIMARY KEY or UNIQUE KEY constraint 'PK_{table}'. Cannot insert duplicate key "
            f"in object 'dbo.{table}'. The duplicate key value is (...).",
            severity=14,
            state=1,
            aborts_batch=False,
        )
    if "PRIMARY KEY must be unique" in msg:
        return SqlError(2627, "Violation of PRIMARY KEY constraint.", severity=14, aborts_batch=False)
    m = _NOT_NULL.search(msg)
    if m:
        return SqlError(
            515,
            f"Cannot insert the value NULL into column '{m.group(2)}', table '{database}.dbo.{m.group(1)}'; "
            f"column does not allow nulls. {statement_kind} fails.",
            state=2,
            aborts_batch=False,
        )
    m = _CHECK.search(msg)
    if m:
        name = m.group(1).strip()
        if name.startswith(LENGTH_CHECK_PREFIX):
            table, _, column = name[len(LENGTH_CHECK_PREFIX) :].partition("/")
            return truncation(f"{database}.dbo.{table}", column.rsplit("/", 1)[0])
        if name.startswith(RANGE_CHECK_PREFIX):
            type_name = name.rsplit("/", 1)[-1]
            return SqlError(8115, f"Arithmetic overflow error converting expression to data type {type_name}.",
                            aborts_batch=False)
        return SqlError(
            547,
            f"The {statement_kind} statement conflicted with the CHECK constraint \"{name}\". "
            f"The conflict occurred in database \"{database}\".",
            state=0,
            aborts_batch=False,
        )
    if "FOREIGN KEY constraint failed" in msg:
        return SqlError(
            547,
            f"The {statement_kind} statement conflicted with the FOREIGN KEY constraint. "
            f"The conflict occurred in database \"{database}\".",
            state=0,
            aborts_batch=False,
        )
    m = _EXISTS.search(msg)
    if m:
        return SqlError(2714, f"There is already an object named '{m.group(1)}' in the database.", state=6)
    if "integer overflow" in msg:
        return SqlError(8115, "Arithmetic overflow error converting expression to data type bigint.", aborts_batch=False)
    if "database is locked" in msg or "database table is locked" in msg:
        return SqlError(1222, "Lock request time out period exceeded.", state=51)
    if "interrupted" in msg:
        return SqlError(3617, "Query was cancelled.", severity=25)
    if "no such function" in msg:
        fn = msg.split(":", 1)[-1].strip()
        return SqlError(195, f"'{fn}' is not a recognized built-in function name.", state=10)
    if "misuse of aggregate" in msg or "wrong number of arguments" in msg:
        return SqlError(174, msg)
    return SqlError(50000, f"sqlite: {msg}")
