"""What the Redis engine needs on the Python side (docs/redis.md): its URL
forms, commands flattened for the C driver, the spec of a tabular read and
the options of write_frame. The methods themselves live on DatabasePool and
SyncDatabasePool, which call these."""

from __future__ import annotations

from typing import Any, Iterable, Literal, Mapping, Sequence
from urllib.parse import unquote

import polars as pl

from . import _native
from .errors import ConfigurationError, ProgrammingError, ResponseError, WatchError

#: A command: its name and arguments (str, bytes, int, float or bool).
Command = Sequence[Any]
OnError = Literal["raise", "null"]
WriteKind = Literal["hash", "string"]

#: The tabular reads and the default schema of those that have one.
READS = ("HGETALL", "HMGET", "MGET", "ZRANGE")
_DEFAULT_SCHEMA: dict[str, dict[str, Any]] = {
    "MGET": {"value": pl.Utf8},
    "ZRANGE": {"member": pl.Utf8, "score": pl.Float64},
}
KEY_COLUMN = "_key"
#: submit(many=...) for a list of commands (the binding's BIND_COMMANDS).
BIND_COMMANDS = 2
DEFAULT_SCAN_COUNT = 1000

#: Commands that only read: routed by read_from when readonly is not given.
READ_COMMANDS = frozenset(
    """GET MGET GETRANGE STRLEN EXISTS TYPE TTL PTTL EXPIRETIME HGET HMGET HGETALL HKEYS
    HVALS HLEN HEXISTS HSTRLEN HSCAN LRANGE LLEN LINDEX SMEMBERS SISMEMBER SMISMEMBER
    SCARD SRANDMEMBER SSCAN ZRANGE ZRANGEBYSCORE ZREVRANGE ZSCORE ZMSCORE ZCARD ZCOUNT
    ZRANK ZREVRANK ZSCAN SCAN DBSIZE PING ECHO BITCOUNT GETBIT XRANGE XREVRANGE XLEN
    PFCOUNT""".split()
)

# Polars dtypes a tabular read can produce, by the C type id (column.h).
_TYPE_IDS: list[tuple[Any, str]] = [
    (pl.Boolean, "BOOL"), (pl.Int8, "INT8"), (pl.Int16, "INT16"), (pl.Int32, "INT32"),
    (pl.Int64, "INT64"), (pl.UInt8, "UINT8"), (pl.UInt16, "UINT16"), (pl.UInt32, "UINT32"),
    (pl.UInt64, "UINT64"), (pl.Float32, "FLOAT32"), (pl.Float64, "FLOAT64"),
    (pl.Date, "DATE32"), (pl.Utf8, "STRING"), (pl.Binary, "BINARY"),
]


def url_settings(scheme: str, credentials: str | None, hostport: str, path: str,
                 settings: dict[str, str]) -> dict[str, str]:
    """redis://[[user]:password@]host[:port][/db][?key=value],
    redis+cluster://[[user]:password@]host1:port1,host2:port2[?key=value]
    (seed nodes of a Redis Cluster: host is their comma-joined list, cluster
    is 1), redis+sentinel:// (Sentinels; _redis_sentinel.py) and
    unix://[[user]:password@]/path/to/socket[?db=N]; rediss:// is redis://
    over TLS."""
    if credentials is not None:  # the data nodes' (a Sentinel URL's too)
        user, colon, password = credentials.partition(":")
        if colon:
            settings["password"] = unquote(password)
            if user:
                settings["user"] = unquote(user)
        elif user:  # redis://secret@host: redis-py reads a lone part as the password
            settings["password"] = unquote(user)
    if scheme == "redis+sentinel":
        from ._redis_sentinel import url_settings as sentinel_settings

        return sentinel_settings(hostport, path, settings)
    if scheme == "rediss":  # _tls.native_settings: TLS unless the settings say otherwise
        settings["rediss"] = "1"
    if scheme == "unix":
        if hostport:
            raise ConfigurationError("unix:// URLs take a socket path: unix:///run/redis.sock")
        settings["unix_socket"] = unquote(path)
        return settings
    if scheme == "redis+cluster":
        return _cluster_settings(hostport, path, settings)
    if "," in hostport:
        raise ConfigurationError(
            "a redis:// URL names one server; for a Redis Cluster use "
            "redis+cluster://host1:port1,host2:port2; give a primary and its replicas as "
            "endpoints")
    from ._common import split_host_port

    host, port = split_host_port(hostport)
    if host:
        settings["host"] = unquote(host)
    if port:
        if not port.isdigit():
            raise ConfigurationError("the redis url's port is not a number (not shown)")
        settings["port"] = port
    db = path[1:] if path.startswith("/") else path
    if db:
        if not db.isdigit():
            raise ConfigurationError("the redis url's path is the database number: redis://host/0")
        settings["database"] = db
    if "db" in settings:
        settings["database"] = settings.pop("db")
    return settings


