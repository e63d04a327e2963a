"""The pool behind a real PgBouncer in transaction pooling mode: with the
statement cache off (statement_cache_size=0) every statement is sent
unnamed, so server connections shared between clients never see each
other's prepared statements."""

from __future__ import annotations

import asyncio

import polars as pl

from db_pool import DatabasePool
from pgbouncer import PgBouncer


async def test_concurrent_work_through_pgbouncer_has_no_prepared_statement_clashes(
    pgbouncer: PgBouncer,
) -> None:
    async with DatabasePool() as pool:
        await pool.create_pool("pgb", url=pgbouncer.dsn, max_size=20, statement_cache_size=0)
        await pool.execute("pgb", "DROP TABLE IF EXISTS bounced")
        await pool.execute("pgb", "CREATE TABLE bounced (task int, i int, note text)")

        async def work(task: int) -> int:
            for i in range(25):
                df = await pool.query("pgb", "SELECT $1::int + $2::int AS s", [task, i])
                assert df["s"][0] == task + i
                await pool.execute("pgb", "INSERT INTO bounced VALUES ($1, $2, $3)", [task, i, "x"])
            await pool.execute_many(
                "pgb", "INSERT INTO bounced VALUES ($1, $2, $3)", [[task, 100 + i, "m"] for i in range(5)]
            )
            async with pool.transaction("pgb") as tx:
                await tx.execute("INSERT INTO bounced VALUES ($1, -1, 'tx')", [task])
                got = await tx.query("SELECT count(*) AS n FROM bounced WHERE task = $1", [task])
            return int(got["n"][0])

        counts = await asyncio.gather(*(work(t) for t in range(40)))
        assert counts == [25 + 5 + 1] * 40
        total = await pool.query("pgb", "SELECT count(*) AS n FROM bounced")
        assert total["n"][0] == 40 * 31
        await pool.write_frame("pgb", pl.DataFrame({"task": [99], "i": [0], "note": ["f"]}), "bounced")
        assert (await pool.query("pgb", "SELECT note FROM bounced WHERE task = 99"))["note"].to_list() == ["f"]
        assert pool.stats("pgb")["errors"] == 0
