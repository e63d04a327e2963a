"""What the async and sync pools share: turning create_pool arguments into
native settings and options, and native results into DataFrames."""

from __future__ import annotations

import collections
import logging
import math
import numbers
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence
from urllib.parse import parse_qsl, quote, unquote, unquote_to_bytes

import polars as pl

from . import _alerts, _config_keys, _metrics, _native, _serve, _tls
from .errors import ConfigurationError, PoolClosed, PoolNotFound, ProgrammingError, QueryTimeout

if TYPE_CHECKING:
    from ._config_model import PoolConfig
    from ._reload import ConfigWatcher

#: Pool options (times in seconds); every other keyword is an engine setting.
#: Derived from the configuration's key table (_config_keys.py).
POOL_OPTIONS = frozenset(k.name for k in _config_keys.POOL_KEYS) - _config_keys.WATCH_OPTIONS

#: Pool options that are times in seconds, and what each accepts: "zero"
#: (0 or more; 0 often means "no limit"), "positive" (more than 0), or
#: "any" (validate_after: negative means never).
_TIME_OPTIONS = {
    k.name: "positive" if k.low_open or (k.low or 0) > 0 else "any" if (k.low or 0) < 0 else "zero"
    for k in _config_keys.POOL_KEYS
    if k.kind == "seconds" and k.name not in _config_keys.WATCH_OPTIONS
}

#: connect_timeout when not given (the C library's default too).
DEFAULT_CONNECT_TIMEOUT = 10.0

#: The longest time any option or timeout= takes: ten years.
MAX_SECONDS = _config_keys.MAX_SECONDS

#: read_from= values: where reads go in a pool with several endpoints.
_READ_FROM = {"primary": 0, "replicas": 1, "any": 2}
#: balance= values: how reads spread over the endpoints that fit.
_BALANCE = {"round_robin": 0, "least_busy": 1}
#: reset_on_release= values: when a released connection's session is reset.
_RESET = {"auto": 0, "always": 1, "never": 2}

#: Names users may give for each engine, mapped to the native engine name.
ENGINE_ALIASES = _config_keys.ENGINE_ALIASES

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


def seconds(name: str, value: object, accepts: str = "positive") -> float:
    """Checks a time in seconds (see _TIME_OPTIONS for ``accepts``): a real
    number, not a bool or a string, finite and at most MAX_SECONDS. Raises
    ConfigurationError (a ValueError) naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}")
    v = float(value)
    if not math.isfinite(v) or v > MAX_SECONDS:
        raise ConfigurationError(
            f"{name} must be a finite number of seconds up to {MAX_SECONDS}, not {value!r}"
        )
    if accepts == "zero" and v < 0:
        raise ConfigurationError(f"{name} must be 0 or more seconds, not {value!r}")
    if accepts == "positive" and v <= 0:
        raise ConfigurationError(f"{name} must be more than 0 seconds, not {value!r}")
    return v


def call_timeout(timeout: float | None) -> float | None:
    """A call's ``timeout=``: None (the pool's query_timeout) or seconds > 0."""
    return None if timeout is None else seconds("timeout", timeout)


#: How long close() and close_pool() wait for running statements by default.
DEFAULT_CLOSE_TIMEOUT = 10.0


def close_timeout(timeout: float | None) -> float:
    """close()'s ``timeout=``: seconds, 0 or more (0: abandon at once)."""
    return DEFAULT_CLOSE_TIMEOUT if timeout is None else seconds("timeout", timeout, "zero")


def warn_abandoned(what: str, timeout: float) -> None:
    logger.warning(
        "%s is closed, but statements still stuck in their engine after %g s were abandoned: "
        "their callers got PoolClosed and their connections close when the engine returns",
        what,
        timeout,
    )


class StreamDeadline:
    """The deadline of a whole stream (or of a partitioned query): each of
    its requests gets what is left."""

    def __init__(self, timeout: float | None, what: str = "the stream") -> None:
        self._timeout = call_timeout(timeout)
        self._end = None if self._timeout is None else time.monotonic() + self._timeout
        self._what = what

    def left(self) -> float | None:
        if self._end is None:
            return None
        left = self._end - time.monotonic()
        if left <= 0:
            exc = QueryTimeout(f"{self._what} did not finish within timeout={self._timeout:g} s")
            exc.sqlstate, exc.category = "57014", "query-timeout"
            raise exc
        return left


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
    if engine == "redis" and (begin or isolation is not None or readonly):
        raise ConfigurationError("a redis transaction() takes no begin, isolation or readonly: "
                                 "it holds one connection for WATCH and "
                                 "pipeline(..., transaction=True)")
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
    if engine not in ("postgresql", "mysql"):
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


