"""The configuration model: pools -> engine, endpoints (settings per
endpoint), options; built from a table of pools (a dict, a TOML file, the
environment, create_pool keywords or a URL all become one, see
_config_sources.py) and checked against _config_keys.py as a whole, so that
every problem is reported at once, each with its path, before anything
connects. Secrets (passwords, URLs, values from ${ENV}) never appear in a
message or a repr.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import unquote

from . import _alerts, _config_keys as K, _tls
from ._files import unreadable
from ._common import _parse_url, _query_settings, _split_url, split_host_port
from .errors import ConfigProblem, ConfigurationError

from ._config_model import Config, EndpointConfig, PoolConfig, Value

__all__ = ["Config", "EndpointConfig", "PoolConfig", "Value", "build", "Context"]

Part = str | int


# ---- paths and problems ----------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+\Z")


def render_path(parts: Sequence[Part]) -> str:
    """("pools", "orders", "endpoints", 1, "port") -> pools.orders.endpoints[1].port
    (keys that are not bare TOML keys are quoted)."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            name = p if _BARE.match(p) else json.dumps(p, ensure_ascii=False)
            out += ("." if out else "") + name
    return out


class Context:
    """Where problems go, how paths are named (``labels`` maps a path's
    prefix to another name, e.g. an environment variable), which values are
    not to be shown (from ${ENV}), and how password_file / password_command
    are read (``secrets``: (kind, value, path) -> password or None)."""

    def __init__(
        self,
        labels: Mapping[tuple[Part, ...], str] | None = None,
        hidden: set[tuple[Part, ...]] | None = None,
        secrets: Callable[[str, Any, tuple[Part, ...], Context], str | None] | None = None,
    ) -> None:
        self.labels = dict(labels or {})
        self.hidden = hidden if hidden is not None else set()
        self.secrets = secrets
        self.problems: list[ConfigProblem] = []

    def path(self, parts: Sequence[Part]) -> str:
        parts = tuple(parts)
        for n in range(len(parts), 0, -1):
            label = self.labels.get(parts[:n])
            if label is not None:
                rest = render_path(("x",) + parts[n:])[1:]
                return label + rest
        return render_path(parts)

    def add(self, parts: Sequence[Part], message: str) -> None:
        """Records a problem (once: a pool-level value is checked per endpoint)."""
        problem = ConfigProblem(self.path(parts), message)
        if problem not in self.problems:
            self.problems.append(problem)

    def is_hidden(self, parts: Sequence[Part]) -> bool:
        parts = tuple(parts)
        return any(parts[:n] in self.hidden for n in range(1, len(parts) + 1))


def raise_problems(problems: Sequence[ConfigProblem], source: str = "") -> None:
    """Raises one ConfigurationError listing every problem (if any)."""
    if not problems:
        return
    where = f" in {source}" if source else ""
    n = len(problems)
    lines = "\n".join(f"  {p}" for p in problems)
    exc = ConfigurationError(f"invalid configuration{where} ({n} problem{'s' * (n != 1)}):\n{lines}")
    exc.problems = tuple(problems)
    raise exc


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def shown(value: object) -> str:
    """A value as messages show it: strings quoted (cut at 40 characters),
    numbers as written, other things by their type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:40] + "...", ensure_ascii=False)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _type_name(value: object) -> str:
    """What a value is, without showing it (for secrets)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return shown(value) if isinstance(value, (Mapping, list, tuple)) else "a value"


# ---- values ---------------------------------------------------------------------------


class _Bad(Exception):
    """A value does not fit its key: ``expected`` says what would."""

    def __init__(self, expected: str, hint: str = "", message: str = "") -> None:
        super().__init__(expected)
        self.expected, self.hint, self.message = expected, hint, message


_INT = re.compile(r"[+-]?[0-9]+\Z")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_TRUE = ("true", "on", "yes", "1")
_FALSE = ("false", "off", "no", "0")


def _num(x: float | None) -> str:
    """A bound as written: 315360000, 0.01."""
    assert x is not None
    return str(int(x)) if float(x).is_integer() else repr(x)