def _cluster_settings(hostport: str, path: str, settings: dict[str, str]) -> dict[str, str]:
    """The seeds of redis+cluster:// as host "h1:p1,h2:p2" and cluster=1."""
    from ._common import split_host_port

    seeds = []
    for part in hostport.split(","):
        host, port = split_host_port(part.strip())
        if not host:
            raise ConfigurationError("a redis+cluster:// seed has no host: "
                                     "redis+cluster://host1:7000,host2:7001")
        if port and not port.isdigit():
            raise ConfigurationError("a redis+cluster:// seed's port is not a number (not shown)")
        host = unquote(host)
        host = f"[{host}]" if ":" in host else host
        seeds.append(f"{host}:{port}" if port else host)
    db = path[1:] if path.startswith("/") else path
    db = settings.pop("db", settings.pop("database", db))
    if db not in ("", "0"):
        raise ConfigurationError("a redis cluster has only database 0")
    settings["host"] = ",".join(seeds)
    settings["cluster"] = "1"
    return settings


def _arg(value: Any) -> Any:
    """An argument as the binding takes it: buffers as bytes."""
    return bytes(value) if isinstance(value, (bytearray, memoryview)) else value


def _checked(cmd: Any) -> list[Any]:
    """A command given as another kind of sequence, as a list (the binding
    takes tuples and lists and checks every argument itself)."""
    if isinstance(cmd, (str, bytes)) or not isinstance(cmd, Sequence) or not cmd:
        raise ProgrammingError(
            "each command is a non-empty sequence such as ('SET', 'k', 'v'), "
            f"not {type(cmd).__name__}")
    return [_arg(a) for a in cmd]


# Whether a command name only reads, by the name as given (str or bytes,
# any case); filled as names are met, bounded.
_NAME_READS: dict[Any, bool] = {}
_SEQUENCES = {tuple, list}


def _reads(name: Any) -> bool:
    known = _NAME_READS.get(name) if isinstance(name, (str, bytes)) else False
    if known is not None:
        return known
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    reads = text.upper() in READ_COMMANDS
    if len(_NAME_READS) < 4096:
        _NAME_READS[name] = reads
    return reads


def command_list(commands: Iterable[Command], readonly: bool | None) -> tuple[list[Any], int]:
    """(the commands as the binding reads them: tuples or lists of
    arguments, which it checks; the native routing flag: a read when every
    command only reads, unless ``readonly`` says otherwise). A list of
    tuples goes as it is: this runs on the event loop for every pipeline."""
    cmds = commands if type(commands) is list else list(commands)
    if not set(map(type, cmds)) <= _SEQUENCES:
        cmds = [c if type(c) in _SEQUENCES else _checked(c) for c in cmds]
    if not cmds:
        raise ProgrammingError("pipeline() needs at least one command")
    if readonly is not None:
        return cmds, int(bool(readonly))
    known = _NAME_READS.get
    try:
        for c in cmds:
            reads = known(c[0]) if c else False
            if not (_reads(c[0]) if reads is None else reads):
                return cmds, 0
    except TypeError:  # an unhashable name: the binding refuses it
        return cmds, 0
    return cmds, 1


def single_reply(replies: list[Any]) -> Any:
    """command()'s value: the one reply, raised when it is an error."""
    value = replies[0]
    if isinstance(value, ResponseError):
        raise value
    return value


def pipeline_replies(replies: list[Any] | None, raise_on_error: bool) -> list[Any]:
    """pipeline()'s value: every reply, the first error raised (after every
    command ran) unless raise_on_error is False. None is a transaction's
    EXEC answering nil: a WATCHed key changed and nothing ran."""
    if replies is None:
        raise WatchError("the transaction was not run: a key it WATCHed changed "
                         "(EXEC answered nil); read again and retry")
    if raise_on_error:
        for value in replies:
            if isinstance(value, ResponseError):
                raise value
    return replies


