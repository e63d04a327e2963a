"""Transactions (commit, rollback, isolation, read-only, failed ones) and
execute_many through libpq's pipeline: all rows or none, inside a
transaction too."""

from __future__ import annotations

from typing import Any

import pytest

from db_pool import DatabaseError, DataError, IntegrityError, OperationalError

from .conftest import POOL_ID, assert_healthy, pool_kwargs


def count(admin: Any, table: str = "t") -> int:
    return int(admin.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@pytest.fixture
def table(admin: Any) -> str:
    admin.execute("CREATE TABLE t (id int4 PRIMARY KEY, v text)")
    return "t"


async def test_commit(pg: Any, admin: Any, table: str) -> None:
    async with pg.transaction(POOL_ID) as tx:
        assert await tx.execute("INSERT INTO t VALUES ($1, $2)", [1, "a"]) == 1
        assert await tx.execute("INSERT INTO t VALUES (2, 'b')") == 1
        # visible inside, not outside yet
        assert (await tx.query("SELECT count(*) AS n FROM t")).item() == 2
        assert count(admin) == 0
    assert count(admin) == 2
    await assert_healthy(pg)


async def test_rollback_on_exception(pg: Any, admin: Any, table: str) -> None:
    with pytest.raises(RuntimeError, match="abort"):
        async with pg.transaction(POOL_ID) as tx:
            await tx.execute("INSERT INTO t VALUES ($1, $2)", [1, "a"])
            raise RuntimeError("abort")
    assert count(admin) == 0
    await assert_healthy(pg)


async def test_transaction_uses_one_connection(pg: Any) -> None:
    async with pg.transaction(POOL_ID) as tx:
        pids = {(await tx.query("SELECT pg_backend_pid() AS p")).item() for _ in range(5)}
        assert len(pids) == 1
        assert pg.stats(POOL_ID)["in_use"] == 1
        await tx.execute("SET LOCAL application_name = 'in-tx'")
        df = await tx.query("SELECT current_setting('application_name') AS a")
        assert df.item() == "in-tx"
    # SET LOCAL ended with the transaction
    df = await pg.query(POOL_ID, "SELECT current_setting('application_name') AS a")
    assert df.item() != "in-tx"
    await assert_healthy(pg)


async def test_isolation_serializable(pg: Any) -> None:
    sql = "SELECT current_setting('transaction_isolation') AS i, current_setting('transaction_read_only') AS r"
    async with pg.transaction(POOL_ID, isolation="serializable") as tx:
        assert (await tx.query(sql)).row(0) == ("serializable", "off")
    async with pg.transaction(POOL_ID, isolation="repeatable read") as tx:
        assert (await tx.query(sql)).row(0) == ("repeatable read", "off")
    async with pg.transaction(POOL_ID, isolation="Read Committed", readonly=True) as tx:
        assert (await tx.query(sql)).row(0) == ("read committed", "on")
    async with pg.transaction(POOL_ID, begin="ISOLATION LEVEL SERIALIZABLE, READ ONLY") as tx:
        assert (await tx.query(sql)).row(0) == ("serializable", "on")
    await assert_healthy(pg)


async def test_serialization_failure(apg: Any, admin: Any, table: str) -> None:
    """Two serializable transactions writing what the other read: one fails
    with 40001 (an OperationalError, as a retry is the answer)."""
    admin.execute("INSERT INTO t VALUES (1, 'x'), (2, 'y')")
    tx1 = apg.transaction(POOL_ID, isolation="serializable")
    tx2 = apg.transaction(POOL_ID, isolation="serializable")
    a = await tx1.__aenter__()
    b = await tx2.__aenter__()
    try:
        await a.query("SELECT count(*) AS n FROM t WHERE v = 'x'")
        await b.query("SELECT count(*) AS n FROM t WHERE v = 'y'")
        await a.execute("UPDATE t SET v = 'y' WHERE id = 1")
        await b.execute("UPDATE t SET v = 'x' WHERE id = 2")
        await a.__aexit__(None, None, None)
        with pytest.raises(OperationalError) as info:
            await b.__aexit__(None, None, None)
        assert info.value.sqlstate == "40001"
    finally:
        for tx in (tx1, tx2):
            tx._release()
    assert admin.execute("SELECT v FROM t ORDER BY id").fetchall() == [("y",), ("y",)]
    await assert_healthy(apg)


async def test_readonly_rejects_writes(pg: Any, admin: Any, table: str) -> None:
    with pytest.raises(DatabaseError) as info:
        async with pg.transaction(POOL_ID, readonly=True) as tx:
            assert (await tx.query("SELECT count(*) AS n FROM t")).item() == 0
            await tx.execute("INSERT INTO t VALUES ($1, $2)", [1, "a"])
    assert info.value.sqlstate == "25006"
    assert "read-only transaction" in str(info.value)
    assert count(admin) == 0
    await assert_healthy(pg)


async def test_error_then_commit_raises(pg: Any, admin: Any, table: str) -> None:
    """PostgreSQL answers COMMIT of a failed transaction with ROLLBACK and no
    error; the driver must report it."""
    with pytest.raises(DatabaseError) as info:
        async with pg.transaction(POOL_ID) as tx:
            await tx.execute("INSERT INTO t VALUES (1, 'kept?')")
            with pytest.raises(DataError):
                await tx.execute("SELECT 1 / 0")
            # the transaction is aborted now: further statements fail
            with pytest.raises(DatabaseError) as inner:
                await tx.query("SELECT 1 AS one")
            assert inner.value.sqlstate == "25P02"
            # leaving the block normally commits -> must raise
    assert "rolled back" in str(info.value)
    assert info.value.sqlstate == "40000"
    assert count(admin) == 0
    await assert_healthy(pg)


async def test_explicit_commit_statement_inside_a_transaction(pg: Any, admin: Any, table: str) -> None:
    """A COMMIT sent as SQL ends the transaction early; the block's own
    COMMIT then only warns (no transaction in progress)."""
    async with pg.transaction(POOL_ID) as tx:
        await tx.execute("INSERT INTO t VALUES (1, 'a')")
        await tx.execute("COMMIT")
    assert count(admin) == 1
    await assert_healthy(pg)


async def test_released_connection_has_no_open_transaction(
    api: Any, pg_server: Any, schema: str, admin: Any, table: str
) -> None:
    """BEGIN through execute() outside transaction(): the connection is
    rolled back before it goes back to the pool, so the next statement (on
    the same, only connection) runs on its own and commits."""
    await api.create_pool(POOL_ID, **pool_kwargs(pg_server, schema), max_size=1)
    await api.execute(POOL_ID, "BEGIN")
    await api.execute(POOL_ID, "INSERT INTO t VALUES (1, 'a')")
    assert count(admin) == 1
    await api.execute(POOL_ID, "BEGIN; INSERT INTO t VALUES (2, 'b')")
    assert count(admin) == 1  # rolled back on release
    df = await api.query(POOL_ID, "SELECT now() = statement_timestamp() AS fresh")
    assert df.item() is True  # not inside a leftover transaction


# ---- execute_many ------------------------------------------------------------------------

N = 10_000


async def test_execute_many_10k_rows(pg: Any, admin: Any, table: str) -> None:
    rows = [(i, f"v{i}") for i in range(N)]
    assert await pg.execute_many(POOL_ID, "INSERT INTO t VALUES ($1, $2)", rows) == N
    assert admin.execute("SELECT count(*), sum(id), min(v), max(v) FROM t").fetchone() == (
        N, N * (N - 1) // 2, "v0", "v9999"
    )
    # updates count every row changed
    assert await pg.execute_many(
        POOL_ID, "UPDATE t SET v = $2 WHERE id % 2 = $1", [(0, "even"), (1, "odd")]
    ) == N
    assert await pg.execute_many(POOL_ID, "DELETE FROM t WHERE id = $1", []) == 0
    await assert_healthy(pg)


async def test_execute_many_all_or_nothing(pg: Any, admin: Any, table: str) -> None:
    rows = [(i, "x") for i in range(N)]
    rows[N // 2] = (3, "duplicate of row 3")
    with pytest.raises(IntegrityError) as info:
        await pg.execute_many(POOL_ID, "INSERT INTO t VALUES ($1, $2)", rows)
    assert info.value.sqlstate == "23505"
    assert "row" in str(info.value)
    assert count(admin) == 0
    # a data error in the last row
    rows = [(i, "x") for i in range(N)] + [("not a number", "x")]
    with pytest.raises(DataError):
        await pg.execute_many(POOL_ID, "INSERT INTO t VALUES ($1, $2)", rows)
    assert count(admin) == 0
    await assert_healthy(pg)
    assert await pg.execute_many(POOL_ID, "INSERT INTO t VALUES ($1, $2)", rows[:-1]) == N


async def test_execute_many_inside_a_transaction(pg: Any, admin: Any, table: str) -> None:
    async with pg.transaction(POOL_ID) as tx:
        await tx.execute("INSERT INTO t VALUES (-1, 'before')")
        rows = [(i, "x") for i in range(N)]
        rows[-10] = (-1, "clash")
        with pytest.raises(IntegrityError):
            await tx.execute_many("INSERT INTO t VALUES ($1, $2)", rows)
        # only the failed execute_many was undone: the transaction goes on
        assert (await tx.query("SELECT count(*) AS n FROM t")).item() == 1
        assert await tx.execute_many("INSERT INTO t VALUES ($1, $2)", rows[:100]) == 100
        await tx.execute("INSERT INTO t VALUES (-2, 'after')")
    assert count(admin) == 102
    # and a successful one rolled back with its transaction
    with pytest.raises(RuntimeError):
        async with pg.transaction(POOL_ID) as tx:
            await tx.execute_many("INSERT INTO t VALUES ($1, $2)", [(N + i, "y") for i in range(N)])
            raise RuntimeError
    assert count(admin) == 102
    await assert_healthy(pg)


async def test_execute_many_returning_rows_and_selects(pg: Any, admin: Any, table: str) -> None:
    """Statements with results in a pipeline: the results are read and dropped."""
    n = await pg.execute_many(POOL_ID, "INSERT INTO t VALUES ($1, $2) RETURNING id", [(1, "a"), (2, "b")])
    assert n == 2
    assert await pg.execute_many(POOL_ID, "SELECT $1::int4", [(1,), (2,), (3,)]) >= 0
    assert count(admin) == 2
    await assert_healthy(pg)
