"""Which pools a `db-pool` command opens: the configuration comes from
``--config FILE`` (TOML, optionally overridden by the environment with
``--env``), else from the environment (DB_POOL_<POOL>_URL, DATABASE_URL);
a command that names a pool may name a URL instead. Only the pools a
command needs are opened, and they are closed within a bound.
"""

from __future__ import annotations

import argparse
import re
from contextlib import asynccontextmanager
from typing import AsyncIterator, Sequence

from ._cli_base import UsageError
from ._config_model import Config
from ._config_sources import config_from_env, config_from_url, load_config
from ._async import DatabasePool

#: The pool made from a URL given in place of a pool name.
URL_POOL_ID = "cli"
#: Bound on closing the pools when a command ends (seconds).
CLOSE_TIMEOUT = 10.0

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|sqlite:")


def is_url(text: str) -> bool:
    """Whether a POOL argument is a database URL rather than a pool name."""
    return bool(_URL.match(text))


def shown_name(name: str) -> str:
    """A pool name as messages show it; something that looks like it holds
    credentials (user:password@host) is not shown."""
    if "@" in name or ":" in name:
        return "(a name that looks like a URL, not shown)"
    return repr(name)


def source_label(args: argparse.Namespace) -> str:
    """Where the configuration comes from, for messages."""
    config = getattr(args, "config", None)
    if config:
        return str(config) + (" and the environment" if getattr(args, "env", False) else "")
    return "the environment"


def load(args: argparse.Namespace) -> Config:
    """The configuration a command names (ConfigurationError if invalid).
    Nothing connects."""
    path = getattr(args, "config", None)
    if path:
        return load_config(path, env=bool(getattr(args, "env", False)))
    return config_from_env()


def select(config: Config, names: Sequence[str], where: str) -> Config:
    """The pools ``names`` of ``config`` (all when empty); UsageError for a
    name it does not have."""
    if not names:
        return config
    missing = [n for n in names if n not in config.pools]
    if missing:
        known = ", ".join(sorted(config.pools)) or "none"
        raise UsageError(f"no pool named {shown_name(missing[0])} in {where} (its pools: {known})")
    return Config({n: config.pools[n] for n in dict.fromkeys(names)})


def for_pool(args: argparse.Namespace, pool: str) -> tuple[Config, str]:
    """The configuration of the one pool a command works on and its id:
    ``pool`` is a pool name (of --config or the environment) or a URL."""
    if is_url(pool):
        if getattr(args, "config", None):
            raise UsageError("give a pool name with --config, or a URL without it, not both")
        return config_from_url(pool, URL_POOL_ID), URL_POOL_ID
    return select(load(args), [pool], source_label(args)), pool


@asynccontextmanager
async def opened(config: Config, close_timeout: float = CLOSE_TIMEOUT
                 ) -> AsyncIterator[DatabasePool]:
    """The pools of ``config``, open (each connects min_size connections
    now, so bad settings fail here), closed within ``close_timeout`` at the
    end whatever happens (Ctrl-C included: the asyncio API cancels a
    running statement on the server and leaves the pool whole)."""
    pool = await DatabasePool._from_model(config)
    try:
        yield pool
    finally:
        await pool.close(timeout=close_timeout)
