"""Reloading the configuration of running pools as a diff (docs/configuration.md,
"Reload"): pools added are created, pools changed are reconfigured in place
by the C core (dbp_manager_reconfigure_pool: no statement is cut short),
pools removed are closed within their close timeout. A reload either applies
whole or changes nothing: the new configuration is checked first, and a
pool that fails to change or open undoes the steps already taken."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ._config_model import MASK, Config, PoolConfig, Value, diff, native_arguments
from ._config import raise_problems
from .errors import ConfigProblem

if TYPE_CHECKING:
    from ._common import PoolRegistry

logger = logging.getLogger("db_pool")


@dataclass(frozen=True)
class PoolChange:
    """What a reload changed in one running pool. Options are (old, new);
    settings_changed names the settings that changed per endpoint address,
    never their values; connections_retired counts idle connections closed
    at once (in-use ones close when their callers are done with them)."""

    pool: str
    options: Mapping[str, tuple[Value, Value]] = field(default_factory=dict)
    endpoints_added: tuple[str, ...] = ()
    endpoints_removed: tuple[str, ...] = ()
    settings_changed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    connections_retired: int = 0

    def describe(self) -> str:
        parts = [f"{k} {_shown(k, a)} -> {_shown(k, b)}" for k, (a, b) in sorted(self.options.items())]
        parts += [f"endpoint {e} added" for e in self.endpoints_added]
        parts += [f"endpoint {e} removed" for e in self.endpoints_removed]
        parts += [f"endpoint {e}: {', '.join(keys)} changed"
                  for e, keys in sorted(self.settings_changed.items())]
        if self.connections_retired:
            parts.append(f"{self.connections_retired} idle connection(s) replaced")
        return f"pool {self.pool!r}: " + ("; ".join(parts) or "no change")


@dataclass(frozen=True)
class ReloadReport:
    """What a reload did: pools added, removed and changed."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[PoolChange, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def lines(self) -> list[str]:
        out = [f"pool {name!r} added" for name in self.added]
        out += [f"pool {name!r} removed" for name in self.removed]
        out += [c.describe() for c in self.changed]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines()) or "nothing changed"


def _shown(key: str, value: Value) -> str:
    return MASK if "password" in key else repr(value)


def _refuse_engine_changes(reg: PoolRegistry, new: Config) -> None:
    problems = [
        ConfigProblem(f"pools.{name}.engine",
                      f"changes from {reg._engines[name]!r} to {pc.engine!r}: a running pool "
                      "cannot change engine; close the pool and create it again, or give the "
                      "new one another name")
        for name, pc in new.pools.items()
        if name in reg._engines and reg._engines[name] != pc.engine
    ]
    raise_problems(problems, "the reload (nothing was changed)")


def _change(name: str, old: PoolConfig | None, new: PoolConfig, native: dict[str, Any]
            ) -> PoolChange:
    if old is not None:
        d = diff(Config({name: old}), Config({name: new})).changed.get(name)
        if d is not None:
            return PoolChange(name, d.options, d.endpoints_added, d.endpoints_removed,
                              d.settings_changed, native["connections_retired"])
    return PoolChange(name, connections_retired=native["connections_retired"])


_reload_lock = threading.Lock()


def reload(reg: PoolRegistry, new: Config, close_timeout: float) -> ReloadReport:
    """Applies `new` to the registry's pools, one reload at a time (the async
    API runs this in a worker thread)."""
    with _reload_lock:
        manager = reg._manager()
        _refuse_engine_changes(reg, new)
        old = dict(reg._configs)
        running = set(reg._engines)
        changed = [n for n in new.pools if n in running and old.get(n) != new.pools[n]]
        added = [n for n in new.pools if n not in running]
        removed = [n for n in running if n not in new.pools]
        # every pool's arguments first: a bad one fails before anything changes
        args = {n: native_arguments(new.pools[n]) for n in changed + added}
        done: list[str] = []
        opened: list[str] = []
        changes: list[PoolChange] = []
        try:
            for name in changed:
                engine, settings, options, _watch = args[name]
                result = reg._reconfigure_native(name, engine, settings, options)
                done.append(name)
                changes.append(_change(name, old.get(name), new.pools[name], result))
            for name in added:
                engine, settings, options, watch = args[name]
                n = reg._create_native(name, engine, settings, options)
                opened.append(name)
                reg._registered(name, engine, n, watch, new.pools[name])
        except BaseException:
            _undo(reg, done, opened, old, close_timeout)
            raise
        for name in changed:
            _engine, settings, _options, watch = args[name]
            reg._configs[name] = new.pools[name]
            reg._rewatch(name, 2 if name in reg._sentinels else len(settings), watch)
        for name in removed:
            reg._forget(name)
            manager.close_pool(name, close_timeout)
        report = ReloadReport(tuple(added), tuple(removed), tuple(changes))
        _announce(reg, report)
        return report