def _type_id(name: str, dtype: Any) -> int:
    if isinstance(dtype, pl.Datetime):
        if dtype.time_unit not in (None, "us"):
            raise ProgrammingError(f"column {name!r}: only Datetime('us') is read from redis")
        kind = "TIMESTAMP_UTC" if dtype.time_zone == "UTC" else "TIMESTAMP_US"
        if dtype.time_zone not in (None, "UTC"):
            raise ProgrammingError(f"column {name!r}: Datetime time zone must be None or UTC")
        return int(_native.TYPE_IDS[kind])
    for known, kind in _TYPE_IDS:
        if dtype == known:
            return int(_native.TYPE_IDS[kind])
    raise ProgrammingError(
        f"column {name!r}: redis values are read as Boolean, integers, floats, Date, "
        f"Datetime('us'), Utf8 or Binary, not {dtype}")


def scan_spec(kind: str, pattern: str | bytes | None, schema: Mapping[str, Any] | None,
              on_error: OnError, count: int) -> tuple[str, list[Any]]:
    """(sql, params) of a tabular read (redis_scan.c reads them)."""
    op = kind.upper()
    if op not in READS:
        raise ProgrammingError(
            f"redis reads tables with {', '.join(READS)} (and a pattern), not {kind!r}; "
            "use command() for other commands")
    if pattern is None:
        raise ProgrammingError(f"query(..., {op!r}) needs pattern=, such as 'user:*'")
    if on_error not in ("raise", "null"):
        raise ProgrammingError(f"on_error must be 'raise' or 'null', not {on_error!r}")
    if not isinstance(count, int) or count < 1:
        raise ProgrammingError("scan_count must be a positive integer")
    fields = dict(schema if schema is not None else _DEFAULT_SCHEMA.get(op, {}))
    if not fields or (len(fields) == 1 and KEY_COLUMN in fields):
        raise ProgrammingError(f"query(..., {op!r}) needs schema=: the fields to read and "
                               "their dtypes, such as {'name': pl.Utf8, 'age': pl.Int64}")
    key_dtype = fields.pop(KEY_COLUMN, pl.Utf8)
    if key_dtype not in (pl.Utf8, pl.Binary):
        raise ProgrammingError(f"the {KEY_COLUMN} column is Utf8 or Binary, not {key_dtype}")
    params: list[Any] = [pattern, count, 1 if on_error == "null" else 0,
                         KEY_COLUMN, _type_id(KEY_COLUMN, key_dtype)]
    for name, dtype in fields.items():
        if not isinstance(name, str) or not name or "\0" in name:
            raise ProgrammingError(f"bad field name {name!r}")
        params += [name, _type_id(name, dtype)]
    return op, params


def write_options(key_column: str | None, kind: WriteKind, ttl: float | None,
                  prefix: str | None, table: str | None) -> tuple[str, list[Any]]:
    """(prefix, options) of write_frame on redis (redis_bulk.c)."""
    if table is not None:
        raise ProgrammingError("redis write_frame takes prefix= (the keys' prefix), not a table")
    if not key_column:
        raise ProgrammingError("redis write_frame needs key_column= (the column the keys end in)")
    if kind not in ("hash", "string"):
        raise ProgrammingError(f"kind must be 'hash' or 'string', not {kind!r}")
    seconds = 0
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 1 \
                or ttl != int(ttl):
            raise ProgrammingError("ttl is a whole number of seconds, at least 1")
        seconds = int(ttl)
    return prefix or "", [key_column, kind, seconds]


def frame_rows(frame: Any, key_column: str | None) -> Any:
    """The rows of write_frame's frame, checked for a key in every row (a
    row without one would stop the load half-way: Redis cannot undo)."""
    from ._frames import prepare_frame

    rows, _ = prepare_frame(frame, "redis")
    if isinstance(rows, pl.DataFrame):
        if key_column not in rows.columns:
            raise ProgrammingError(f"write_frame: the frame has no key column {key_column!r}")
        nulls = rows[key_column].null_count()
        if nulls:
            raise ProgrammingError(f"write_frame: {nulls} rows have a null {key_column!r}; "
                                   "nothing was written")
    return rows


def refuse_sql_options(engine: str, **given: Any) -> None:
    """The redis-only keywords of query()/stream()/write_frame() on a SQL pool."""
    named = [k for k, v in given.items() if v is not None]
    if named and engine != "redis":
        raise ProgrammingError(f"{', '.join(named)} only apply to redis pools, not {engine}")
