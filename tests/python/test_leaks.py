"""Leak detection and the slow-query log on real SQLite pools: a lease held
past leak_detection_threshold is reported once, naming the function that
took it; a slow statement is logged once, without its parameters unless
log_parameters=True."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from db_pool import DatabasePool, SyncDatabasePool, SyncTransaction

TICK = 0.05
#: About 0.1-0.3 s of SQLite work on this machine (counting a million rows).
SLOW = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
        "SELECT x FROM c WHERE x % 250000 = 0")


def records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "db_pool" and text in r.getMessage()]


def leaky_helper_that_forgets_its_transaction(pool: SyncDatabasePool) -> SyncTransaction:
    tx = pool.transaction("leaky")
    tx.__enter__()
    tx.execute("SELECT 'the leaking statement'")
    return tx


def test_a_leak_is_reported_once_with_the_holders_stack(
        spool: SyncDatabasePool, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="db_pool")
    events: list[dict[str, Any]] = []
    db = tmp_path / "leaky.db"
    spool.create_pool("leaky", url=f"sqlite:///{db}", leak_detection_threshold=0.3,
                      alert_interval=TICK, on_alert=events.append,
                      alerts=[{"rule": "leak_suspected"}])
    start = time.monotonic()
    tx = leaky_helper_that_forgets_its_transaction(spool)
    deadline = time.monotonic() + 5
    while not records(caplog, "leak suspected") and time.monotonic() < deadline:
        time.sleep(TICK / 2)
    reported = time.monotonic()
    assert 0.3 <= reported - start <= 0.3 + 2 * TICK + 0.5
    time.sleep(0.5)  # many more evaluations: still one report
    (leak,) = records(caplog, "leak suspected")
    text = leak.getMessage()
    assert leak.levelno == logging.WARNING
    assert "pool 'leaky'" in text and str(db) in text
    assert "last SQL: SELECT 'the leaking statement'" in text
    assert "leaky_helper_that_forgets_its_transaction" in text
    assert "test_a_leak_is_reported_once_with_the_holders_stack" in text
    assert "_sync.py" not in text  # the pool's own frames say nothing
    kinds = [e["kind"] for e in events]
    assert kinds == ["leak", "firing"], kinds
    assert events[0]["endpoint"] == str(db) and "leaky_helper" in events[0]["stack"]
    snap = spool.metrics("leaky")
    assert snap["dbpool_leaks_reported_total"][0]["value"] == 1
    tx.__exit__(None, None, None)
    (back,) = records(caplog, "reported as leaked")
    assert back.levelno == logging.INFO
    deadline = time.monotonic() + 5
    while len(events) < 3 and time.monotonic() < deadline:
        time.sleep(TICK)
    assert [e["kind"] for e in events] == ["leak", "firing", "resolved"]


def test_leases_returned_in_time_are_not_reported(
        spool: SyncDatabasePool, caplog: pytest.LogCaptureFixture) -> None:
    spool.create_pool("ok", url="sqlite:///:memory:", leak_detection_threshold=0.3,
                      alert_interval=TICK)
    for _ in range(3):
        with spool.transaction("ok") as tx:
            tx.execute("SELECT 1")
            time.sleep(0.1)
        assert list(spool.stream("ok", "SELECT 1")) != []
    time.sleep(0.4)
    assert records(caplog, "leak") == []


def test_without_the_option_nothing_is_captured(spool: SyncDatabasePool) -> None:
    spool.create_pool("off", url="sqlite:///:memory:")
    with spool.transaction("off") as tx:
        assert tx._leak is None
    assert spool._watcher.pools == {}


async def leaky_coroutine(pool: DatabasePool) -> Any:
    stream = pool.stream("aleak", "SELECT 1 UNION ALL SELECT 2", batch_rows=1)
    await stream.__anext__()
    return stream


async def test_an_async_stream_left_open_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    pool = DatabasePool()
    try:
        await pool.create_pool("aleak", url="sqlite:///:memory:", leak_detection_threshold=0.2,
                               alert_interval=TICK)
        stream = await leaky_coroutine(pool)
        deadline = time.monotonic() + 5
        while not records(caplog, "leak suspected") and time.monotonic() < deadline:
            await asyncio.sleep(TICK)
        (leak,) = records(caplog, "leak suspected")
        assert "leaky_coroutine" in leak.getMessage()
        assert "test_an_async_stream_left_open_is_reported" in leak.getMessage()
        assert "last SQL: SELECT 1 UNION ALL SELECT 2" in leak.getMessage()
        await stream.aclose()
    finally:
        await pool.close()


async def test_slow_statements_are_logged_once_each(
        api: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="db_pool")
    await api.create_pool("slow", url="sqlite:///:memory:", slow_query_threshold=0.05)
    started = time.monotonic()
    df = await api.query("slow", SLOW, [1_000_000])
    took = time.monotonic() - started
    if took < 0.05:
        pytest.skip(f"the slow query took only {took:.3f} s here")
    await api.query("slow", "SELECT 1")  # fast: not logged
    await api.execute("slow", "CREATE TABLE t(x)")
    (line,) = records(caplog, "slow statement")
    text = line.getMessage()
    assert line.levelno == logging.WARNING
    assert f"{df.height} rows" in text and df.height == 4
    assert "pool 'slow'" in text and "endpoint :memory:" in text
    assert "WITH RECURSIVE c(x)" in text
    assert "1000000" not in text  # the parameter is not shown
    logged = float(text.split("(")[1].split(" s")[0])
    assert 0.05 <= logged <= took + 0.01
    assert api.metrics("slow")["dbpool_slow_queries_total"][0]["value"] == 1

    async with api.transaction("slow") as tx:
        await tx.query(SLOW, [1_000_001])
    assert len(records(caplog, "slow statement")) == 2


async def test_parameters_are_logged_only_when_asked(
        api: Any, caplog: pytest.LogCaptureFixture) -> None:
    await api.create_pool("p", url="sqlite:///:memory:", slow_query_threshold=0.0,
                          log_parameters=True)
    await api.create_pool("q", url="sqlite:///:memory:", slow_query_threshold=0.0)
    await api.query("p", "SELECT ? AS marker", ["param-value-7391"])
    await api.query("q", "SELECT ? AS marker", ["param-value-8264"])
    text = "\n".join(r.getMessage() for r in records(caplog, "slow statement"))
    assert "parameters: ['param-value-7391']" in text
    assert "param-value-8264" not in text
    assert len(records(caplog, "slow statement")) == 2
