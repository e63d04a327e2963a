"""Many callers at once: every read path and writes interleaved on a small
pool, from asyncio tasks and from threads; the server never sees more than
max_size connections."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from db_pool import DatabasePool, SyncDatabasePool

from .conftest import POOL_ID, assert_healthy, wait_idle


def server_connections(admin: Any) -> int:
    return int(
        admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'db-pool' "
            "AND datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    )


async def test_mixed_load_from_tasks(apg: DatabasePool, admin: Any) -> None:
    admin.execute("CREATE TABLE log (task int4, i int4)")

    async def task(k: int) -> None:
        for i in range(10):
            assert (await apg.query(POOL_ID, f"SELECT {k * 100 + i} AS v")).item() == k * 100 + i
            df = await apg.query(POOL_ID, "SELECT $1::int4 AS v, $2::text AS s", [k, str(i)])
            assert df.row(0) == (k, str(i))
            await apg.execute(POOL_ID, "INSERT INTO log VALUES ($1, $2)", [k, i])
        async with apg.transaction(POOL_ID) as tx:
            await tx.execute_many("INSERT INTO log VALUES ($1, $2)", [(k, 100 + j) for j in range(5)])
        rows = 0
        async for batch in apg.stream(POOL_ID, "SELECT generate_series(1, 1000) AS g", batch_rows=300):
            rows += batch.height
        assert rows == 1000

    await asyncio.gather(*(task(k) for k in range(24)))
    assert admin.execute("SELECT count(*) FROM log").fetchone() == (24 * 15,)
    assert server_connections(admin) <= 4
    stats = await wait_idle(apg)
    assert stats["size"] <= 4 and stats["errors"] == 0, stats
    await assert_healthy(apg)


def test_sync_pool_from_threads(spg: SyncDatabasePool, admin: Any) -> None:
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(25):
                assert spg.query(POOL_ID, "SELECT $1::int4 + $2::int4 AS v", [k, i]).item() == k + i
                assert spg.query(POOL_ID, f"SELECT {k} * {i} AS v").item() == k * i
            with spg.transaction(POOL_ID) as tx:
                assert tx.query("SELECT 1 AS one").item() == 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert server_connections(admin) <= 4
    stats = spg.stats(POOL_ID)
    assert stats["in_use"] == 0 and stats["errors"] == 0, stats