def _check_no_nul(settings: list[dict[str, str]]) -> None:
    """C strings end at a NUL byte: a setting holding one is refused, never
    cut short (the value is not shown: it may be a password)."""
    for ep in settings:
        for key, value in ep.items():
            if "\0" in key or "\0" in value:
                raise ConfigurationError(f"setting {key!r} contains a NUL byte")


def _engine(db_type: str) -> str:
    engine = ENGINE_ALIASES.get(db_type.lower())
    if engine is None:
        known = ", ".join(sorted(_native.engines()))
        raise ConfigurationError(f"unknown db_type {db_type!r}; this build supports: {known}")
    return engine


def _split_url(url: str) -> tuple[str, str | None, str, str]:
    """(scheme, credentials or None, host part, path and query) of
    ``scheme://[credentials@]hosts[/path][?query]``. The credentials end at
    the last "@" before the query, so a password may hold "/", ":" and "@"
    unencoded (an "@" in the database name must then be %40)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, sep, rest = url.partition(":")
        if not sep or not scheme:
            raise ConfigurationError("the url needs a scheme such as sqlite:///path/to/file.db")
        return scheme, None, "", rest
    at = rest.partition("?")[0].rfind("@")
    credentials = rest[:at] if at >= 0 else None
    rest = rest[at + 1:]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    return scheme, credentials, rest[:cut], rest[cut:]


def _encoded(part: str) -> str:
    """A URL part percent-encoded whole (escapes it had kept, byte for byte)."""
    return quote(unquote_to_bytes(part), safe="")


def _pg_url(url: str) -> str:
    """A postgresql:// URL with its user name and password percent-encoded:
    libpq reads an unencoded "/" or "@" in them as the start of the host
    or database, putting a piece of the password into its messages."""
    scheme, credentials, hosts, tail = _split_url(url)
    if credentials is None:
        return url
    user, colon, password = credentials.partition(":")
    encoded = _encoded(user) + (":" + _encoded(password) if colon else "")
    return f"{scheme}://{encoded}@{hosts}{tail}"


def _query_settings(query: str) -> dict[str, str]:
    """?key=value&... of a URL; keys are plain words (a misplaced piece of a
    password is refused without being shown)."""
    settings = dict(parse_qsl(query, keep_blank_values=True))
    for key in settings:
        if not key.replace("_", "").isalnum() or not key.isascii():
            raise ConfigurationError(
                "the url's query has a setting name that is not a word (not shown): "
                "percent-encode '?' and '#' in a password"
            )
    return settings


def _parse_url(url: str) -> tuple[str, dict[str, str]]:
    """Splits a database URL into its engine and settings. No message shows
    the URL: it may hold a password."""
    scheme, credentials, hosts, tail = _split_url(url)
    engine = _engine(scheme)
    if engine == "postgresql":
        return engine, {"dsn": url}  # libpq parses its URIs (pool_arguments encodes them)
    path, _, query = tail.partition("?")
    settings = _query_settings(query)
    if engine in ("mssql", "mysql"):
        return engine, _host_url_settings(engine, credentials, hosts, path, settings)
    if engine == "redis":
        from ._redis import url_settings

        return engine, url_settings(scheme.lower(), credentials, hosts, path, settings)
    if engine == "sqlite":
        if credentials is not None or hosts:
            raise ConfigurationError(
                "sqlite URLs have no host: use sqlite:///relative.db, "
                "sqlite:////absolute/path.db or sqlite:///:memory:"
            )
        path = unquote(path)
        settings["database"] = path[1:] if path.startswith("/") else path
        if not settings["database"]:
            settings["database"] = ":memory:"
    return engine, settings


def split_host_port(hostport: str) -> tuple[str, str]:
    """(host, port) of a URL's ``host:port`` or ``[IPv6]:port``; either may be ""."""
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    host, _, port = hostport.partition(":")
    return host, port


