"""Many connections at once: db-lib's message handlers are process-wide, so
every error must still reach the request whose connection raised it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from db_pool import DatabasePool, ProgrammingError

from .conftest import POOL_ID, Target, assert_healthy


async def test_errors_reach_their_own_request(server: Target) -> None:
    async with DatabasePool() as pool:
        await pool.create_pool(POOL_ID, **server.kwargs(min_size=4, max_size=4))

        async def one(i: int) -> Any:
            if i % 2:
                return await pool.query(
                    POOL_ID, "WAITFOR DELAY '00:00:00.020'; RAISERROR('error of request %d', 16, 1, @P1)", [i])
            return await pool.query(POOL_ID, "WAITFOR DELAY '00:00:00.020'; SELECT @P1 AS v", [i])

        results = await asyncio.gather(*(one(i) for i in range(40)), return_exceptions=True)
        for i, r in enumerate(results):
            if i % 2:
                assert isinstance(r, ProgrammingError), r
                assert str(r) == f"error of request {i}" and r.code == 50000
            else:
                assert not isinstance(r, BaseException), r
                assert r["v"].to_list() == [i]
        stats = pool.stats(POOL_ID)
        assert stats["size"] == 4 and stats["closed"] == 0
        await assert_healthy(pool)


async def test_two_pools_in_one_process(server: Target) -> None:
    async with DatabasePool() as a, DatabasePool() as b:
        await a.create_pool("x", **server.kwargs(max_size=2))
        await b.create_pool("x", **server.kwargs(max_size=2, app_name="second"))
        got = await asyncio.gather(*(p.query("x", "SELECT @P1 AS v", [k]) for k, p in enumerate((a, b) * 4)))
        assert [df["v"][0] for df in got] == list(range(8))
        if server.tds is not None:  # each pool logged in with its own settings
            apps = {r[2].split("app=")[1].split()[0] for r in server.tds.stats.requests if r[1] == "LOGIN7"}
            assert {"db-pool", "second"} <= apps
        with pytest.raises(ProgrammingError):
            await a.query("x", "SELECT * FROM nowhere_at_all")
        assert (await b.query("x", "SELECT 1 AS one"))["one"].to_list() == [1]
