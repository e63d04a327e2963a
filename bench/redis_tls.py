"""What TLS costs db_pool's Redis pools: the same pipelines of 100 GET (4
tasks, 4 connections) and single GETs (50 tasks) over the plain port and
the TLS port of one private redis-server (tests/redis_server.py, its own
test CA), alternating, every reply checked. Prints ops/s and TLS / plain.

    python bench/redis_tls.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from db_pool import DatabasePool  # noqa: E402
from redis_server import RedisServer  # noqa: E402

VALUE = b"0123456789abcdef"


async def ops_per_s(url: str, ca: str | None, calls: int, tasks: int, depth: int) -> float:
    cmds = [("GET", "k")] * depth
    async with DatabasePool() as pool:
        await pool.create_pool("b", url=url, min_size=tasks, max_size=tasks,
                               **({"ca_file": ca} if ca else {}))
        await pool.command("b", "SET", "k", VALUE)
        left = calls

        async def one_task() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                replies = await pool.pipeline("b", cmds)
                assert replies == [VALUE] * depth
        started = time.perf_counter()
        await asyncio.gather(*(one_task() for _ in range(tasks)))
        return calls * depth / (time.perf_counter() - started)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    server = RedisServer.start_private(tls=True, prefix="dbpool-bench-tls-")
    try:
        assert server.certs is not None
        ca = str(server.certs.ca_cert)
        for label, calls, tasks, depth in (("pipelines of 100 GET, 4 tasks", 5000, 4, 100),
                                           ("GET, 50 tasks", 50000, 50, 1)):
            for _ in range(rounds):
                plain = asyncio.run(ops_per_s(server.url, None, calls, tasks, depth))
                tls = asyncio.run(ops_per_s(server.tls_url, ca, calls, tasks, depth))
                print(f"{label}: plain {plain:,.0f} GET/s, TLS {tls:,.0f} GET/s, "
                      f"TLS / plain {tls / plain:.2f}")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