def _host_url_settings(
    engine: str, credentials: str | None, hostport: str, path: str, settings: dict[str, str]
) -> dict[str, str]:
    """mssql:// or mysql://user:password@host:port/database?setting=value
    (parts percent-encoded; mssql's ?instance=NAME for a named instance)."""
    if credentials is not None:
        user, colon, password = credentials.partition(":")
        settings["user"] = unquote(user)
        if colon:
            settings["password"] = unquote(password)
    if engine == "mysql" and "," in hostport:
        hostport = ""  # several hosts: one endpoint each (split_hosts)
    host, port = split_host_port(hostport)
    if host:
        settings["host"] = unquote(host)
    if port:
        if not port.isdigit():
            raise ConfigurationError(
                f"the {engine} url's port is not a number (not shown, in case it is a piece of a "
                "password: percent-encode '?' and '#' in one)"
            )
        settings["port"] = port
    database = unquote(path[1:] if path.startswith("/") else path)
    if database:
        settings["database"] = database
    return settings


def split_hosts(url: str) -> list[str]:
    """One URL per host of a multi-host PostgreSQL or MySQL URL
    (``postgresql://u:p@h1:5432,h2:5433/db`` gives two); other URLs as they are."""
    scheme, credentials, hosts, tail = _split_url(url)
    if "," not in hosts:
        return [url]
    userinfo = "" if credentials is None else credentials + "@"
    return [f"{scheme}://{userinfo}{host}{tail}" for host in hosts.split(",") if host]


def _endpoint_settings(endpoint: str | Mapping[str, Any], engine: str) -> dict[str, str]:
    if isinstance(endpoint, str):
        ep_engine, settings = _parse_url(endpoint)
        if ep_engine != engine:
            raise ConfigurationError(f"an endpoint URL is {ep_engine}, not {engine}")
        return settings
    if isinstance(endpoint, Mapping):
        return {str(k): _setting_text(v) for k, v in endpoint.items() if v is not None}
    raise ConfigurationError("each endpoint is a URL or a dict of settings such as host and port")


def _split_keyword_hosts(settings: dict[str, str]) -> list[dict[str, str]]:
    """host="h1,h2" (and port="p1,p2", or one port for all) as two endpoints."""
    hosts = settings["host"].split(",")
    ports = settings["port"].split(",") if "port" in settings else [""]
    if len(ports) not in (1, len(hosts)):
        raise ConfigurationError(f"{len(hosts)} hosts but {len(ports)} ports")
    out = []
    for i, host in enumerate(hosts):
        ep = dict(settings, host=host)
        port = ports[i if len(ports) > 1 else 0]
        if port:
            ep["port"] = port
        out.append(ep)
    return out


def pool_arguments(
    db_type: str | None,
    host: str | None,
    port: int | str | None,
    database: str | None,
    username: str | None,
    password: str | None,
    url: str | None,
    pool_options: Mapping[str, Any],
    endpoints: Sequence[str | Mapping[str, Any]] | None = None,
) -> tuple[str, list[dict[str, str]], dict[str, Any]]:
    """Returns (engine, one settings dict per endpoint, options) for
    Manager.create_pool. Keyword settings apply to every endpoint and win
    over what an endpoint's URL says."""
    if isinstance(endpoints, (str, bytes)):
        raise ConfigurationError("endpoints is a list of URLs or dicts, not one string")
    if url is not None:
        engine, base = _parse_url(url)
        if db_type is not None and _engine(db_type) != engine:
            raise ConfigurationError(f"db_type {db_type!r} disagrees with the url's scheme")
    elif db_type is not None:
        engine, base = _engine(db_type), {}
    elif endpoints:
        first = endpoints[0]
        if not isinstance(first, str):
            raise ConfigurationError("give db_type when the endpoints are dicts")
        engine, base = _parse_url(first)[0], {}
    else:
        raise ConfigurationError("create_pool needs a db_type, a url or endpoints")
    common: dict[str, str] = {}
    for key, value in (
        ("host", host),
        ("port", port),
        ("database", database),
        ("user", username),
        ("password", password),
    ):
        if value is not None:
            common[key] = _setting_text(value)
    options: dict[str, Any] = {}
    for key, value in pool_options.items():
        if key in _TIME_OPTIONS:
            options[key] = seconds(key, value, _TIME_OPTIONS[key])
        elif key in POOL_OPTIONS:
            options[key] = value
        else:
            common[key] = _setting_text(value)
    _translate_choices(options)
    settings = _endpoints(engine, base, common, url, host, endpoints)
    _check_no_nul(settings)
    settings = [_tls.native_settings(engine, ep) for ep in settings]
    if engine == "postgresql":
        for ep in settings:
            for key in ("dsn", "url"):
                if "://" in ep.get(key, ""):
                    ep[key] = _pg_url(ep[key])
    if engine == "mssql":
        # db-lib's login cannot be interrupted: its own timeout follows
        # connect_timeout unless the endpoint sets one
        connect_timeout = options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        for ep in settings:
            if "login_timeout" not in ep and "connect_timeout" not in ep:
                ep["login_timeout"] = str(max(1, math.ceil(connect_timeout)))
    return engine, settings, options


