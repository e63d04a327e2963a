"""Exceptions raised by db_pool: the PEP 249 hierarchy plus pool errors.

Every exception carries the same attributes, ``None`` where they do not
apply:

- ``engine``: the engine that raised it ("sqlite", ...).
- ``code``: the engine's own error code (SQLite's extended result code, ...).
- ``sqlstate``: the five-character SQLSTATE; engines without SQLSTATEs get one
  derived from their error code (documented per engine).
- ``category``: the library's error category ("server", "timeout", ...).
- ``detail``, ``hint``: the engine's DETAIL and HINT fields (PostgreSQL).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "Warning",
    "Error",
    "InterfaceError",
    "DatabaseError",
    "DataError",
    "OperationalError",
    "AuthenticationError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
    "PoolError",
    "PoolTimeout",
    "PoolFull",
    "PoolClosed",
    "PoolNotFound",
    "PoolExists",
    "QueryCancelled",
    "QueryTimeout",
    "NoEndpointAvailable",
    "OutcomeUnknown",
    "TimeoutOutcomeUnknown",
    "ConfigurationError",
    "ConfigProblem",
    "ResponseError",
    "WrongTypeError",
    "ReadOnlyError",
    "BusyError",
    "LoadingError",
    "OutOfMemoryError",
    "NoScriptError",
    "ResponseAuthError",
    "WatchError",
]


class Warning(Exception):  # noqa: A001 - the PEP 249 name
    """Important warnings such as data truncation (PEP 249)."""


class Error(Exception):
    """Base class of every db_pool error (PEP 249)."""

    engine: str | None = None
    code: int | None = None
    sqlstate: str | None = None
    category: str | None = None
    detail: str | None = None
    hint: str | None = None


class InterfaceError(Error):
    """Misuse of the library's interface rather than a database problem."""


class DatabaseError(Error):
    """An error reported by or about the database."""


class DataError(DatabaseError):
    """A value cannot be represented exactly (out of range, wrong type)."""


class OperationalError(DatabaseError):
    """The database's operation failed: lost connection, locks, timeouts."""


class AuthenticationError(OperationalError):
    """The server refused the credentials: wrong password, unknown login or
    role, or a login the server does not allow (category "auth"; SQLSTATE
    class 28, MSSQL error 18456). An unknown database or an unreachable
    host is a plain ``OperationalError``."""


class IntegrityError(DatabaseError):
    """A constraint was violated (SQLSTATE class 23)."""


class InternalError(DatabaseError):
    """The database reports an internal error."""


class ProgrammingError(DatabaseError):
    """Invalid SQL, unknown table, wrong number or type of parameters."""


class NotSupportedError(DatabaseError):
    """The database does not support the requested operation."""


class PoolError(InterfaceError):
    """A problem with the pools themselves rather than a statement."""


class PoolTimeout(OperationalError, TimeoutError):
    """No connection became free within ``acquire_timeout``."""


class PoolFull(OperationalError):
    """Too many callers are already waiting (``max_waiting``)."""


class PoolClosed(PoolError):
    """The pool or the manager was closed."""


class PoolNotFound(PoolError, KeyError):
    """No pool has that ``pool_id``."""

    def __str__(self) -> str:  # KeyError would add quotes
        return str(self.args[0]) if self.args else ""


class PoolExists(PoolError):
    """A pool with that ``pool_id`` exists already."""


class QueryCancelled(OperationalError):
    """The statement was cancelled before it finished."""


class QueryTimeout(OperationalError, TimeoutError):
    """The call's deadline (``timeout=`` or the pool's ``query_timeout``)
    passed: the statement was cancelled on the server, or, if it was still
    waiting for a connection, never sent (SQLSTATE 57014). A server-side
    ``statement_timeout`` raises it too."""


class NoEndpointAvailable(OperationalError):
    """No endpoint of the pool in the role the call needs (the primary for
    writes) came up within ``failover_timeout``; the message lists each
    endpoint's state."""


class OutcomeUnknown(OperationalError):
    """The connection broke after a write was sent: it may or may not have
    been committed. It is never retried automatically; check before
    repeating it (SQLSTATE 08007)."""


class TimeoutOutcomeUnknown(QueryTimeout, OutcomeUnknown):
    """A write passed its deadline and the server had not confirmed the
    cancel when the caller had to be answered: it may or may not take
    effect (SQLSTATE 08007). Caught by ``except QueryTimeout`` and by
    ``except OutcomeUnknown`` alike."""


class ConfigProblem(NamedTuple):
    """One problem in a configuration: where (``pools.orders.port``, or an
    environment variable's name) and what is wrong. Never holds a secret."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigurationError(InterfaceError, ValueError):
    """Invalid pool configuration: unknown engine or setting, bad value.

    A configuration checked as a whole (from_config, from_env) reports every
    problem at once: the message lists them and ``problems`` holds them."""

    problems: tuple[ConfigProblem, ...] = ()


class ResponseError(DatabaseError):
    """An error reply of a key-value engine (Redis ``-ERR ...``): ``prefix``
    is its first word ("ERR", "WRONGTYPE", ...), the message the server's
    whole text. In ``pipeline()`` results the failed command's slot holds
    this exception instead of a value."""

    engine = "redis"
    category = "server"
    prefix: str = ""


class WrongTypeError(ResponseError, ProgrammingError):
    """The key holds another kind of value (``WRONGTYPE``)."""


class ReadOnlyError(ResponseError, OperationalError):
    """A write reached a replica (``READONLY``)."""


class BusyError(ResponseError, OperationalError):
    """The server is busy running a script (``BUSY``)."""


class LoadingError(ResponseError, OperationalError):
    """The server is loading its dataset into memory (``LOADING``)."""


class OutOfMemoryError(ResponseError, OperationalError):
    """The server is over ``maxmemory`` and refuses writes (``OOM``)."""


class NoScriptError(ResponseError, ProgrammingError):
    """No script with that SHA1 (``NOSCRIPT``)."""


class ResponseAuthError(ResponseError, AuthenticationError):
    """Not logged in or not allowed (``NOAUTH``, ``WRONGPASS``, ``NOPERM``)."""


class WatchError(OperationalError):
    """A Redis transaction was not run: a key it WATCHed changed after the
    WATCH (EXEC answered nil). Nothing of it ran; read again and retry."""

    engine = "redis"
    category = "conflict"


_RESPONSE_CLASSES: dict[str, type[ResponseError]] = {
    "WRONGTYPE": WrongTypeError,
    "READONLY": ReadOnlyError,
    "BUSY": BusyError,
    "LOADING": LoadingError,
    "OOM": OutOfMemoryError,
    "NOSCRIPT": NoScriptError,
    "NOAUTH": ResponseAuthError,
    "WRONGPASS": ResponseAuthError,
    "NOPERM": ResponseAuthError,
}


def _response_error(text: str) -> ResponseError:
    """The exception for a server's error reply (the C binding calls this)."""
    prefix = text.split(" ", 1)[0]
    exc = _RESPONSE_CLASSES.get(prefix, ResponseError)(text)
    exc.prefix = prefix
    return exc
