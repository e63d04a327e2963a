"""reload() and watch_config() on SQLite: what a reload reports and changes,
what it refuses (changing nothing), SIGHUP and file-change reloads, and no
secret in any report or log line. Multi-endpoint reloads under load on real
replication are in failover/test_reload.py."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import db_pool
from db_pool import DatabasePool, SyncDatabasePool


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def pools(tmp_path: Path, **tables: dict[str, Any]) -> dict[str, Any]:
    return {"pools": {name: {"url": f"sqlite:///{tmp_path / (name + '.db')}", **t}
                      for name, t in tables.items()}}


def test_reload_reports_and_applies_each_kind_of_change(tmp_path: Path) -> None:
    with SyncDatabasePool.from_config(pools(tmp_path, a={"max_size": 4}, b={})) as pool:
        pool.execute("a", "CREATE TABLE t (x INTEGER)")
        report = pool.reload(pools(tmp_path, a={"max_size": 2, "acquire_timeout": 5}, c={}))
        assert report.added == ("c",)
        assert report.removed == ("b",)
        (change,) = report.changed
        assert change.pool == "a"
        assert dict(change.options) == {"max_size": (4, 2), "acquire_timeout": (30.0, 5.0)}
        assert str(report).splitlines() == [
            "pool 'c' added", "pool 'b' removed",
            "pool 'a': acquire_timeout 30.0 -> 5.0; max_size 4 -> 2"]
        assert sorted(pool.list_pools()) == ["a", "c"]
        assert pool.stats("a")["max_size"] == 2
        with pytest.raises(db_pool.PoolClosed):
            pool.query("b", "SELECT 1")
        assert pool.query("a", "SELECT count(*) AS n FROM t")["n"][0] == 0  # same database
        # the same configuration again changes nothing
        again = pool.reload(pools(tmp_path, a={"max_size": 2, "acquire_timeout": 5}, c={}))
        assert not again and str(again) == "nothing changed"


def test_an_endpoint_moves_and_the_old_one_drains(tmp_path: Path) -> None:
    with SyncDatabasePool.from_config(pools(tmp_path, a={})) as pool:
        pool.execute("a", "CREATE TABLE t (x INTEGER)")
        with pool.transaction("a") as tx:  # holds a connection to a.db across the reload
            tx.execute("INSERT INTO t VALUES (1)")
            moved = {"pools": {"a": {"url": f"sqlite:///{tmp_path / 'moved.db'}"}}}
            (change,) = pool.reload(moved).changed
            assert change.endpoints_removed == (str(tmp_path / "a.db"),)
            assert change.endpoints_added == (str(tmp_path / "moved.db"),)
            tx.execute("INSERT INTO t VALUES (2)")  # not cut short
        eps = pool.stats("a")["endpoints"]
        assert [e["removed"] for e in eps] == [True, False]
        wait_until(lambda: pool.stats("a")["endpoints"][0]["size"] == 0, 5, "old endpoint drained")
        with pytest.raises(db_pool.ProgrammingError, match="no such table"):
            pool.query("a", "SELECT * FROM t")  # new work goes to moved.db
    with SyncDatabasePool.from_config(pools(tmp_path, a={})) as check:
        assert check.query("a", "SELECT count(*) AS n FROM t")["n"][0] == 2  # committed


def test_refused_reloads_change_nothing(tmp_path: Path) -> None:
    with SyncDatabasePool.from_config(pools(tmp_path, a={"max_size": 3})) as pool:
        bad = pools(tmp_path, a={"max_size": 2, "max_szie": 4}, b={})
        with pytest.raises(db_pool.ConfigurationError) as e:
            pool.reload(bad)
        assert [p.path for p in e.value.problems] == ["pools.a.max_szie"]
        engine = {"pools": {"a": {"url": "postgresql://u:topsecret@127.0.0.1:1/x"}}}
        with pytest.raises(db_pool.ConfigurationError, match="cannot change engine") as e2:
            pool.reload(engine)
        assert "topsecret" not in str(e2.value)
        with pytest.raises(db_pool.ConfigurationError):
            pool.reload(str(tmp_path / "missing.toml"))
        assert pool.list_pools() == ["a"] and pool.stats("a")["max_size"] == 3
    with pytest.raises(db_pool.PoolClosed):
        pool.reload(pools(tmp_path, a={}))


def test_keyword_pools_reload_too(tmp_path: Path) -> None:
    with SyncDatabasePool() as pool:
        pool.create_pool("k", url=f"sqlite:///{tmp_path / 'k.db'}", max_size=3)
        (change,) = pool.reload(pools(tmp_path, k={"max_size": 5})).changed
        assert dict(change.options) == {"max_size": (3, 5)}


def test_reload_is_logged_and_an_event(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                           ) -> None:
    caplog.set_level(logging.INFO, logger="db_pool")
    with SyncDatabasePool.from_config(pools(tmp_path, a={})) as pool:
        report = pool.reload(pools(tmp_path, a={"init_sql": "PRAGMA cache_size = -4242"}))
        assert "init_sql" in str(report)
        assert any("configuration reloaded" in r.getMessage() for r in caplog.records)
        assert [e["kind"] for e in pool.stats("a")["events"]] == ["reload"]


def test_password_change_is_named_never_shown() -> None:
    change = db_pool.PoolChange("p", options={"password": ("old-secret", "new-secret")},
                                settings_changed={"h:1/db": ("password",)})
    text = change.describe()
    assert "old-secret" not in text and "new-secret" not in text
    assert "h:1/db: password changed" in text


def test_watch_config_reloads_on_file_change_and_sighup(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="db_pool")
    path = tmp_path / "db.toml"
    db = tmp_path / "w.db"

    def write(max_size: int, extra: str = "") -> None:
        path.write_text(f'[pools.w]\nurl = "sqlite:///{db}"\nmax_size = {max_size}\n{extra}')

    write(2)
    before = signal.getsignal(signal.SIGHUP)
    with SyncDatabasePool.from_config(path) as pool:
        pool.watch_config(path, poll_interval=0.05)
        write(7, "# longer file, so the size differs even within one mtime tick\n")
        wait_until(lambda: pool.stats("w")["max_size"] == 7, 5, "file change reloaded")
        # a broken file is logged and changes nothing
        write(3, "max_szie = 1\n")
        wait_until(lambda: any("reloading" in r.getMessage() and r.levelno == logging.ERROR
                               for r in caplog.records), 5, "failed reload logged")
        assert pool.stats("w")["max_size"] == 7
        # SIGHUP, with polling off
        pool.watch_config(path, poll_interval=None)
        write(4)
        os.kill(os.getpid(), signal.SIGHUP)
        wait_until(lambda: pool.stats("w")["max_size"] == 4, 5, "SIGHUP reloaded")
    assert signal.getsignal(signal.SIGHUP) == before  # close() gave SIGHUP back


def test_watch_config_with_sighup_needs_the_main_thread(tmp_path: Path) -> None:
    with SyncDatabasePool.from_config(pools(tmp_path, a={})) as pool:
        errors: list[BaseException] = []

        def other() -> None:
            try:
                pool.watch_config(tmp_path / "x.toml")
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join(5)
        assert len(errors) == 1 and "main thread" in str(errors[0])


async def test_async_reload(tmp_path: Path) -> None:
    pool = await DatabasePool.from_config(pools(tmp_path, a={"max_size": 2}))
    try:
        report = await pool.reload(pools(tmp_path, a={"max_size": 6}))
        assert dict(report.changed[0].options) == {"max_size": (2, 6)}
        assert pool.stats("a")["max_size"] == 6
        assert (await pool.query("a", "SELECT 1 AS one"))["one"][0] == 1
    finally:
        await pool.close()


def test_reload_racing_a_close_ends_cleanly(tmp_path: Path) -> None:
    """Reloads in a thread while the pool set closes: each reload either
    applies or raises PoolClosed; nothing hangs or crashes."""
    for _ in range(60):
        pool = SyncDatabasePool.from_config(pools(tmp_path, a={"max_size": 2}))
        outcomes: list[str] = []

        def reloads() -> None:
            for size in range(2, 12):
                try:
                    pool.reload(pools(tmp_path, a={"max_size": size}, b={}))
                    outcomes.append("ok")
                except db_pool.PoolClosed:
                    outcomes.append("closed")
                    return

        t = threading.Thread(target=reloads)
        t.start()
        pool.close(timeout=5)
        t.join(10)
        assert not t.is_alive()
        assert set(outcomes) <= {"ok", "closed"}