def _endpoints(
    engine: str,
    base: dict[str, str],
    common: dict[str, str],
    url: str | None,
    host: str | None,
    endpoints: Sequence[str | Mapping[str, Any]] | None,
) -> list[dict[str, str]]:
    """One settings dict per endpoint: the endpoints given, the hosts of a
    multi-host URL or host list, or the one endpoint."""
    if endpoints:
        if url is not None or host is not None:
            raise ConfigurationError("give either endpoints= or url=/host=, not both")
        return [{**_endpoint_settings(e, engine), **common} for e in endpoints]
    if url is not None and engine in ("postgresql", "mysql") and host is None:
        urls = split_hosts(url)
        if len(urls) > 1:
            return [{**_parse_url(u)[1], **common} for u in urls]
    settings = {**base, **common}
    if engine in ("postgresql", "mysql") and "," in settings.get("host", ""):
        return _split_keyword_hosts(settings)
    return [settings]


def _translate_choices(options: dict[str, Any]) -> None:
    """read_from=, balance= and reset_on_release= from their names to the
    native numbers; init_sql checked."""
    init_sql = options.get("init_sql")
    if init_sql is not None and (not isinstance(init_sql, str) or not init_sql.strip()
                                 or "\0" in init_sql):
        raise ConfigurationError("init_sql must be a non-empty string of SQL without NUL bytes")
    for key, choices in (("read_from", _READ_FROM), ("balance", _BALANCE),
                         ("reset_on_release", _RESET)):
        if key in options:
            value = options[key]
            if value not in choices:
                names = ", ".join(repr(c) for c in choices)
                raise ConfigurationError(f"{key} must be one of {names}, not {value!r}")
            options[key] = choices[value]


def engine_params(engine: str, sql: str | None, params: Any, many: int
                  ) -> tuple[str | None, Any]:
    """(sql, params) as the engine takes them: MySQL's protocol has only
    positional parameters, so :name ones are mapped there (_named.py)."""
    if engine != "mysql" or sql is None or params is None:
        return sql, params
    from ._named import positional

    return positional(sql, params, bool(many))


def readonly_flag(readonly: bool | None) -> int:
    """The native routing flag: -1 default, 0 write, 1 read."""
    return -1 if readonly is None else int(bool(readonly))


def frame(req: _native.Request) -> pl.DataFrame:
    """The rows of a finished query request as a DataFrame."""
    df = pl.DataFrame(req.result())
    if _alerts._SLOW_PENDING:
        _alerts.slow_rows(req, df.height)
    return df


#: Operations the slow-query log times (the statements a caller wrote).
_TIMED_OPS = frozenset({_native.OP_QUERY, _native.OP_EXECUTE, _native.OP_EXECUTE_MANY,
                        _native.OP_CURSOR_OPEN, _native.OP_WRITE_FRAME})


def split_watch_options(pool_options: Mapping[str, Any]) -> tuple[dict[str, Any],
                                                                  dict[str, Any] | None]:
    """create_pool's keywords without the alert, leak and slow-query options,
    and those options checked (None when there are none)."""
    rest = {k: v for k, v in pool_options.items() if k not in _config_keys.WATCH_OPTIONS}
    watch = {k: v for k, v in pool_options.items() if k in _config_keys.WATCH_OPTIONS}
    return rest, _alerts.check_options(watch)


