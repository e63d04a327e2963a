"""Bad input gets a clear error and loses nothing (issue 12, first part):
NUL bytes in SQL, settings and column names, engine texts that are not
valid UTF-8, and a transaction used from two tasks at once. Engine-specific
cases are in tests/python/pg/test_pg_bad_input.py."""

from __future__ import annotations

import asyncio
from typing import Any

import polars as pl
import pytest

import db_pool
from db_pool import ConfigurationError, DatabasePool, InterfaceError, ProgrammingError

from conftest import assert_healthy


async def test_nul_in_sql_is_refused_not_cut(api: Any) -> None:
    """A script with a NUL byte used to loop forever in SQLite; every engine
    refuses it now, naming the offset."""
    await api.create_pool("db", url="sqlite:///:memory:")
    for call in (
        lambda: api.execute("db", "CREATE TABLE t (a INTEGER);\0 DROP TABLE t"),
        lambda: api.execute("db", "SELECT 1\0"),
        lambda: api.query("db", "SELECT ?\0", [1]),
        lambda: api.write_frame("db", pl.DataFrame({"a": [1]}), "t\0x"),
    ):
        with pytest.raises(ProgrammingError, match="NUL byte at offset"):
            await asyncio.wait_for(call(), 5)
    await assert_healthy(api, "db")


async def test_nul_in_settings_is_refused(api: Any) -> None:
    with pytest.raises(ConfigurationError, match="'journal_mode' contains a NUL byte"):
        await api.create_pool("db", url="sqlite:///:memory:", journal_mode="wal\0delete")
    with pytest.raises(ConfigurationError, match="'password' contains a NUL byte") as info:
        await api.create_pool("pg", db_type="postgresql", host="127.0.0.1", password="se\0cret")
    assert "se" not in str(info.value).replace("setting", "")  # the value is never shown
    assert api.list_pools() == []


async def test_nul_in_a_column_name_is_refused(api: Any) -> None:
    """Polars aborts the process exporting such a name; it never gets there."""
    await api.create_pool("db", url="sqlite:///:memory:")
    await api.execute("db", "CREATE TABLE t (a INTEGER)")
    with pytest.raises(ProgrammingError, match="column name 'a\\\\x00b'"):
        await api.write_frame("db", pl.DataFrame({"a\0b": [1]}), "t")
    assert (await api.query("db", "SELECT count(*) AS n FROM t")).item() == 0


async def test_engine_text_that_is_not_utf8_still_raises_its_error(api: Any) -> None:
    """SQLite puts the offending bytes of a bad identifier in its message;
    the error still arrives (never UnicodeDecodeError)."""
    await api.create_pool("db", url="sqlite:///:memory:")
    with pytest.raises(ProgrammingError) as info:
        await api.execute("db", "SELECT * FROM x" + "é" * 600)  # cut inside a character
    assert isinstance(str(info.value), str)
    await assert_healthy(api, "db")


async def test_transaction_used_by_two_tasks_raises_at_once(apool: DatabasePool) -> None:
    await apool.create_pool("db", url="sqlite:///:memory:", max_size=2)
    async with apool.transaction("db") as tx:
        slow = asyncio.ensure_future(tx.query(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
            "SELECT count(*) AS n FROM c"))
        await asyncio.sleep(0)  # the first task is inside its statement now
        with pytest.raises(InterfaceError, match="in use by another task"):
            await asyncio.wait_for(tx.query("SELECT 1 AS one"), 5)
        assert (await asyncio.wait_for(slow, 10)).item() == 300000
        assert (await tx.query("SELECT 1 AS one")).item() == 1
    await assert_healthy(apool, "db")


async def test_duplicate_column_names_get_suffixes(api: Any) -> None:
    """SELECT a.id, b.id ... gives id, id_1 (Polars needs unique names); a
    suffix never takes a name the query used itself."""
    await api.create_pool("db", url="sqlite:///:memory:")
    df = await api.query("db", "SELECT 1 AS id, 2 AS id, 3 AS id_1, 4 AS id")
    assert df.columns == ["id", "id_2", "id_1", "id_3"]
    assert df.row(0) == (1, 2, 3, 4)
    batches = [b async for b in api.stream("db", "SELECT 1 AS x, 2 AS x", batch_rows=1)]
    assert batches[0].columns == ["x", "x_1"]


async def test_sqlite_refuses_nan_instead_of_writing_null(api: Any) -> None:
    await api.create_pool("db", url="sqlite:///:memory:", max_size=1)
    await api.execute("db", "CREATE TABLE f (x REAL)")
    with pytest.raises(db_pool.DataError, match="NaN"):
        await api.execute("db", "INSERT INTO f VALUES (?)", [float("nan")])
    with pytest.raises(db_pool.DataError, match="NaN"):
        await api.write_frame("db", pl.DataFrame({"x": [1.0, float("nan")]}), "f")
    assert (await api.query("db", "SELECT count(*) AS n FROM f")).item() == 0  # all or nothing
    assert await api.execute("db", "INSERT INTO f VALUES (?)", [float("inf")]) == 1


def test_pool_used_from_a_second_event_loop_raises_at_once() -> None:
    """A DatabasePool is bound to the loop that first used it; another loop
    gets a clear error at once, never a hang."""
    pool = DatabasePool()

    async def first() -> None:
        await pool.create_pool("db", url="sqlite:///:memory:")
        assert (await pool.query("db", "SELECT 1 AS one")).item() == 1

    async def second() -> None:
        with pytest.raises(RuntimeError, match="bound to the event loop"):
            await asyncio.wait_for(pool.query("db", "SELECT 1 AS one"), 5)

    asyncio.run(first())
    asyncio.run(second())
    asyncio.run(pool.close())  # closing works from any loop


def _bad_arrow_tables() -> dict[str, Any]:
    import struct  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415  (write_frame takes any Arrow C stream)

    views = struct.pack("<i4sii", 20, b"abcd", 0, 100)  # 20 bytes at offset 100 of a 10-byte buffer
    return {
        "out of range in microseconds": pa.table({"a": pa.array([2**62], type=pa.timestamp("s"))}),
        "a date64 value with a time of day": pa.table({"a": pa.array([1], type=pa.date64())}),
        "outside 00:00 to 24:00": pa.table({"a": pa.array([90000], type=pa.time32("s"))}),
        "points outside its buffer": pa.table({"a": pa.Array.from_buffers(
            pa.string_view(), 1, [None, pa.py_buffer(views), pa.py_buffer(b"0123456789")])}),
    }


@pytest.mark.parametrize("what", list(_bad_arrow_tables()))
async def test_arrow_input_is_checked_before_it_is_read(api: Any, what: str) -> None:
    """Overflowing timestamps, date64 with a time of day, time32 past 24 h and
    string views pointing outside their buffers are refused (nothing is
    written), never read out of bounds or converted wrongly."""
    await api.create_pool("db", url="sqlite:///:memory:", max_size=1)
    await api.execute("db", "CREATE TABLE t (a)")
    with pytest.raises(db_pool.Error, match=what):
        await api.write_frame("db", _bad_arrow_tables()[what], "t")
    assert (await api.query("db", "SELECT count(*) AS n FROM t")).item() == 0
    await assert_healthy(api, "db")