def _expected(key: K.Key) -> str:
    lo, hi = key.low, key.high
    if key.kind == "int":
        if hi is None or hi >= K.INT_MAX:
            return f"an integer >= {_num(lo)}"
        return f"an integer {_num(lo)}-{_num(hi)}"
    if key.kind == "seconds":
        if key.low_open:
            return f"a number of seconds > {_num(lo)} and <= {_num(hi)}"
        if lo is not None and lo < 0:
            return f"a number of seconds <= {_num(hi)} (negative: never)"
        return f"a number of seconds {_num(lo)}-{_num(hi)}"
    if key.kind == "fraction":
        return f"a number >= {_num(lo)} and < {_num(hi)}"
    if key.kind == "bool":
        return "true or false"
    if key.kind == "choice":
        return "one of " + ", ".join(f'"{c}"' for c in key.choices)
    if key.kind == "path":
        return "a file path" + "".join(f' or "{c}"' for c in key.choices)
    if key.kind == "command":
        return "a command: a string or a list of strings"
    if key.kind == "alerts":
        return "a list of alert rules"
    return "a string"


def typed(key: K.Key, value: object, engine_setting: bool = False) -> Any:
    """``value`` checked and converted to ``key``'s type (strings of digits
    are numbers, "on"/"off" booleans: the environment and URLs hold text).
    Raises _Bad."""
    kind = key.kind
    if kind == "int":
        if isinstance(value, str) and _INT.match(value.strip()):
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(_expected(key))
        assert key.low is not None and key.high is not None
        if not key.low <= value <= key.high:
            raise _Bad(_expected(key))
        return value
    if kind in ("seconds", "fraction"):
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            value = float(value.strip())
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad(_expected(key))
        v = float(value)
        assert key.low is not None and key.high is not None
        low_ok = v > key.low if key.low_open else v >= key.low
        high_ok = v < key.high if kind == "fraction" else v <= key.high
        if not (math.isfinite(v) and low_ok and high_ok):
            raise _Bad(_expected(key))
        return v
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise _Bad(_expected(key))
    if kind == "choice":
        if key.name == "encrypt" and isinstance(value, bool):
            return "require" if value else "off"
        if not isinstance(value, str):
            raise _Bad(_expected(key))
        for c in key.choices:
            if value == c or (engine_setting and value.lower() == c.lower()):
                return c
        raise _Bad(_expected(key), did_you_mean(value, set(key.choices)))
    if kind == "alerts":
        try:
            _alerts.parse_rules(value, None)
        except ConfigurationError as exc:
            raise _Bad(_expected(key), message=str(exc)) from None
        return [dict(rule) for rule in value]  # type: ignore[attr-defined]
    if kind == "command":
        if isinstance(value, str) and value.strip():
            return value
        if (isinstance(value, list) and value
                and all(isinstance(v, str) and v for v in value)):
            return list(value)
        raise _Bad(_expected(key))
    # str and path
    if not isinstance(value, str):
        raise _Bad(_expected(key))
    if "\0" in value:
        raise _Bad(_expected(key), message="contains a NUL byte")
    if key.name == "init_sql" and not value.strip():
        raise _Bad(_expected(key), message="must be non-empty SQL")
    if kind == "path" and value not in key.choices:
        problem = unreadable(value)
        if problem:
            raise _Bad(_expected(key), message=problem)
    return value


def check_value(ctx: Context, parts: Sequence[Part], key: K.Key, value: object,
                engine_setting: bool = False, from_url: bool = False) -> tuple[bool, Any]:
    """(True, the typed value), or (False, None) with the problem recorded."""
    try:
        return True, typed(key, value, engine_setting)
    except _Bad as bad:
        hidden = ctx.is_hidden(parts)
        if bad.message:
            message = bad.message
        elif key.secret or from_url or hidden:
            why = "from the url" if from_url else "from ${...}" if hidden else "secret"
            message = f"expected {bad.expected}, got {_type_name(value)} ({why}, not shown)"
        else:
            message = f"expected {bad.expected}, got {shown(value)}{bad.hint}"
        # a URL's path alone would not say which of its parts is wrong
        ctx.add(parts, f"{key.name}: {message}" if from_url else message)
        return False, None


# ---- pools ---------------------------------------------------------------------------

_ENDPOINT_SOURCE = ("url", "password_file", "password_command")


def engine_of(name: object) -> str | None:
    return K.ENGINE_ALIASES.get(name.lower()) if isinstance(name, str) else None