class PoolRegistry:
    """The bookkeeping both pool classes share: the native manager and which
    pool ids exist or were closed (to tell PoolClosed from PoolNotFound)."""

    def __init__(self) -> None:
        self._native: _native.Manager | None = _native.Manager()
        self._engines: dict[str, str] = {}
        self._closed_ids: set[str] = set()
        self._events: dict[str, collections.deque[dict[str, Any]]] = {}
        #: each pool's last primary endpoint seen in its events
        self._primaries: dict[str, str] = {}
        self._event_thread: threading.Thread | None = None
        self._servers: set[_serve.MetricsServer] = set()
        self._watcher = _alerts.Watcher()
        #: each pool's configuration, for reload's diff (None: not known)
        self._configs: dict[str, PoolConfig | None] = {}
        self._config_watch: ConfigWatcher | None = None
        #: the Sentinel watcher of each Redis Sentinel pool (_redis_sentinel.py)
        self._sentinels: dict[str, Any] = {}

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

    def _registered(self, pool_id: str, engine: str, n_endpoints: int = 1,
                    watch: dict[str, Any] | None = None, config: PoolConfig | None = None
                    ) -> None:
        self._engines[pool_id] = engine
        self._configs[pool_id] = config
        self._closed_ids.discard(pool_id)
        self._events[pool_id] = collections.deque(maxlen=RECENT_EVENTS)
        self._rewatch(pool_id, n_endpoints, watch)

    def _create_native(self, pool_id: str, engine: str, settings: list[dict[str, str]],
                       options: dict[str, Any]) -> int:
        """Creates the native pool; a Redis Sentinel pool's endpoints are the
        nodes its Sentinels name, followed by a watcher thread. Returns how
        many endpoints it may have (for _registered)."""
        from . import _redis_sentinel

        manager = self._manager()
        spec = _redis_sentinel.spec_of(engine, settings)
        if spec is None:
            manager.create_pool(pool_id, engine, settings, options)
            return len(settings)
        topology = _redis_sentinel.discover(spec)
        manager.create_pool(pool_id, engine, spec.endpoints(topology.nodes), options)
        self._follow_sentinel(pool_id, spec, options, topology)
        return max(2, len(topology.nodes))  # roles change under Sentinel: watch the events

    def _reconfigure_native(self, pool_id: str, engine: str, settings: list[dict[str, str]],
                            options: dict[str, Any]) -> dict[str, Any]:
        """manager.reconfigure_pool, Sentinel pools asked for their nodes anew."""
        from . import _redis_sentinel

        manager = self._manager()
        spec = _redis_sentinel.spec_of(engine, settings)
        if spec is None:
            return manager.reconfigure_pool(pool_id, settings, options)
        topology = _redis_sentinel.discover(spec)
        result = manager.reconfigure_pool(pool_id, spec.endpoints(topology.nodes), options)
        self._follow_sentinel(pool_id, spec, options, topology)
        return result

    def _follow_sentinel(self, pool_id: str, spec: Any, options: dict[str, Any],
                         topology: Any) -> None:
        from ._redis_sentinel_watch import SentinelWatcher

        ref = weakref.ref(self)

        def manager() -> _native.Manager | None:
            reg = ref()
            return reg._native if reg is not None else None

        def changed(old: Any, new: Any) -> None:
            reg = ref()
            if reg is None or old.master == new.master:
                return
            reg._record_event({
                "kind": "sentinel", "time": time.time(), "pool_id": pool_id,
                "endpoint": "%s:%d" % new.master, "role": "primary", "old_role": "",
                "message": "Sentinel switched the master from %s:%d to %s:%d" % (
                    *old.master, *new.master)})

        previous = self._sentinels.pop(pool_id, None)
        if previous is not None:
            previous.stop()
        watcher = SentinelWatcher(manager, pool_id, spec, options, topology, on_change=changed)
        self._sentinels[pool_id] = watcher
        watcher.start()

    def _stop_sentinels(self, pool_id: str | None) -> None:
        ids = [pool_id] if pool_id is not None else list(self._sentinels)
        for i in ids:
            watcher = self._sentinels.pop(i, None)
            if watcher is not None:
                watcher.stop()

    def _rewatch(self, pool_id: str, n_endpoints: int, watch: dict[str, Any] | None) -> None:
        """(Re)starts watching a pool: alerts, leaks and slow queries as its
        options say, endpoint events when it has several endpoints."""
        self._watcher.remove(pool_id)
        if watch is not None:
            self._watcher.add(self, pool_id, watch)
        if n_endpoints > 1:
            self._watch_events()

    def _unregister(self, pool_id: str) -> None:
        """Forgets a pool as if it had never been created (an undone reload)."""
        self._watcher.remove(pool_id)
        self._stop_sentinels(pool_id)
        for table in (self._engines, self._events, self._configs, self._primaries):
            table.pop(pool_id, None)

    def _watch_events(self) -> None:
        """Starts the thread that logs endpoint events and keeps the latest."""
        if self._event_thread is None:
            self._event_thread = threading.Thread(
                target=_log_events, args=(weakref.ref(self),), name="db_pool-events", daemon=True
            )
            self._event_thread.start()

    def _mark_failover(self, event: dict[str, Any]) -> None:
        """A "primary" event gets ``failover``: True when writes moved from
        another endpoint (what dbpool_failovers_total counts), False for the
        pool's first primary and for a primary that came back."""
        if event["kind"] != "primary":
            return
        previous = self._primaries.get(event["pool_id"])
        event["failover"] = previous is not None and previous != event["endpoint"]
        event["previous"] = previous
        if event["pool_id"] in self._engines:
            self._primaries[event["pool_id"]] = event["endpoint"]

    def _record_event(self, event: dict[str, Any]) -> None:
        recent = self._events.get(event["pool_id"])
        if recent is not None:
            recent.append(event)

    def _close_servers(self) -> None:
        """Stops what serves or watches the pools: metrics servers, the
        configuration watch."""
        for server in list(self._servers):
            server.close()
        if self._config_watch is not None:
            self._config_watch.stop()
            self._config_watch = None

    def watch_config(self, path: str, *, sighup: bool = True, poll_interval: float | None = 2.0,
                     env: bool = False, timeout: float | None = None) -> None:
        """Reloads the pools from the TOML file ``path`` (as ``reload`` does)
        whenever it changes, checked every ``poll_interval`` seconds (None:
        not polled), and, with ``sighup``, when the process gets SIGHUP
        (call from the main thread then). A reload that fails is logged as
        an ERROR and changes nothing. A new call replaces the previous
        watch; close() stops it. ``timeout`` bounds closing removed pools."""
        from . import _reload

        if poll_interval is not None:
            poll_interval = seconds("poll_interval", poll_interval)
        self._manager()
        if self._config_watch is not None:
            self._config_watch.stop()
        self._config_watch = _reload.ConfigWatcher(
            self, str(path), sighup=sighup, poll_interval=poll_interval, env=env,
            close_timeout=close_timeout(timeout))

    def _lease_taken(self, pool_id: str, lease: _native.Lease) -> _alerts.LeaseRecord | None:
        """Starts watching a lease for leaks when its pool asks for it."""
        watch = self._watcher.pools.get(pool_id)
        if watch is None or watch.leak is None:
            return None
        return watch.lease_taken(lease.endpoint)

    def _lease_returned(self, pool_id: str, rec: _alerts.LeaseRecord | None) -> None:
        watch = self._watcher.pools.get(pool_id)
        if rec is not None and watch is not None:
            watch.lease_returned(rec)

    def _slow_watch(self, pool_id: str, op: int) -> _alerts.PoolWatch | None:
        """The pool's watch when it logs slow statements and `op` is one."""
        watch = self._watcher.pools.get(pool_id)
        if watch is None or watch.slow is None or op not in _TIMED_OPS:
            return None
        return watch

    def _slow_done(self, watch: _alerts.PoolWatch, req: _native.Request | None, op: int,
                   sql: str | None, params: Any, started: float, endpoint: str | None,
                   failed: bool) -> None:
        if time.monotonic() - started < (watch.slow or 0.0):
            return
        if endpoint is None:  # a pool-level request: name the endpoint when there is one
            try:
                eps = [e["endpoint"] for e in self._manager().metrics(watch.pool_id)["endpoints"]]
            except Exception:
                eps = []
            endpoint = eps[0] if len(eps) == 1 else "one of " + ", ".join(eps)
        rows = None
        if req is not None and not failed and op != _native.OP_QUERY:
            rows = req.rows_affected()
        if op == _native.OP_WRITE_FRAME:
            sql = f"write_frame into {sql}"
        _alerts.slow_check(watch, req, op == _native.OP_QUERY, sql, params, started, rows,
                           endpoint, failed)

    def _forget(self, pool_id: str | None = None) -> None:
        self._watcher.remove(pool_id)
        self._stop_sentinels(pool_id)
        ids = [pool_id] if pool_id is not None else list(self._engines)
        for i in ids:
            self._engines.pop(i, None)
            self._events.pop(i, None)
            self._configs.pop(i, None)
            self._primaries.pop(i, None)
            self._closed_ids.add(i)

    def list_pools(self) -> list[str]:
        """Names of the open pools."""
        return self._manager().list_pools()

    def stats(self, pool_id: str) -> dict[str, Any]:
        """Connections (size, idle, in_use, opening, waiting) and counters
        (acquired, timeouts, rejected, created, closed, requests, errors,
        cancelled, failovers, retries, ...) of one pool; ``endpoints`` has
        each endpoint's role, health, lag and connections, and ``events``
        the latest endpoint events (up, suspect, down, role, primary)."""
        self._engine(pool_id)
        stats = self._manager().stats(pool_id)
        stats["events"] = list(self._events.get(pool_id, ()))
        return stats

    def metrics(self, pool_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """A snapshot of the metrics of one pool, or of every open pool:
        metric name -> samples, each ``{"labels": {...}, "value": n}`` or, for
        histograms, ``{"labels", "buckets": [(le, cumulative count), ...],
        "sum", "count"}`` (docs/observability.md lists every metric)."""
        if pool_id is not None:
            self._engine(pool_id)
        ids = [pool_id] if pool_id is not None else self.list_pools()
        snap = _metrics.snapshot(self._manager(), ids)
        self._watcher.samples(ids, self._engines, snap)
        return snap

    def prometheus_text(self, pool_id: str | None = None) -> str:
        """metrics() in the Prometheus text exposition format."""
        return _metrics.prometheus_text(self.metrics(pool_id))

    def serve_metrics(
        self,
        host: str = "127.0.0.1",
        port: int = 9187,
        *,
        allow_remote: bool = False,
        read_only: Iterable[str] = (),
    ) -> _serve.MetricsServer:
        """Serves /metrics (prometheus_text()), /healthz, /readyz and the live
        dashboard (/) over HTTP on its own thread, until the returned
        server's close() or this pool's close(). ``port=0`` picks a free
        port (see ``.port`` and ``.url``). Only loopback addresses unless
        ``allow_remote=True``: the pages show the pools' topology. /readyz
        wants a reachable primary in each pool with several endpoints,
        except the pools named in ``read_only``, for which any reachable
        endpoint will do (docs/observability.md). Returns at once."""
        self._manager()
        server = _serve.MetricsServer(self, host, port, allow_remote=allow_remote,
                                      read_only=read_only)
        self._servers.add(server)
        self._watch_events()  # events of single-endpoint pools too, for the page
        return server


#: Endpoint events kept per pool for stats().
RECENT_EVENTS = 50

_EVENT_LEVELS = {
    "up": logging.INFO,
    "role": logging.INFO,
    "suspect": logging.WARNING,
    "down": logging.WARNING,
    "primary": logging.INFO,  # WARNING when it is a failover (_event_level)
}


def _event_level(event: dict[str, Any]) -> int:
    if event.get("failover"):
        return logging.WARNING
    return _EVENT_LEVELS.get(event["kind"], logging.INFO)


def _describe_event(event: dict[str, Any]) -> str:
    where = f"pool {event['pool_id']!r}: endpoint {event['endpoint']}"
    kind = event["kind"]
    if kind == "role":
        return f"{where} is {event['role']} (was {event['old_role']})"
    if kind == "primary" and event.get("failover"):
        return f"{where} is now the primary; writes go there (failover from {event['previous']})"
    if kind == "primary":
        return f"{where} is the primary; writes go there"
    if kind in ("suspect", "down"):
        return f"{where} is {kind}: {event['message']}"
    return f"{where} is up"


def _log_events(registry_ref: weakref.ref[PoolRegistry]) -> None:
    """Logs endpoint events to the "db_pool" logger and keeps the latest for
    stats(), until the registry is closed or garbage-collected."""
    while True:
        registry = registry_ref()
        native = registry._native if registry is not None else None
        del registry  # hold no reference while waiting
        if native is None:
            return
        events = native.wait_events(1.0)
        del native
        if events is None:
            return
        registry = registry_ref()
        for event in events:
            if registry is not None:
                registry._mark_failover(event)
            logger.log(_event_level(event), "%s", _describe_event(event))
            if registry is not None:
                registry._record_event(event)
        del registry