def _undo(reg: PoolRegistry, done: list[str], opened: list[str],
          old: Mapping[str, PoolConfig | None], close_timeout: float) -> None:
    manager = reg._manager()
    for name in opened:
        reg._unregister(name)
        manager.close_pool(name, close_timeout)
    for name in done:
        before = old.get(name)
        try:
            if before is None:
                raise ValueError("its previous configuration is not known")
            engine, settings, options, _watch = native_arguments(before)
            reg._reconfigure_native(name, engine, settings, options)
        except Exception as e:  # the reload's own error is what the caller gets
            logger.error("pool %r: could not undo a failed reload: %s", name, e)


def _announce(reg: PoolRegistry, report: ReloadReport) -> None:
    logger.info("configuration reloaded: %s", "; ".join(report.lines()) or "nothing changed")
    now = time.time()
    for line, name in ([(f"pool {n!r} added", n) for n in report.added]
                       + [(c.describe(), c.pool) for c in report.changed]):
        reg._record_event({"kind": "reload", "time": now, "pool_id": name, "endpoint": "",
                           "role": "", "old_role": "", "message": line})


class ConfigWatcher:
    """Reloads a configuration file when it changes (polled every
    `poll_interval` seconds) or when the process gets SIGHUP. A reload that
    fails is logged as an ERROR and changes nothing; the next change is
    tried again."""

    def __init__(self, reg: PoolRegistry, path: str, *, sighup: bool, poll_interval: float | None,
                 env: bool, close_timeout: float) -> None:
        import weakref

        self._reg = weakref.ref(reg)
        self._path = path
        self._env = env
        self._close_timeout = close_timeout
        self._poll = poll_interval
        self._stamp = self._file_stamp()
        self._due = threading.Event()
        self._stop = threading.Event()
        self._previous: Any = None
        self.reloads = 0  # reloads attempted, for tests and stats
        if sighup:
            import signal

            if threading.current_thread() is not threading.main_thread():
                raise ValueError("watch_config(sighup=True) must be called from the main thread "
                                 "(Python delivers signals there); pass sighup=False elsewhere")
            self._previous = signal.signal(signal.SIGHUP, lambda *_: self._due.set())
        self._thread = threading.Thread(target=self._run, name="db_pool-config-watch", daemon=True)
        self._thread.start()

    def _file_stamp(self) -> tuple[int, int] | None:
        import os

        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _run(self) -> None:
        from ._config_sources import load_config

        while not self._stop.is_set():
            self._due.wait(self._poll if self._poll is not None else 1.0)
            if self._stop.is_set():
                return
            stamp = self._file_stamp()
            if not self._due.is_set() and (self._poll is None or stamp == self._stamp):
                continue
            self._due.clear()
            self._stamp = stamp
            reg = self._reg()
            if reg is None or reg._native is None:
                return
            self.reloads += 1
            try:
                reload(reg, load_config(self._path, env=self._env), self._close_timeout)
            except Exception as e:
                logger.error("reloading %s failed, nothing was changed: %s", self._path, e)
            del reg

    def stop(self) -> None:
        self._stop.set()
        self._due.set()
        if self._previous is not None:
            import signal

            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGHUP, self._previous)
            self._previous = None
        if self._thread is not threading.current_thread():
            self._thread.join(5.0)
