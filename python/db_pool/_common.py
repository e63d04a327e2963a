"""What the async and sync pools share: turning create_pool arguments into
native settings and options, and native results into DataFrames."""

from __future__ import annotations

import logging
from typing import Any, Literal, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

import polars as pl

from . import _native
from .errors import ConfigurationError, PoolClosed, PoolNotFound

#: Pool options (times in seconds); every other keyword is an engine setting.
POOL_OPTIONS = frozenset(
    {
        "min_size",
        "max_size",
        "max_waiting",
        "acquire_timeout",
        "idle_timeout",
        "max_lifetime",
        "lifetime_jitter",
        "validate_after",
    }
)

#: Names users may give for each engine, mapped to the native engine name.
ENGINE_ALIASES = {
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "pg": "postgresql",
    "mssql": "mssql",
    "sqlserver": "mssql",
}

DEFAULT_BATCH_ROWS = 65_536

#: How query() and stream() read rows where the engine has a bulk path
#: (PostgreSQL: COPY ... TO STDOUT (FORMAT binary)).
CopyMode = Literal["auto"] | bool

_COPY_MODES = {"auto": _native.COPY_AUTO, True: _native.COPY_ALWAYS, False: _native.COPY_NEVER}

_ISOLATION_LEVELS = ("read uncommitted", "read committed", "repeatable read", "serializable")

logger = logging.getLogger("db_pool")

_NOTICE_LEVELS = {
    "DEBUG": logging.DEBUG,
    "LOG": logging.INFO,
    "INFO": logging.INFO,
    "NOTICE": logging.INFO,
    "WARNING": logging.WARNING,
}


def copy_mode(copy: CopyMode) -> int:
    try:
        return _COPY_MODES[copy]
    except (KeyError, TypeError):
        raise ValueError(f"copy must be 'auto', True or False, not {copy!r}") from None


def log_notices(req: _native.Request) -> None:
    """Sends the engine's messages (PostgreSQL NOTICEs) to logging."""
    for line in req.notices():
        severity, _, text = line.partition(": ")
        logger.log(_NOTICE_LEVELS.get(severity, logging.WARNING), "%s: %s", severity, text)


def begin_options(engine: str, begin: str, isolation: str | None, readonly: bool) -> str:
    """The engine's BEGIN options for transaction()."""
    if isolation is None and not readonly:
        return begin
    if engine == "mssql":
        if readonly:
            raise ConfigurationError("mssql transactions take no readonly option")
        if begin:
            raise ConfigurationError("give either begin= or isolation=, not both")
        levels = _ISOLATION_LEVELS + ("snapshot",)
        if isolation is None or isolation.lower() not in levels:
            raise ConfigurationError(f"isolation must be one of {', '.join(levels)}; got {isolation!r}")
        return f"ISOLATION LEVEL {isolation.upper()}"
    if engine != "postgresql":
        raise ConfigurationError(f"{engine} transactions take no isolation or readonly option")
    if begin:
        raise ConfigurationError("give either begin= or isolation=/readonly=, not both")
    parts = []
    if isolation is not None:
        if isolation.lower() not in _ISOLATION_LEVELS:
            raise ConfigurationError(
                f"isolation must be one of {', '.join(_ISOLATION_LEVELS)}; got {isolation!r}"
            )
        parts.append(f"ISOLATION LEVEL {isolation.upper()}")
    if readonly:
        parts.append("READ ONLY")
    return ", ".join(parts)


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _engine(db_type: str) -> str:
    engine = ENGINE_ALIASES.get(db_type.lower())
    if engine is None:
        known = ", ".join(sorted(_native.engines()))
        raise ConfigurationError(f"unknown db_type {db_type!r}; this build supports: {known}")
    return engine


def _parse_url(url: str) -> tuple[str, dict[str, str]]:
    """Splits a database URL into its engine and settings."""
    parts = urlsplit(url)
    if not parts.scheme:
        raise ConfigurationError("the url needs a scheme such as sqlite:///path/to/file.db")
    engine = _engine(parts.scheme)
    if engine == "postgresql":
        return engine, {"dsn": url}  # libpq parses its own URIs, multi-host included
    settings = dict(parse_qsl(parts.query, keep_blank_values=True))
    if engine == "mssql":
        return engine, _mssql_url_settings(parts.netloc, parts.path, settings)
    if engine == "sqlite":
        if parts.netloc:
            raise ConfigurationError(
                "sqlite URLs have no host: use sqlite:///relative.db, "
                "sqlite:////absolute/path.db or sqlite:///:memory:"
            )
        path = unquote(parts.path)
        settings["database"] = path[1:] if path.startswith("/") else path
        if not settings["database"]:
            settings["database"] = ":memory:"
    return engine, settings


