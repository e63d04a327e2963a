"""Where a configuration comes from: a dict, a TOML file, the environment,
create_pool keywords or a URL. Each becomes the same table of pools
(``{"pools": {name: {...}}}``) and goes through _config.build, so the same
pools give the same model whatever their source.

Also here: ${ENV} interpolation in file and dict values, and the secret
sources password_file and password_command.

Precedence, highest first: environment variables (when a file or dict is
combined with them, ``env=True``) over the file's or dict's values; within a
pool, the pool table's settings over an endpoint's (as create_pool's
keywords win over its URL); DB_POOL_DEFAULT_URL over DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import _config_keys as K
from . import _native
from ._config import Config, Context, Part, build, did_you_mean, raise_problems
from ._config_model import PoolConfig
from .errors import ConfigProblem, ConfigurationError

#: How long a password_command may run.
PASSWORD_COMMAND_TIMEOUT = 10.0

ENV_PREFIX = "DB_POOL_"


class ConfigWarning(UserWarning):
    """A configuration that works but is risky (a password file others can read)."""


# ---- entry points -----------------------------------------------------------------------


ConfigSource = str | os.PathLike[str] | Mapping[str, Any] | Config


def load_config(
    source: ConfigSource,
    *,
    env: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """The configuration of a TOML file (a path) or a dict
    (``{"pools": {"orders": {"url": ..., "max_size": 10}}}``), with ${NAME}
    replaced from the environment. ``env=True`` lets DB_POOL_<POOL>_<KEY>
    variables override it. Raises ConfigurationError listing every
    problem; connects nothing."""
    environ = os.environ if environ is None else environ
    ctx = _context()
    label = ""
    if isinstance(source, Config):
        return source
    if isinstance(source, Mapping):
        data: Any = source
    elif isinstance(source, (str, os.PathLike)):
        label = os.fspath(source)
        data = read_toml(label)
    else:
        raise_problems([_problem(f"expected a path or a dict, got a {type(source).__name__}")])
    data = interpolate(ctx, data, environ)
    if env and isinstance(data, Mapping) and isinstance(data.get("pools"), Mapping):
        known = [str(n) for n in data["pools"]]
        env_data, labels = env_tables(ctx, environ, known)
        data = overlay(data, env_data)
        ctx.labels.update(labels)
    return _finish(ctx, data, label)


def config_from_env(environ: Mapping[str, str] | None = None) -> Config:
    """The pools the environment names: DATABASE_URL (the pool "default"),
    DB_POOL_<POOL>_URL / _ENGINE / _ENDPOINTS and DB_POOL_<POOL>_<KEY>."""
    environ = os.environ if environ is None else environ
    ctx = _context()
    data, labels = env_tables(ctx, environ, ())
    ctx.labels.update(labels)
    if not data["pools"] and not ctx.problems:
        ctx.add((), "no pools in the environment: set DATABASE_URL or DB_POOL_<POOL>_URL")
    return _finish(ctx, data, "the environment")


def config_from_url(url: str, pool_id: str = "default", **options: Any) -> Config:
    """One pool from a URL (any engine's form), with pool options."""
    return _finish(_context(), {"pools": {pool_id: {"url": url, **options}}}, "")


def config_from_keywords(
    pool_id: str,
    db_type: str | None = None,
    host: str | None = None,
    port: int | str | None = None,
    database: str | None = None,
    username: str | None = None,
    password: str | None = None,
    url: str | None = None,
    endpoints: Sequence[str | Mapping[str, Any]] | None = None,
    **options: Any,
) -> Config:
    """The model of what create_pool(...) with these arguments makes."""
    table: dict[str, Any] = {"engine": db_type, "host": host, "port": port,
                             "database": database, "user": username, "password": password,
                             "url": url, "endpoints": endpoints, **options}
    table = {k: v for k, v in table.items() if v is not None}
    return _finish(_context(), {"pools": {pool_id: table}}, "")


def keyword_model(pool_id: str, *args: Any, **options: Any) -> PoolConfig | None:
    """The model of a pool create_pool made from these arguments (as
    config_from_keywords), kept for reload's diff; None when they are beyond
    what a configuration can say (a callable on_alert, say)."""
    try:
        return config_from_keywords(pool_id, *args, **options).pools[pool_id]
    except (ConfigurationError, TypeError):
        return None


def _context() -> Context:
    return Context(secrets=_secret)


def _finish(ctx: Context, data: object, label: str) -> Config:
    config = build(ctx, data, _native.engines())  # problems so far are kept: all at once
    if config is None and not ctx.problems:  # cannot happen: build says why
        ctx.add((), "invalid configuration")
    raise_problems(ctx.problems, label)
    assert config is not None
    return config


def _problem(message: str, path: str = "") -> ConfigProblem:
    return ConfigProblem(path, message)


# ---- TOML ----------------------------------------------------------------------------


def read_toml(path: str) -> Any:
    """The tables of a TOML file; ConfigurationError if it cannot be read."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise_problems([_problem("TOML files need Python 3.11 or newer (tomllib)", path)])
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise_problems([_problem(f"cannot read the file: {exc.strerror or exc}", path)])
    except tomllib.TOMLDecodeError as exc:  # says where, never quotes the text
        raise_problems([_problem(f"not valid TOML: {exc}", path)])
    except UnicodeDecodeError:
        raise_problems([_problem("not valid TOML: not UTF-8 text", path)])
    return None


# ---- ${ENV} ------------------------------------------------------------------------------

_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def interpolate(ctx: Context, data: Any, environ: Mapping[str, str],
                parts: tuple[Part, ...] = ()) -> Any:
    """``data`` with ${NAME} in every string replaced by the variable ($${
    for a literal ${). A value that used one is never shown in messages."""
    if isinstance(data, Mapping):
        return {k: interpolate(ctx, v, environ, parts + (str(k),)) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [interpolate(ctx, v, environ, parts + (i,)) for i, v in enumerate(data)]
    if not isinstance(data, str) or "$" not in data:
        return data
    used = False

    def sub(m: re.Match[str]) -> str:
        nonlocal used
        if m.group(0) == "$${":
            return "${"
        name = m.group(1)
        if name is None or not _NAME.match(name):
            ctx.add(parts, "a ${ without a variable name and } (write $${ for a literal ${)")
            return ""
        if name not in environ:
            ctx.add(parts, f"${{{name}}} is not set in the environment")
            return ""
        used = True
        return environ[name]

    out = _REF.sub(sub, data)
    if used:
        ctx.hidden.add(parts)
    return out


# ---- the environment ---------------------------------------------------------------------


def env_name(pool: str) -> str:
    """A pool's part of variable names: upper case, other characters as _."""
    return re.sub(r"[^A-Z0-9]", "_", pool.upper())


def _env_keys() -> list[str]:
    names = {k.name for k in K.POOL_KEYS} | {k.name for k in K.SOURCE_KEYS}
    names |= K.all_setting_names() | {"db_type", "username"}
    return sorted(names, key=len, reverse=True)


def env_tables(ctx: Context, environ: Mapping[str, str], known: Sequence[str]
               ) -> tuple[dict[str, Any], dict[tuple[Part, ...], str]]:
    """The pools of DB_POOL_<POOL>_<KEY> variables (and DATABASE_URL), and
    which variable each value came from (for messages). ``known``: pools
    defined elsewhere (a file), which variables may override."""
    keys = _env_keys()
    by_env = {env_name(p): p for p in known}
    found: dict[str, dict[str, tuple[str, str]]] = {}  # pool -> key -> (value, variable)
    stray: list[str] = []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX):
            continue
        split = _split_var(var[len(ENV_PREFIX):], keys, by_env)
        if split is None:
            stray.append(var)
            continue
        pool, key = split
        found.setdefault(pool, {})[key] = (environ[var], var)
    if "DATABASE_URL" in environ and "url" not in found.get("default", {}):
        found.setdefault("default", {})["url"] = (environ["DATABASE_URL"], "DATABASE_URL")
    defined = {p for p, kv in found.items()
               if kv.keys() & {"url", "engine", "db_type", "endpoints"} or p in known}
    for var in stray:  # a typo in a key of a pool that exists
        rest = var[len(ENV_PREFIX):]
        for pool in sorted(defined, key=len, reverse=True):
            head = env_name(pool) + "_"
            if rest.startswith(head):
                word = rest[len(head):].lower()
                ctx.add((var,), f"unknown key {word!r} for pool {pool!r}"
                        f"{did_you_mean(word, set(keys))}")
                break
    pools: dict[str, Any] = {}
    labels: dict[tuple[Part, ...], str] = {}
    for pool, kv in found.items():
        if pool not in defined:
            some = next(iter(kv.values()))[1]
            ctx.add((some,), f"sets a key of pool {pool!r}, which is not defined (no "
                    f"{ENV_PREFIX}{env_name(pool)}_URL){did_you_mean(pool, defined)}")
            continue
        table: dict[str, Any] = {}
        for key, (value, var) in kv.items():
            table[key] = value.split() if key == "endpoints" else value
            labels[("pools", pool, key)] = var
        pools[pool] = table
    return {"pools": pools}, labels


def _split_var(rest: str, keys: Sequence[str], by_env: Mapping[str, str]
               ) -> tuple[str, str] | None:
    """(pool, key) of the part after DB_POOL_, pools from ``by_env`` first."""
    for env, pool in sorted(by_env.items(), key=lambda kv: len(kv[0]), reverse=True):
        if rest.startswith(env + "_") and rest[len(env) + 1:].lower() in keys:
            return pool, rest[len(env) + 1:].lower()
    for key in keys:
        tail = "_" + key.upper()
        if rest.endswith(tail) and len(rest) > len(tail):
            return rest[: -len(tail)].lower(), key
    return None


def overlay(data: Mapping[str, Any], env_data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the environment's pools laid over it: a key replaces the
    same key (or an alias of it); a url or endpoints replaces both."""
    out = dict(data)
    pools = dict(data["pools"])
    for name, table in env_data["pools"].items():
        base = dict(pools.get(name) or {}) if isinstance(pools.get(name), Mapping) else {}
        if table.keys() & {"url", "endpoints"}:
            base.pop("url", None)
            base.pop("endpoints", None)
        for key in table:
            for old in list(base):
                if _same_key(old, key):
                    del base[old]
        base.update(table)
        pools[name] = base
    out["pools"] = pools
    return out


def _same_key(a: str, b: str) -> bool:
    if a == b or {a, b} == {"engine", "db_type"}:
        return True
    a, b = K.COMMON_ALIASES.get(a, a), K.COMMON_ALIASES.get(b, b)
    for engine in K.ENGINE_KEYS:
        ka, kb = K.engine_key(engine, a), K.engine_key(engine, b)
        if ka is not None and ka is kb:
            return True
    return False


# ---- secrets ---------------------------------------------------------------------------


def _secret(kind: str, value: Any, parts: tuple[Part, ...], ctx: Context) -> str | None:
    if kind == "password_file":
        return read_password_file(ctx, parts, str(value))
    return run_password_command(ctx, parts, value)


def read_password_file(ctx: Context, parts: tuple[Part, ...], path: str) -> str | None:
    """The file's text without one trailing newline; a ConfigWarning if its
    mode lets group or others read it."""
    shown_path = json.dumps(path, ensure_ascii=False)
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            raw = f.read()
    except OSError as exc:
        ctx.add(parts, f"cannot read {shown_path}: {exc.strerror or exc}")
        return None
    if mode & 0o044:
        warnings.warn(f"password file {shown_path} may be read by group or others "
                      f"(mode {mode & 0o777:o}): chmod 600 it", ConfigWarning, stacklevel=2)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        ctx.add(parts, f"{shown_path} is not UTF-8 text")
        return None
    return _one_line(ctx, parts, text, f"{shown_path}")


def _one_line(ctx: Context, parts: tuple[Part, ...], text: str, what: str) -> str | None:
    for end in ("\r\n", "\n"):
        if text.endswith(end):
            text = text[: -len(end)]
            break
    if not text:
        ctx.add(parts, f"{what} is empty")
        return None
    if "\0" in text:
        ctx.add(parts, f"{what} holds a NUL byte")
        return None
    return text


def run_password_command(ctx: Context, parts: tuple[Part, ...], command: Any,
                         timeout: float | None = None) -> str | None:
    """The command's output without one trailing newline. It runs without a
    shell, stdin closed, in its own session (killed whole at the timeout).
    Its output is never shown."""
    limit = PASSWORD_COMMAND_TIMEOUT if timeout is None else timeout
    try:
        argv = shlex.split(command) if isinstance(command, str) else list(command)
    except ValueError as exc:
        ctx.add(parts, f"cannot be split into words: {exc}")
        return None
    if not argv:
        ctx.add(parts, "expected a command, got an empty one")
        return None
    program = json.dumps(Path(argv[0]).name, ensure_ascii=False)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        ctx.add(parts, f"cannot run {program}: {exc.strerror or exc}")
        return None
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill(proc)
        ctx.add(parts, f"{program} did not finish within {limit:g} s (killed)")
        return None
    if proc.returncode != 0:
        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with status {proc.returncode}")
        ctx.add(parts, f"{program} {how} (its output is not shown)")
        return None
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        ctx.add(parts, f"{program} printed something that is not UTF-8 text")
        return None
    return _one_line(ctx, parts, text, f"the output of {program}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kills the command's whole session (children that hold its output too)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    if proc.stdout is not None:
        proc.stdout.close()
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:  # unkillable (D state): left to the OS
        pass
