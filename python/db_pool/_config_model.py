"""The configuration model: pools -> engine, endpoints (settings per
endpoint), options. Built and checked by _config.py; compared by diff() (the
base of reload). Reprs and masked() never show a secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from . import _config_keys as K
from ._common import pool_arguments, split_watch_options

Value = str | int | float | bool | None
Part = str | int

#: Shown instead of a secret.
MASK = "***"


@dataclass(frozen=True, repr=False)
class EndpointConfig:
    """One endpoint's engine settings (canonical names, typed values)."""

    settings: Mapping[str, Value]

    def masked(self) -> dict[str, Value]:
        """The settings with every secret replaced by ``***``."""
        return {k: MASK if _is_secret(k) else v for k, v in self.settings.items()}

    def address(self) -> str:
        """host:port/database (what names an endpoint in stats(); no secret)."""
        s = self.settings
        where = str(s.get("host", "")) + (f":{s['port']}" if "port" in s else "")
        return f"{where}/{s.get('database', '')}" if where else str(s.get("database", ""))

    def __repr__(self) -> str:
        return f"EndpointConfig({self.masked()!r})"


@dataclass(frozen=True, repr=False)
class PoolConfig:
    """One pool: its engine, endpoints and every pool option (defaults filled
    in; None where an option has no default)."""

    name: str
    engine: str
    endpoints: tuple[EndpointConfig, ...]
    options: Mapping[str, Value]

    def masked(self) -> dict[str, Any]:
        """A plain dict of the pool with secrets replaced by ``***``."""
        return {"engine": self.engine, "endpoints": [e.masked() for e in self.endpoints],
                **{k: v for k, v in self.options.items() if v is not None}}

    def __repr__(self) -> str:
        return f"PoolConfig({self.name!r}, {self.masked()!r})"


@dataclass(frozen=True, repr=False)
class Config:
    """Every pool of a configuration, by name."""

    pools: Mapping[str, PoolConfig] = field(default_factory=dict)

    def masked(self) -> dict[str, Any]:
        """The configuration as a plain dict, secrets replaced by ``***``."""
        return {"pools": {name: p.masked() for name, p in self.pools.items()}}

    def __repr__(self) -> str:
        return f"Config({self.masked()!r})"


def _is_secret(name: str) -> bool:
    """Whether any engine's setting of that name is a secret (the key table says)."""
    return any(k.secret and k.name == name for e in K.ENGINE_KEYS for k in K.keys_of(e))


@dataclass(frozen=True)
class PoolDiff:
    """What changed in one pool: options (old, new), endpoints added and
    removed (by address), endpoints whose settings changed (the setting
    names; secrets as names only), and whether the engine changed."""

    engine_changed: bool
    options: Mapping[str, tuple[Value, Value]]
    endpoints_added: tuple[str, ...]
    endpoints_removed: tuple[str, ...]
    settings_changed: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class ConfigDiff:
    """What changed between two configurations (the base of reload)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: Mapping[str, PoolDiff]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff(old: Config, new: Config) -> ConfigDiff:
    """The pools added, removed and changed from ``old`` to ``new``."""
    changed: dict[str, PoolDiff] = {}
    for name in old.pools.keys() & new.pools.keys():
        a, b = old.pools[name], new.pools[name]
        if a == b:
            continue
        options = {k: (a.options.get(k), b.options.get(k))
                   for k in a.options.keys() | b.options.keys()
                   if a.options.get(k) != b.options.get(k)}
        eps_a = {e.address(): e for e in a.endpoints}
        eps_b = {e.address(): e for e in b.endpoints}
        settings = {}
        for addr in eps_a.keys() & eps_b.keys():
            sa, sb = eps_a[addr].settings, eps_b[addr].settings
            keys = tuple(sorted(k for k in sa.keys() | sb.keys() if sa.get(k) != sb.get(k)))
            if keys:
                settings[addr] = keys
        changed[name] = PoolDiff(
            engine_changed=a.engine != b.engine,
            options=options,
            endpoints_added=tuple(k for k in eps_b if k not in eps_a),
            endpoints_removed=tuple(k for k in eps_a if k not in eps_b),
            settings_changed=settings,
        )
    return ConfigDiff(
        added=tuple(n for n in new.pools if n not in old.pools),
        removed=tuple(n for n in old.pools if n not in new.pools),
        changed=changed,
    )


def native_arguments(pool: PoolConfig) -> tuple[str, list[dict[str, str]], dict[str, Any],
                                                dict[str, Any] | None]:
    """(engine, settings per endpoint, options) for the native create_pool,
    through create_pool's own path (pool_arguments), so a pool made from a
    configuration is made exactly as one made with keywords; and the
    options the Python layer watches with (alerts, leaks, slow queries)."""
    endpoints = [{k: v for k, v in e.settings.items() if v is not None} for e in pool.endpoints]
    options, watch = split_watch_options({k: v for k, v in pool.options.items() if v is not None})
    return (*pool_arguments(pool.engine, None, None, None, None, None, None, options, endpoints),
            watch)
