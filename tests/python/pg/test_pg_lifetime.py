"""A DatabasePool dropped without close() while a cancelled statement still
runs: the event loop, and with it the completion queue's last owner, goes
first; the statement's request, finishing later on a worker thread, must
still find its queue. Run in a child process whose freed memory is filled
with garbage (glibc's MALLOC_PERTURB_), so a push onto a freed queue
crashes it instead of passing unseen."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

from .conftest import pg_url

#: Shrugs off the first cancel: it ends 0.3 s after being cancelled, long
#: after asyncio.run has closed its loop.
STUBBORN = (
    "DO $$ BEGIN PERFORM pg_sleep(5); "
    "EXCEPTION WHEN query_canceled THEN PERFORM pg_sleep(0.3); END $$"
)

CHILD = textwrap.dedent(
    """
    import asyncio, gc, sys, time
    from db_pool import DatabasePool

    async def main(url, sql):
        pool = DatabasePool()
        await pool.create_pool("db", url=url, max_size=2)
        asyncio.ensure_future(pool.execute("db", sql))
        await asyncio.sleep(0.2)
        # returns without pool.close(): asyncio.run cancels the call and
        # closes the loop while the statement still runs

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    gc.collect()
    time.sleep(1)  # the statement ends, its request completes
    print("survived")
    """
)


def test_request_outliving_its_event_loop_finds_its_queue(pg_server: Any) -> None:
    env = dict(os.environ, PYTHONMALLOC="malloc", MALLOC_PERTURB_="165")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, pg_url(pg_server), STUBBORN],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "survived" in proc.stdout
