"""PostgreSQL inputs that used to fail cryptically (issue 12): more
parameters than the protocol can count, and reads the COPY fast path must
not take (a second statement, a comment after the semicolon)."""

from __future__ import annotations

from typing import Any

import pytest

from db_pool import ProgrammingError

from .conftest import POOL_ID, assert_healthy


async def test_too_many_parameters_says_the_limit(pg: Any) -> None:
    n = 65536
    sql = "SELECT " + ", ".join(f"${i + 1}::int4" for i in range(n))
    with pytest.raises(ProgrammingError, match="at most 65535 parameters") as info:
        await pg.query(POOL_ID, sql, list(range(n)))
    assert info.value.sqlstate == "54000"
    with pytest.raises(ProgrammingError, match="at most 65535"):
        await pg.execute(POOL_ID, sql, list(range(n)))
    await assert_healthy(pg)


@pytest.mark.parametrize("sql", [
    "SELECT 1 AS a; -- a note",
    "SELECT 1 AS a;;",
    "SELECT 1 AS a ;\n",
    "SELECT ';' AS a",
    "/* c */ SELECT 1 AS a -- trailing",
])
async def test_reads_the_copy_path_cannot_take_still_work(pg: Any, sql: str) -> None:
    df = await pg.query(POOL_ID, sql)
    assert df.columns == ["a"] and df.height == 1
    await assert_healthy(pg)


async def test_join_with_duplicate_names(pg: Any) -> None:
    for copy in ("auto", False):  # the COPY path and the row path
        df = await pg.query(POOL_ID, "SELECT a.id, b.id, a.v FROM (VALUES (1, 'x')) a(id, v) "
                            "JOIN (VALUES (1)) b(id) ON a.id = b.id", copy=copy)
        assert df.columns == ["id", "id_1", "v"] and df.row(0) == (1, 1, "x")
