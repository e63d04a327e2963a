"""write_frame on MySQL/MariaDB (LOAD DATA LOCAL INFILE fed from the frame
packet by packet): all rows or none, and a value the server would change or
drop (LOAD DATA LOCAL makes those warnings, not errors) or that MySQL cannot
hold fails the whole load."""

from __future__ import annotations

import polars as pl
import pytest

from db_pool import DataError, SyncDatabasePool


@pytest.fixture
def pool(mysql_dsn: str) -> SyncDatabasePool:
    p = SyncDatabasePool()
    p.create_pool("my", url=mysql_dsn)
    yield p  # type: ignore[misc]
    p.close()


def count(pool: SyncDatabasePool, table: str) -> int:
    return int(pool.query("my", f"SELECT count(*) AS n FROM {table}")["n"][0])


@pytest.mark.parametrize("frame, message", [
    (pl.DataFrame({"s": ["ok", "too long"], "n": [1, 2]}), "Data truncated for column 's'"),
    (pl.DataFrame({"s": ["ok"], "n": [1000]}), "Out of range value for column 'n'"),
    (pl.DataFrame({"s": ["a", "a"], "n": [1, 1]}), "Duplicate entry"),
])
def test_a_value_the_server_would_change_fails_the_load(pool: SyncDatabasePool, table_name: str,
                                                        frame: pl.DataFrame, message: str) -> None:
    pool.execute("my", f"CREATE TABLE {table_name} (s VARCHAR(3) PRIMARY KEY, n TINYINT)")
    with pytest.raises(DataError, match=message):
        pool.write_frame("my", frame, table_name)
    assert count(pool, table_name) == 0
    assert pool.write_frame("my", pl.DataFrame({"s": ["x"], "n": [1]}), table_name) == 1


def test_a_late_failure_leaves_nothing(pool: SyncDatabasePool, table_name: str) -> None:
    n = 300_000  # about 15 MB of rows: hundreds of packets went in before the bad one
    good = pl.DataFrame({"id": range(n), "s": [f"row {i:>30}" for i in range(n)]})
    pool.execute("my", f"CREATE TABLE {table_name} (id INT PRIMARY KEY, s VARCHAR(40))")
    bad = good.with_columns(pl.when(pl.col("id") == n - 1).then(pl.lit("x" * 41))
                            .otherwise(pl.col("s")).alias("s"))  # fails on the last row
    with pytest.raises(DataError):
        pool.write_frame("my", bad, table_name)
    assert count(pool, table_name) == 0  # the rows before it were rolled back with it
    assert pool.write_frame("my", good, table_name) == n
    df = pool.query("my", f"SELECT id, s FROM {table_name} ORDER BY id")
    assert df.equals(good.with_columns(pl.col("id").cast(pl.Int32)))


def test_a_value_mysql_cannot_hold_stops_the_load_midway(pool: SyncDatabasePool,
                                                        table_name: str) -> None:
    n = 200_000
    frame = pl.DataFrame({"id": range(n), "f": [0.5] * (n - 1) + [float("nan")]})
    pool.execute("my", f"CREATE TABLE {table_name} (id INT, f DOUBLE)")
    with pytest.raises(DataError, match="no NaN"):  # our own error, not the connector's
        pool.write_frame("my", frame, table_name)
    assert count(pool, table_name) == 0
    assert pool.query("my", "SELECT 1 AS one")["one"][0] == 1  # the session is fine


def test_inside_a_transaction_the_caller_decides(pool: SyncDatabasePool, table_name: str) -> None:
    pool.execute("my", f"CREATE TABLE {table_name} (id INT)")
    with pytest.raises(RuntimeError), pool.transaction("my") as tx:
        tx.write_frame(pl.DataFrame({"id": [1, 2]}), table_name)
        raise RuntimeError("roll back")
    assert count(pool, table_name) == 0
    with pool.transaction("my") as tx:
        assert tx.write_frame(pl.DataFrame({"id": [1, 2]}), table_name) == 2
    assert count(pool, table_name) == 2


def test_identifiers_are_quoted(pool: SyncDatabasePool, table_name: str) -> None:
    weird = "a`b; DROP TABLE x"
    pool.write_frame("my", pl.DataFrame({weird: [1]}), table_name, create=True)
    assert pool.query("my", f"SELECT * FROM {table_name}").columns == [weird]
