"""Quick start: an embedded SQLite pool, queried from asyncio; results are
Polars DataFrames. Run with `make demo`."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

from db_pool import DatabasePool


async def main() -> None:
    async with DatabasePool() as pool:
        await pool.create_pool("local", url="sqlite:///:memory:", max_size=4)
        await pool.execute(
            "local",
            """CREATE TABLE orders (
                   id INTEGER PRIMARY KEY,
                   customer TEXT NOT NULL,
                   amount DECIMAL(10, 2),
                   placed_at DATETIME,
                   shipped BOOLEAN
               )""",
        )
        rows = [
            (f"customer-{i % 7}", Decimal(f"{i * 3}.{i % 100:02d}"),
             dt.datetime(2026, 1, 1) + dt.timedelta(hours=i), i % 3 == 0)
            for i in range(1, 1001)
        ]
        inserted = await pool.execute_many(
            "local",
            "INSERT INTO orders (customer, amount, placed_at, shipped) VALUES (?, ?, ?, ?)",
            rows,
        )
        print(f"inserted {inserted} rows")

        # Ten queries at once share the pool's four connections.
        frames = await asyncio.gather(
            *(
                pool.query("local", "SELECT * FROM orders WHERE customer = ?", [f"customer-{c}"])
                for c in range(7)
            ),
            pool.query(
                "local",
                "SELECT customer, count(*) AS orders, sum(shipped) AS shipped "
                "FROM orders GROUP BY customer ORDER BY customer",
            ),
        )
        print(frames[0].head(5))
        print(frames[-1])

        async with pool.transaction("local") as tx:
            await tx.execute("UPDATE orders SET shipped = 1 WHERE id <= :n", {"n": 10})

        async for batch in pool.stream("local", "SELECT id, amount FROM orders", batch_rows=400):
            print(f"streamed a batch of {batch.height} rows, dtypes {batch.dtypes}")

        print(pool.stats("local"))


if __name__ == "__main__":
    asyncio.run(main())
