"""After fork() the child must not reuse the parent's connections: its
copy of a pool refuses work with PoolClosed, and neither closing it nor
exiting disturbs the parent, whose pool keeps working."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from db_pool import PoolClosed, SyncDatabasePool


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_refuses_the_parents_pool(tmp_path: Path) -> None:
    db = tmp_path / "fork.db"
    with SyncDatabasePool() as pool:
        pool.create_pool("db", url=f"sqlite:///{db}", max_size=2)
        pool.execute("db", "CREATE TABLE t (x INTEGER)")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what happened through the pipe
            os.close(read)
            try:
                pool.query("db", "SELECT 1")
                outcome = b"served"
            except PoolClosed as e:
                outcome = b"refused" if "parent process" in str(e) else b"other"
            except BaseException:  # noqa: BLE001 - anything else is a failure
                outcome = b"error"
            pool.close()  # must neither hang nor touch the parent's connections
            os.write(write, outcome)
            os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        outcome = os.read(read, 16)
        os.close(read)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert outcome == b"refused"
        pool.execute("db", "INSERT INTO t VALUES (1)")
        assert pool.query("db", "SELECT count(*) AS n FROM t").item() == 1
        assert pool.stats("db")["in_use"] == 0
