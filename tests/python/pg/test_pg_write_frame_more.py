"""write_frame on PostgreSQL beyond flat frames: List columns into arrays
(every element type, NULLs, quoting), Duration into interval, Struct into
jsonb, create=True with if_exists, LazyFrames, and write_frame inside a
transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import DataError, NotSupportedError, ProgrammingError

from .conftest import POOL_ID, assert_healthy

UTC = dt.timezone.utc

LISTS: dict[str, tuple[pl.DataType, list[Any]]] = {
    "li": (pl.List(pl.Int64), [[1, None, -(2**63)], [], None]),
    "lf": (pl.List(pl.Float64), [[1.5, float("inf"), float("-inf")], [-0.0, 5e-324], None]),
    "ls": (pl.List(pl.String), [["a b", 'q"', "back\\slash", "{,}", "NULL", ""], [None], None]),
    "lb": (pl.List(pl.Boolean), [[True, False, None], [], None]),
    "ld": (pl.List(pl.Date), [[dt.date(1, 1, 1), dt.date(9999, 12, 31)], [None], None]),
    "lt": (pl.List(pl.Datetime("us")), [[dt.datetime(2020, 1, 2, 3, 4, 5, 6)], [], None]),
    "lz": (pl.List(pl.Datetime("us", "UTC")), [[dt.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=UTC)], [], None]),
    "ln": (pl.List(pl.Decimal(10, 2)), [[Decimal("1.25"), Decimal("-0.01")], [None], None]),
    "ly": (pl.List(pl.Binary), [[b"\x00\xff", b""], [None], None]),
    "lu": (pl.List(pl.Duration("us")), [[dt.timedelta(days=1, microseconds=1)], [], None]),
}


def frame() -> pl.DataFrame:
    columns = {name: pl.Series(name, values, dtype=dtype) for name, (dtype, values) in LISTS.items()}
    return pl.DataFrame({
        "id": [1, 2, 3], **columns,
        "du": [dt.timedelta(days=-1, seconds=5), dt.timedelta(0), None],
        "st": [{"a": 1, "b": "x"}, None, {"a": None, "b": 'é"\\'}],
        "nul": [None, None, None],
        "en": pl.Series(["lo", None, "hi"], dtype=pl.Enum(["lo", "hi"])),
    })


async def test_create_and_read_back_lists_durations_structs(pg: Any, admin: Any) -> None:
    df = frame()
    assert await pg.write_frame(POOL_ID, df, "nested", create=True) == 3
    back = await pg.query(POOL_ID, "SELECT * FROM nested ORDER BY id")
    for name in LISTS:
        assert back[name].to_list() == df[name].to_list(), name
    assert back["du"].to_list() == df["du"].to_list()
    assert back["en"].to_list() == ["lo", None, "hi"] and back["nul"].to_list() == [None] * 3
    with admin.cursor() as cur:
        cur.execute("SELECT st, pg_typeof(st)::text, pg_typeof(li)::text, pg_typeof(du)::text "
                    "FROM nested ORDER BY id")
        rows = cur.fetchall()
    assert [r[0] for r in rows] == df["st"].to_list()
    assert rows[0][1:] == ("jsonb", "bigint[]", "interval")
    await assert_healthy(pg)


async def test_lists_into_an_existing_table(pg: Any, admin: Any) -> None:
    admin.execute("CREATE TABLE arr (i int4[], s varchar(10)[], j jsonb)")
    df = pl.DataFrame({"i": [[1, 2], None], "s": [["x", None], ["y"]], "j": [{"k": [1]}, None]})
    assert await pg.write_frame(POOL_ID, df.lazy(), "arr") == 2
    assert admin.execute("SELECT i, s, j FROM arr").fetchall() == [([1, 2], ["x", None], {"k": [1]}),
                                                                    (None, ["y"], None)]


async def test_if_exists_and_transactions(pg: Any) -> None:
    df = pl.DataFrame({"a": [1, 2]})
    await pg.write_frame(POOL_ID, df, "t", create=True)
    with pytest.raises(ProgrammingError, match="already exists") as info:
        await pg.write_frame(POOL_ID, df, "t", create=True, if_exists="fail")
    assert info.value.sqlstate == "42P07"
    await pg.write_frame(POOL_ID, {"b": ["x"]}, "t", create=True, if_exists="replace")
    assert (await pg.query(POOL_ID, "SELECT * FROM t")).to_dict(as_series=False) == {"b": ["x"]}
    with pytest.raises(RuntimeError):
        async with pg.transaction(POOL_ID) as tx:
            await tx.write_frame(pl.DataFrame({"b": ["y", "z"]}), "t")
            assert (await tx.query("SELECT count(*) AS n FROM t")).item() == 3
            raise RuntimeError("roll back")
    assert (await pg.query(POOL_ID, "SELECT count(*) AS n FROM t")).item() == 1
    await assert_healthy(pg)


async def test_nested_lists_are_refused_before_writing(pg: Any) -> None:
    with pytest.raises(NotSupportedError, match="column 'll'.*nested"):
        await pg.write_frame(POOL_ID, pl.DataFrame({"ll": [[[1]]]}), "x", create=True)
    with pytest.raises(ProgrammingError, match="does not exist"):  # nothing was created
        await pg.query(POOL_ID, "SELECT * FROM x")


async def test_binary_copy_checks_ranges_itself_and_text_copy_leaves_it_to_the_server(pg: Any, admin: Any) -> None:
    """Frames whose columns all have a binary COPY form go binary: an int4
    column and 2^40 is our DataError naming the column; with a List column
    beside it (text only) the server's own error says the same."""
    admin.execute("CREATE TABLE r (i int4, a int4[], u uuid)")
    with pytest.raises(DataError, match="column 'i': 1099511627776 is out of range for integer"):
        await pg.write_frame(POOL_ID, pl.DataFrame({"i": [1, 2**40]}), "r")
    with pytest.raises(DataError, match='out of range for type integer') as info:
        await pg.write_frame(POOL_ID, pl.DataFrame({"i": [1, 2**40], "a": [[1], [2]]}), "r")
    assert info.value.sqlstate == "22003"
    with pytest.raises(DataError, match="invalid input syntax for type uuid"):
        await pg.write_frame(POOL_ID, pl.DataFrame({"u": ["{a0eebc99-9c0b4ef8-bb6d-6bb9bd380a11}", "nope"]}), "r")
    assert await pg.write_frame(POOL_ID, pl.DataFrame({"u": ["{A0EEBC99-9C0B4EF8-BB6D-6BB9BD380A11}"]}), "r") == 1
    assert admin.execute("SELECT count(*), min(u::text) FROM r").fetchone() == (1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    await assert_healthy(pg)
