"""`db-pool check`: validates a configuration (all problems at once, each
with its path; exit 2), prints the effective configuration with every
secret masked (TOML that reads back, or JSON), and with ``--connect`` opens
one connection to each endpoint, each within a bound (exit 1 if any
fails). It never creates a SQLite file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import time
from typing import Any, Mapping

from . import _config_keys as K
from ._cli_base import EXIT_FAILURE, EXIT_OK, one_line
from ._cli_output import print_json
from ._cli_pools import load, select, source_label
from ._config_model import Config, EndpointConfig, PoolConfig
from ._async import DatabasePool
from .errors import Error

#: Bound on opening one endpoint's connection with --connect (seconds).
CONNECT_TIMEOUT = 5.0


async def run_check(args: argparse.Namespace) -> int:
    where = source_label(args)
    config = select(load(args), args.pool or [], where)
    if args.format == "json":
        print_json(config.masked())
    else:
        print(f"# effective configuration of {where}: {len(config.pools)} pool"
              f"{'s' * (len(config.pools) != 1)}, secrets masked")
        print(toml_text(config.masked()), end="", flush=True)
    if not args.connect:
        return EXIT_OK
    failed = 0
    for name, pool in config.pools.items():
        for i, endpoint in enumerate(pool.endpoints):
            ok, message = await try_endpoint(pool, i, args.timeout)
            failed += not ok
            print(f"# connect pools.{_key(name)}.endpoints[{i}] ({endpoint.address()}): "
                  f"{message}", flush=True)
    return EXIT_FAILURE if failed else EXIT_OK


# ---- --connect ---------------------------------------------------------------------------


async def try_endpoint(pool: PoolConfig, index: int, timeout: float) -> tuple[bool, str]:
    """(ok, what happened) of opening one connection to one endpoint and
    running SELECT 1, each bounded by ``timeout`` seconds."""
    endpoint = pool.endpoints[index]
    if pool.engine == "sqlite":
        missing = _sqlite_missing(endpoint)
        if missing is not None:
            return missing
    options = {k: v for k, v in pool.options.items() if k not in K.WATCH_OPTIONS}
    connect = options.get("connect_timeout")
    options.update(min_size=1, max_size=1, read_from="primary", acquire_timeout=timeout,
                   connect_timeout=min(float(connect), timeout)
                   if isinstance(connect, (int, float)) else timeout)
    one = dataclasses.replace(pool, endpoints=(endpoint,), options=options)
    started = time.monotonic()
    try:
        async with await DatabasePool._from_model(Config({pool.name: one})) as probe:
            await probe.query(pool.name, "SELECT 1 AS one", timeout=timeout)
    except Error as exc:
        return False, f"failed: {type(exc).__name__}: {one_line(str(exc))}"
    return True, f"ok ({(time.monotonic() - started) * 1000:.0f} ms)"


def _sqlite_missing(endpoint: EndpointConfig) -> tuple[bool, str] | None:
    """For a SQLite file that does not exist: what the pool would do (it
    creates it in mode rwc), without creating it. None when it exists or
    is not a plain file path."""
    s = endpoint.settings
    path = str(s.get("database", ""))
    if path in ("", ":memory:") or path.startswith("file:") or os.path.exists(path):
        return None
    if s.get("mode", "rwc") != "rwc":
        return False, f"failed: {path} does not exist (mode {s.get('mode')} does not create it)"
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        return False, f"failed: {path} does not exist and its directory cannot be written"
    return True, f"ok ({path} does not exist yet: the pool will create it)"


# ---- TOML ------------------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+\Z")


def _key(name: str) -> str:
    return name if _BARE.match(name) else json.dumps(name, ensure_ascii=False)


def _value(value: Any) -> str:
    """One TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string too
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def toml_text(masked: Mapping[str, Any]) -> str:
    """A masked configuration (Config.masked()) as a TOML file: one
    [pools.NAME] table per pool, its endpoints as [[pools.NAME.endpoints]]."""
    lines: list[str] = []
    for name, pool in masked["pools"].items():
        head = f"pools.{_key(name)}"
        lines.append(f"\n[{head}]")
        for k, v in pool.items():
            if k != "endpoints" and v is not None:
                lines.append(f"{_key(k)} = {_value(v)}")
        for endpoint in pool.get("endpoints", ()):
            lines.append(f"\n[[{head}.endpoints]]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in endpoint.items() if v is not None]
    return "\n".join(lines).lstrip("\n") + "\n"
