"""Serves /metrics, /healthz, /readyz and the live dashboard of a few SQLite
pools under a small workload (some queries fail on purpose), until Ctrl-C
or --seconds. Open the printed URL in a browser.

    .venv/bin/python examples/serve_metrics.py [--port 9187] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import random

from db_pool import DatabasePool, ProgrammingError


async def worker(pool: DatabasePool, pool_id: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            if random.random() < 0.05:
                await pool.query(pool_id, "SELECT missing_column FROM orders")
            else:
                await pool.query(pool_id, "SELECT count(*) AS n, sum(amount) AS total FROM orders")
        except ProgrammingError:
            pass  # the errors the dashboard shows
        await asyncio.sleep(random.uniform(0.005, 0.05))


async def main(port: int, seconds: float) -> None:
    async with DatabasePool() as pool:
        for pool_id in ("orders", "reports", "billing"):
            await pool.create_pool(pool_id, url="sqlite:///:memory:", max_size=4)
            await pool.execute(pool_id, "CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL)")
            await pool.execute_many(pool_id, "INSERT INTO orders (amount) VALUES (?)",
                                    [(i * 1.5,) for i in range(1000)])
        server = pool.serve_metrics(port=port)
        print(f"dashboard: {server.url}   metrics: {server.url}metrics   readiness: {server.url}readyz")
        stop = asyncio.Event()
        tasks = [asyncio.create_task(worker(pool, p, stop)) for p in ("orders", "orders", "reports")]
        try:
            await asyncio.sleep(seconds)
        finally:
            stop.set()
            await asyncio.gather(*tasks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9187, help="0 picks a free port")
    parser.add_argument("--seconds", type=float, default=3600.0)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.port, args.seconds))
    except KeyboardInterrupt:
        pass
