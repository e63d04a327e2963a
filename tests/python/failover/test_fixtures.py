"""The failover fixtures themselves, checked with psycopg (not db_pool): the
standby really replicates synchronously, a promoted standby has every write
the dead primary acknowledged, and PgBouncer really pools by transaction."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from pg_cluster import PgCluster
from pgbouncer import PgBouncer


def connect(dsn: str, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5, **kwargs)


def poll(predicate: Any, timeout: float, what: str, interval: float = 0.01) -> None:
    """Calls predicate() until it is true; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s")
        time.sleep(interval)


def test_standby_replicates_and_is_read_only(pg_cluster: PgCluster) -> None:
    assert not pg_cluster.is_in_recovery(0)
    assert pg_cluster.is_in_recovery(1)
    assert [r[1:] for r in pg_cluster.streaming()] == [("streaming", "quorum")]
    with connect(pg_cluster.primary_dsn) as primary, connect(pg_cluster.standby_dsn) as standby:
        primary.execute("CREATE TABLE t (id int PRIMARY KEY)")
        primary.execute("INSERT INTO t VALUES (1)")

        def replicated() -> bool:
            try:
                return standby.execute("SELECT count(*) FROM t").fetchone() == (1,)
            except psycopg.errors.UndefinedTable:
                return False

        poll(replicated, 1.0, "the row on the standby")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            standby.execute("INSERT INTO t VALUES (2)")


def test_promoted_standby_has_every_acknowledged_write(pg_cluster: PgCluster) -> None:
    """5 threads insert rows (autocommit) on the primary; after 100 acknowledged
    rows the primary is crashed. Every acknowledged row must be on the promoted
    standby; the only others allowed are the one insert per thread that was in
    flight at the crash (committed, but its acknowledgement lost)."""
    threads_n, kill_after = 5, 100
    with connect(pg_cluster.primary_dsn) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    acked: list[int] = []  # list.append is atomic
    errors: list[BaseException | None] = [None] * threads_n
    start = threading.Barrier(threads_n + 1)

    def writer(n: int) -> None:
        with connect(pg_cluster.primary_dsn) as conn:
            start.wait(10)
            deadline = time.monotonic() + 30  # bounded even if the kill never comes
            i = 0
            while time.monotonic() < deadline:
                row_id = n * 1_000_000 + i
                try:
                    conn.execute("INSERT INTO t VALUES (%s)", (row_id,))
                except psycopg.OperationalError as exc:
                    errors[n] = exc
                    return
                acked.append(row_id)
                i += 1

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(threads_n)]
    for t in threads:
        t.start()
    start.wait(10)
    poll(lambda: len(acked) >= kill_after, 20, f"{kill_after} acknowledged inserts")
    pg_cluster.kill(0)
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert all(isinstance(e, psycopg.OperationalError) for e in errors), errors  # cut mid-way
    acknowledged = set(acked)

    pg_cluster.promote(1)
    assert not pg_cluster.is_in_recovery(1)
    with connect(pg_cluster.standby_dsn) as conn:
        on_standby = {r[0] for r in conn.execute("SELECT id FROM t").fetchall()}
        assert acknowledged - on_standby == set(), "acknowledged writes lost"
        assert len(on_standby - acknowledged) <= threads_n, sorted(on_standby - acknowledged)
        conn.execute("INSERT INTO t VALUES (-1)")  # takes writes, without waiting for a standby
        assert conn.execute("SELECT count(*) FROM t WHERE id = -1").fetchone() == (1,)


def test_stop_and_start_standby(pg_cluster: PgCluster) -> None:
    """While the synchronous standby is down the primary's commits wait for it
    (wait_event SyncRep) and go through once it is back."""
    with connect(pg_cluster.primary_dsn) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    pg_cluster.stop(1)
    assert pg_cluster.streaming() == []

    done = threading.Event()

    def insert() -> None:
        with connect(pg_cluster.primary_dsn) as conn:
            conn.execute("INSERT INTO t VALUES (1)")
        done.set()

    writer = threading.Thread(target=insert, daemon=True)
    writer.start()
    poll(lambda: pg_cluster.sql(
        0, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") == "1",
        10, "the insert waiting for the standby (SyncRep)", interval=0.05)
    assert not done.is_set()

    pg_cluster.start(1)
    assert pg_cluster.is_in_recovery(1)
    writer.join(10)
    assert done.is_set()
    pg_cluster.wait_streaming(10)
    with connect(pg_cluster.standby_dsn) as conn:
        poll(lambda: conn.execute("SELECT count(*) FROM t").fetchone() == (1,), 1.0,
             "the row on the restarted standby")


def test_pgbouncer_transaction_pooling(pgbouncer: PgBouncer) -> None:
    with connect(pgbouncer.dsn) as conn:
        assert conn.execute("SELECT %s::int + 1", (41,)).fetchone() == (42,)
        assert conn.execute("SELECT current_user").fetchone() == ("dbpool_test",)
    with connect(pgbouncer.admin_dsn) as admin:
        pools = admin.execute("SHOW POOLS").fetchall()
        cols = [c.name for c in admin.execute("SHOW POOLS").description or []]
        config = {row[0]: row[1] for row in admin.execute("SHOW CONFIG").fetchall()}
    mode = {row[0]: row[cols.index("pool_mode")] for row in pools}
    assert mode["dbpool_test"] == "transaction"
    assert config["max_client_conn"] == "200"
    assert config["default_pool_size"] == "10"
    # 1.21+ could keep prepared statements across server connections: left off
    assert config.get("max_prepared_statements", "0") == "0"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pgbouncer.dsn.replace(":dbpool-secret@", ":wrong@"), connect_timeout=5)


def test_pgbouncer_two_clients_unnamed_statements(pgbouncer: PgBouncer) -> None:
    """Two clients run parameterized queries (Parse/Bind of the unnamed
    statement: psycopg with prepare_threshold=None never names one) at once,
    in autocommit and in explicit transactions, sharing PgBouncer's servers."""
    rounds = 100
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def client(n: int) -> None:
        try:
            with connect(pgbouncer.dsn, prepare_threshold=None) as conn:
                start.wait(10)
                for i in range(rounds):
                    got = conn.execute("SELECT %s::int * 2, %s::text", (i, f"c{n}")).fetchone()
                    assert got == (i * 2, f"c{n}")
                    with conn.transaction():
                        got = conn.execute("SELECT %s::int + %s::int", (n, i)).fetchone()
                        assert got == (n + i,)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert not any(t.is_alive() for t in threads)