def _engine_problem(ctx: Context, parts: Sequence[Part], name: object, built: Sequence[str]
                    ) -> None:
    if not isinstance(name, str):
        ctx.add(parts, f"expected an engine name, got {shown(name)}")
        return
    engine = engine_of(name)
    if engine is None:
        ctx.add(parts, f"unknown engine {shown(name)}{did_you_mean(name.lower(), K.ENGINE_ALIASES)};"
                f" this build supports: {', '.join(built)}")
    else:
        ctx.add(parts, f"engine {engine} is not in this build (it supports: {', '.join(built)})")


def _url_engine(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    scheme = url.partition(":")[0]
    return engine_of(scheme)


def _pg_url_settings(url: str) -> list[dict[str, str]]:
    """The endpoints of a postgresql:// URL, as libpq reads it: credentials,
    hosts (one endpoint each, [IPv6] allowed), database and ?keywords, all
    percent-decoded (no "+" for space, unlike a form)."""
    _scheme, credentials, hosts, tail = _split_url(url)
    path, _, query = tail.partition("?")
    settings: dict[str, str] = {}
    for item in query.split("&") if query else ():
        k, _, v = item.partition("=")
        settings[unquote(k)] = unquote(v)
    _query_settings("&".join(f"{k}=" for k in settings if k))  # key names must be words
    if credentials is not None:
        user, colon, password = credentials.partition(":")
        if user:
            settings["user"] = unquote(user)
        if colon:
            settings["password"] = unquote(password)
    database = unquote(path[1:] if path.startswith("/") else path)
    if database:
        settings["database"] = database
    out = []
    for hostport in hosts.split(",") if hosts else [""]:
        ep = dict(settings)
        host, port = split_host_port(hostport)
        if host:
            ep["host"] = unquote(host)
        if port:
            ep["port"] = port
        out.append(ep)
    return out


def url_settings(ctx: Context, parts: Sequence[Part], url: object, engine: str
                 ) -> list[dict[str, str]]:
    """The endpoints a URL gives (several for a multi-host PostgreSQL URL);
    [] with a problem recorded if it cannot be read. Never shows the URL."""
    if not isinstance(url, str) or not url:
        ctx.add(parts, f"expected a database URL, got {_type_name(url)}")
        return []
    try:
        scheme = _url_engine(url)
        if scheme is None:
            ctx.add(parts, "the url's scheme is not an engine (sqlite://, postgresql://, "
                    "mssql://, mysql://, redis://; the url is not shown)")
            return []
        if scheme != engine:
            ctx.add(parts, f"the url is {scheme}, but the pool's engine is {engine}")
            return []
        if "\0" in url:
            ctx.add(parts, "contains a NUL byte")
            return []
        if engine in ("postgresql", "mysql"):
            return _pg_url_settings(url)  # the same URL form, hosts and all
        return [_parse_url(url)[1]]
    except ConfigurationError as exc:  # its messages never show the URL
        ctx.add(parts, str(exc))
        return []


def _resolve_key(engine: str, name: str) -> K.Key | None:
    return K.engine_key(engine, K.COMMON_ALIASES.get(name, name))


def _unknown(ctx: Context, parts: Sequence[Part], name: str, engine: str, pool_level: bool
             ) -> None:
    if name in K.REFUSED.get(engine, {}):
        ctx.add(parts, f"{name} {K.REFUSED[engine][name]}")
        return
    if not pool_level and name in K.POOL_KEY:
        ctx.add(parts, "a pool option: set it in the pool's table, not an endpoint's")
        return
    others = [e for e in K.ENGINE_KEYS if e != engine and K.engine_key(e, name)]
    if others:
        ctx.add(parts, f"not a {engine} setting (it is a {' and '.join(others)} one)")
        return
    names = {n for k in K.keys_of(engine) for n in (k.name, *k.aliases)}
    names |= set(_ENDPOINT_SOURCE)
    if pool_level:
        names |= set(K.POOL_KEY) | set(K.SOURCE_KEY) | {"db_type", "username"}
    ctx.add(parts, f"unknown key{did_you_mean(name, names)}")


class _Settings:
    """An endpoint's (or the pool table's) settings being gathered: canonical
    name -> (value, path, from a URL)."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[object, tuple[Part, ...], bool]] = {}
        self.names: dict[str, str] = {}  # canonical -> the name given, for conflicts

    def put(self, ctx: Context, canon: str, given: str, value: object,
            parts: tuple[Part, ...], from_url: bool = False) -> None:
        if canon in self.values and not from_url and not self.values[canon][2]:
            ctx.add(parts, f"{given} and {self.names[canon]} are the same setting: give one")
            return
        self.values[canon] = (value, parts, from_url)
        self.names[canon] = given


def _gather(ctx: Context, engine: str, table: Mapping[Any, Any], parts: tuple[Part, ...],
            into: _Settings, pool_level: bool) -> dict[str, tuple[object, tuple[Part, ...]]]:
    """Sorts a table's keys: engine settings go ``into``; returns the rest
    (pool options and source keys) that this level may hold."""
    rest: dict[str, tuple[object, tuple[Part, ...]]] = {}
    for name, value in table.items():
        here = parts + (name,)
        if not isinstance(name, str):
            ctx.add(parts, f"keys are strings, got {shown(name)}")
            continue
        canon = "engine" if name == "db_type" else name
        if (pool_level and canon in K.POOL_KEY) or canon in _ENDPOINT_SOURCE or (
                pool_level and canon in K.SOURCE_KEY):
            if canon in rest:
                first = rest[canon][1][-1]
                ctx.add(here, f"{name} and {first} are the same key: give one")
                continue
            rest[canon] = (value, here)
            continue
        key = _resolve_key(engine, name)
        if key is None:
            _unknown(ctx, here, name, engine, pool_level)
            continue
        into.put(ctx, key.name, name, value, here)
    return rest


def _endpoint_list(ctx: Context, engine: str, value: object, parts: tuple[Part, ...]
                   ) -> list[_Settings]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        ctx.add(parts, f"expected a list of URLs or tables, got {_type_name(value)}")
        return []
    if not value:
        ctx.add(parts, "expected at least one endpoint, got an empty list")
        return []
    out = []
    for i, item in enumerate(value):
        here = parts + (i,)
        ep = _Settings()
        if isinstance(item, str):
            for settings in url_settings(ctx, here, item, engine):
                one = _Settings()
                _put_url(ctx, engine, one, settings, here)
                out.append(one)
            continue
        if not isinstance(item, Mapping):
            ctx.add(here, f"expected a URL or a table of settings, got {_type_name(item)}")
            continue
        rest = _gather(ctx, engine, item, here, ep, pool_level=False)
        if "url" in rest:
            urls = url_settings(ctx, rest["url"][1], rest["url"][0], engine)
            if len(urls) > 1:
                ctx.add(rest["url"][1], "an endpoint's url names one host")
            for settings in urls[:1]:
                base = _Settings()
                _put_url(ctx, engine, base, settings, rest["url"][1])
                base.values.update(ep.values)
                ep = base
        _put_secrets(ctx, ep, rest)
        out.append(ep)
    return out


def _put_url(ctx: Context, engine: str, into: _Settings, settings: Mapping[str, str],
             parts: tuple[Part, ...]) -> None:
    for name, value in settings.items():
        key = _resolve_key(engine, name)
        if key is None:
            if name in K.REFUSED.get(engine, {}):
                ctx.add(parts, f"{name} {K.REFUSED[engine][name]}")
            else:
                names = {n for k in K.keys_of(engine) for n in (k.name, *k.aliases)}
                ctx.add(parts, f"unknown {engine} setting {shown(name)} in the url"
                        f"{did_you_mean(name, names)}")
            continue
        into.put(ctx, key.name, name, value, parts, from_url=True)


def _put_secrets(ctx: Context, into: _Settings,
                 rest: Mapping[str, tuple[object, tuple[Part, ...]]]) -> None:
    """password_file / password_command -> password (at most one of the three)."""
    given = [k for k in ("password_file", "password_command") if k in rest]
    if len(given) > 1:
        ctx.add(rest[given[1]][1], "give one of password, password_file and password_command")
        return
    if not given:
        return
    name = given[0]
    value, parts = rest[name]
    if "password" in into.values and not into.values["password"][2]:
        ctx.add(parts, "give one of password, password_file and password_command")
        return
    ok, checked = check_value(ctx, parts, K.SOURCE_KEY[name], value)
    if not ok or ctx.secrets is None:
        return
    password = ctx.secrets(name, checked, parts, ctx)
    if password is not None:
        into.values["password"] = (password, parts, False)
        into.names["password"] = name


def build_pool(ctx: Context, name: str, table: object, built: Sequence[str],
               parts: tuple[Part, ...]) -> PoolConfig | None:
    """One pool from its table, or None (with the problems recorded)."""
    if not isinstance(table, Mapping):
        ctx.add(parts, f"expected a table of settings, got {_type_name(table)}")
        return None
    start = len(ctx.problems)
    engine = _pool_engine(ctx, table, built, parts)
    if engine is None:
        return None
    common = _Settings()
    rest = _gather(ctx, engine, table, parts, common, pool_level=True)
    endpoints = _pool_endpoints(ctx, engine, rest, common, parts)
    _put_secrets(ctx, common, rest)
    finished = []
    for i, ep in enumerate(endpoints):
        merged = dict(ep.values)
        merged.update(common.values)  # the pool table's settings win (as create_pool's keywords)
        settings = _typed_settings(ctx, engine, merged)
        _engine_rules(ctx, engine, settings, merged, parts + (("endpoints", i) if len(endpoints) > 1 else ()))
        finished.append(EndpointConfig(settings))
    options = _options(ctx, rest, len(finished), parts)
    if len(ctx.problems) > start or not finished:
        return None
    return PoolConfig(name, engine, tuple(finished), options)


def _pool_engine(ctx: Context, table: Mapping[Any, Any], built: Sequence[str],
                 parts: tuple[Part, ...]) -> str | None:
    """The engine: the engine key, else the url's scheme, else the first
    endpoint URL's."""
    for key in ("engine", "db_type"):
        if key in table:
            engine = engine_of(table[key])
            if engine is None or engine not in built:
                _engine_problem(ctx, parts + (key,), table[key], built)
                return None
            return engine
    url = table.get("url")
    eps = table.get("endpoints")
    first = eps[0] if isinstance(eps, (list, tuple)) and eps else None
    if isinstance(first, Mapping):
        first = first.get("url")
    source, where = (url, "url") if url is not None else (first, "endpoints")
    if source is None:
        ctx.add(parts, "needs an engine, a url or endpoints")
        return None
    engine = _url_engine(source)
    if engine is None:
        ctx.add(parts + (where,) if where == "url" else parts + (where, 0),
                "the url's scheme is not an engine (sqlite://, postgresql://, mssql://, mysql://, "
                "redis://; the url is not shown)")
        return None
    if engine not in built:
        ctx.add(parts + (where,), f"engine {engine} is not in this build "
                f"(it supports: {', '.join(built)})")
        return None
    return engine


def _pool_endpoints(ctx: Context, engine: str, rest: Mapping[str, tuple[object, tuple[Part, ...]]],
                    common: _Settings, parts: tuple[Part, ...]) -> list[_Settings]:
    if "url" in rest and "endpoints" in rest:
        ctx.add(rest["endpoints"][1], "give either url or endpoints, not both")
        return []
    if "endpoints" in rest:
        value, where = rest["endpoints"]
        return _endpoint_list(ctx, engine, value, where)
    if "url" in rest:
        value, where = rest["url"]
        out = []
        for settings in url_settings(ctx, where, value, engine):
            ep = _Settings()
            _put_url(ctx, engine, ep, settings, where)
            out.append(ep)
        return out
    host = common.values.get("host")
    if engine in ("postgresql", "mysql") and host and isinstance(host[0], str) and "," in host[0]:
        return _split_hosts(ctx, common)
    return [_Settings()]


def _split_hosts(ctx: Context, common: _Settings) -> list[_Settings]:
    """host = "h1,h2" (with port "p1,p2" or one port): one endpoint per host."""
    host_value, host_parts, _ = common.values.pop("host")
    hosts = str(host_value).split(",")
    port = common.values.pop("port", None)
    ports = str(port[0]).split(",") if port else [""]
    if len(ports) not in (1, len(hosts)):
        ctx.add(port[1] if port else host_parts, f"{len(hosts)} hosts but {len(ports)} ports")
        return []
    out = []
    for i, h in enumerate(hosts):
        ep = _Settings()
        ep.values["host"] = (h, host_parts, False)
        p = ports[i if len(ports) > 1 else 0]
        if p and port:
            ep.values["port"] = (p, port[1], False)
        out.append(ep)
    return out


def _typed_settings(ctx: Context, engine: str,
                    merged: Mapping[str, tuple[object, tuple[Part, ...], bool]]
                    ) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for canon, (value, parts, from_url) in sorted(merged.items()):
        key = K.engine_key(engine, canon)
        assert key is not None
        ok, v = check_value(ctx, parts, key, value, True, from_url)
        if ok:
            out[canon] = v
    return out


def _engine_rules(ctx: Context, engine: str, settings: Mapping[str, Value],
                  merged: Mapping[str, tuple[object, tuple[Part, ...], bool]],
                  parts: tuple[Part, ...]) -> None:
    """Settings required, and settings that contradict each other."""
    def at(name: str) -> tuple[Part, ...]:
        return merged[name][1] if name in merged else parts

    for key in K.ENGINE_KEYS[engine]:
        if key.required and key.name not in merged:
            ctx.add(parts, f"{engine} needs {key.name}")
    if engine == "mssql":
        if "instance" in settings and "port" in merged:
            ctx.add(at("port"), "give either port or instance")
        if settings.get("encrypt") == "strict" and settings.get("check_hostname") is False:
            ctx.add(at("check_hostname"), "encrypt=strict checks the host name: false contradicts it")
        if "ca_file" in settings and settings.get("encrypt") == "off":
            ctx.add(at("encrypt"), "ca_file is for encrypted connections: off contradicts it")
    # tls, ca_file, ... as the engine's own settings (files are checked
    # already; a TLS value refused there is not judged again here)
    if any(k in merged and k not in settings for k in _tls.UNIFORM):
        return
    text = {k: ("on" if v else "off") if isinstance(v, bool) else str(v)
            for k, v in settings.items() if v is not None}
    for name, message in _tls.plan(engine, text, check_files=False)[1]:
        from_url = name in merged and merged[name][2]  # the URL's path alone would not say
        ctx.add(at(name), f"{name}: {message}" if from_url else message)


def _options(ctx: Context, rest: Mapping[str, tuple[object, tuple[Part, ...]]], n_endpoints: int,
             parts: tuple[Part, ...]) -> dict[str, Value]:
    options: dict[str, Value] = {k.name: k.default for k in K.POOL_KEYS}  # type: ignore[misc]
    for key in K.POOL_KEYS:
        if key.name in rest:
            value, where = rest[key.name]
            ok, v = check_value(ctx, where, key, value)
            if ok:
                options[key.name] = v
    lo, hi = options["min_size"], options["max_size"]
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        ctx.add(rest["min_size"][1] if "min_size" in rest else parts,
                f"min_size {lo} is more than max_size {hi}")
    if options["read_from"] == "replicas" and n_endpoints == 1:
        ctx.add(rest["read_from"][1], '"replicas" needs several endpoints; this pool has one')
    return options


def build(ctx: Context, data: object, built: Sequence[str]) -> Config | None:
    """The model from ``{"pools": {name: table, ...}}``; None if any problem."""
    if not isinstance(data, Mapping):
        ctx.add((), f"expected a table with a pools table, got {_type_name(data)}")
        return None
    for key in data:
        if key != "pools":
            ctx.add((str(key),), f"unknown key{did_you_mean(str(key), ['pools'])}")
    pools = data.get("pools")
    if pools is None:
        ctx.add(("pools",), "missing: the configuration has no pools")
        return None
    if not isinstance(pools, Mapping):
        ctx.add(("pools",), f"expected a table of pools, got {_type_name(pools)}")
        return None
    if not pools:
        ctx.add(("pools",), "expected at least one pool, got an empty table")
    out = {}
    for name, table in pools.items():
        parts = ("pools", str(name))
        if not isinstance(name, str) or not name or "\0" in name:
            ctx.add(parts, "a pool name is a non-empty string without NUL bytes")
            continue
        pool = build_pool(ctx, name, table, built, parts)
        if pool is not None:
            out[name] = pool
    return None if ctx.problems else Config(out)
