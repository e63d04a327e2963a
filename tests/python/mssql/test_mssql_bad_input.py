"""MSSQL inputs that used to change nothing without a word (issue 12):
sp_executesql ignores a declared parameter the statement never uses, so a
value given too many vanished; it is an error now, as on the other
engines."""

from __future__ import annotations

from typing import Any

import pytest

from db_pool import ProgrammingError

from .conftest import POOL_ID, assert_healthy


async def test_extra_parameters_are_an_error(ms: Any) -> None:
    with pytest.raises(ProgrammingError, match="never uses @P2") as info:
        await ms.query(POOL_ID, "SELECT @P1 AS a", [1, 2])
    assert info.value.sqlstate == "07001"
    with pytest.raises(ProgrammingError, match="never uses @P1"):  # @P10 is not @P1
        await ms.query(POOL_ID, "SELECT " + ", ".join(f"@P{i} AS c{i}" for i in range(2, 11)),
                       list(range(1, 11)))
    with pytest.raises(ProgrammingError, match="never uses @extra"):
        await ms.query(POOL_ID, "SELECT @a AS a", {"a": 1, "extra": 2})
    df = await ms.query(POOL_ID, "SELECT @P1 AS a, @p2 AS b", [1, 2])  # any case
    assert df.row(0) == (1, 2)
    await assert_healthy(ms)