def _mssql_url_settings(netloc: str, path: str, settings: dict[str, str]) -> dict[str, str]:
    """mssql://user:password@host:port/database?setting=value (parts
    percent-encoded; ?instance=NAME for a named instance)."""
    userinfo, _, hostport = netloc.rpartition("@")
    if userinfo:
        user, colon, password = userinfo.partition(":")
        settings["user"] = unquote(user)
        if colon:
            settings["password"] = unquote(password)
    if hostport.startswith("["):  # [IPv6]:port
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    if host:
        settings["host"] = unquote(host)
    if port:
        if not port.isdigit():
            raise ConfigurationError(f"the mssql url's port must be a number, not {port!r}")
        settings["port"] = port
    database = unquote(path[1:] if path.startswith("/") else path)
    if database:
        settings["database"] = database
    return settings


def pool_arguments(
    db_type: str | None,
    host: str | None,
    port: int | None,
    database: str | None,
    username: str | None,
    password: str | None,
    url: str | None,
    pool_options: Mapping[str, Any],
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Returns (engine, settings, options) for Manager.create_pool."""
    if url is not None:
        engine, settings = _parse_url(url)
        if db_type is not None and _engine(db_type) != engine:
            raise ConfigurationError(f"db_type {db_type!r} disagrees with the url's scheme")
    elif db_type is not None:
        engine, settings = _engine(db_type), {}
    else:
        raise ConfigurationError("create_pool needs a db_type or a url")
    for key, value in (
        ("host", host),
        ("port", port),
        ("database", database),
        ("user", username),
        ("password", password),
    ):
        if value is not None:
            settings[key] = _setting_text(value)
    options: dict[str, Any] = {}
    for key, value in pool_options.items():
        if key in POOL_OPTIONS:
            options[key] = value
        else:
            settings[key] = _setting_text(value)
    return engine, settings, options


def frame(req: _native.Request) -> pl.DataFrame:
    """The rows of a finished query request as a DataFrame."""
    return pl.DataFrame(req.result())


class PoolRegistry:
    """The bookkeeping both pool classes share: the native manager and which
    pool ids exist or were closed (to tell PoolClosed from PoolNotFound)."""

    def __init__(self) -> None:
        self._native: _native.Manager | None = _native.Manager()
        self._engines: dict[str, str] = {}
        self._closed_ids: set[str] = set()

    def __repr__(self) -> str:
        state = "closed" if self._native is None else f"pools={sorted(self._engines)}"
        return f"<{type(self).__name__} {state}>"

    def _manager(self) -> _native.Manager:
        if self._native is None:
            raise PoolClosed(f"the {type(self).__name__} is closed")
        return self._native

    def _engine(self, pool_id: str) -> str:
        engine = self._engines.get(pool_id)
        if engine is None:
            if pool_id in self._closed_ids:
                raise PoolClosed(f"pool {pool_id!r} was closed")
            raise PoolNotFound(f"no pool named {pool_id!r}")
        return engine

    def _registered(self, pool_id: str, engine: str) -> None:
        self._engines[pool_id] = engine
        self._closed_ids.discard(pool_id)

    def _forget(self, pool_id: str | None = None) -> None:
        ids = [pool_id] if pool_id is not None else list(self._engines)
        for i in ids:
            self._engines.pop(i, None)
            self._closed_ids.add(i)

    def list_pools(self) -> list[str]:
        """Names of the open pools."""
        return self._manager().list_pools()

    def stats(self, pool_id: str) -> dict[str, Any]:
        """Connections (size, idle, in_use, opening, waiting) and counters
        (acquired, timeouts, rejected, created, closed, requests, errors,
        cancelled, ...) of one pool."""
        self._engine(pool_id)
        return self._manager().stats(pool_id)
