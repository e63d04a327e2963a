"""write_frame on MSSQL beyond flat frames: List and Struct columns as JSON
text, Null/Enum/Time columns, create=True with if_exists, dicts and
LazyFrames, write_frame inside a transaction; durations, which SQL Server
has no type for, are refused before anything is written."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from db_pool import NotSupportedError, ProgrammingError

from .conftest import POOL_ID, assert_healthy


async def test_create_with_nested_and_odd_columns(ms: Any, table: str) -> None:
    df = pl.DataFrame({
        "id": [1, 2, 3],
        "l": [[1, 2, None], None, []],
        "st": [{"a": 1, "b": "x"}, None, {"a": None, "b": 'é"\\'}],
        "nul": [None, None, None],
        "en": pl.Series(["lo", None, "hi"], dtype=pl.Enum(["lo", "hi"])),
        "t": [dt.time(1, 2, 3), None, dt.time(23, 59, 59, 999999)],
        "d": [Decimal("1.25"), None, Decimal("-3.50")],
        "ts": pl.Series([dt.datetime(2020, 1, 1, 12), None, None]).dt.replace_time_zone("UTC"),
    })
    assert await ms.write_frame(POOL_ID, df, table, create=True) == 3
    back = await ms.query(POOL_ID, f"SELECT * FROM {table} ORDER BY id")
    assert [json.loads(v) if v else v for v in back["l"].to_list()] == [[1, 2, None], None, []]
    assert [json.loads(v) if v else v for v in back["st"].to_list()] == df["st"].to_list()
    for name in ("en", "t", "d", "ts", "nul"):
        assert back[name].to_list() == df[name].to_list(), name


async def test_if_exists_and_transactions(ms: Any, table: str) -> None:
    await ms.write_frame(POOL_ID, {"a": [1, 2]}, table, create=True)
    await ms.write_frame(POOL_ID, pl.LazyFrame({"a": [3]}), table, create=True, if_exists="append")
    assert (await ms.query(POOL_ID, f"SELECT count(*) AS n FROM {table}")).item() == 3
    with pytest.raises(ProgrammingError, match="already an object"):
        await ms.write_frame(POOL_ID, {"a": [1]}, table, create=True, if_exists="fail")
    await ms.write_frame(POOL_ID, {"b": ["x"]}, table, create=True, if_exists="replace")
    with pytest.raises(RuntimeError):
        async with ms.transaction(POOL_ID) as tx:
            assert await tx.write_frame(pl.DataFrame({"b": ["y", "z"]}), table) == 2
            assert (await tx.query(f"SELECT count(*) AS n FROM {table}")).item() == 3
            raise RuntimeError("roll back")
    assert (await ms.query(POOL_ID, f"SELECT b FROM {table}")).to_dict(as_series=False) == {"b": ["x"]}
    await assert_healthy(ms)


async def test_duration_is_refused(ms: Any, table: str) -> None:
    with pytest.raises(NotSupportedError, match="column 'du'"):
        await ms.write_frame(POOL_ID, pl.DataFrame({"du": [dt.timedelta(1)]}), table, create=True)
