"""MSSQL pools over several endpoints: the role probe reads the database's
updateability (READ_ONLY on an Always On readable secondary). Two TDS test
servers stand in for a primary and a secondary; flipping their read_only
knobs plays a failover. Skipped against a real SQL Server (no knobs)."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

import db_pool
from db_pool import SyncDatabasePool

from .conftest import Target
from tests.tds_server import TdsTestServer


@pytest.fixture
def pair(server: Target) -> Iterator[tuple[TdsTestServer, TdsTestServer]]:
    if server.tds is None:
        pytest.skip("needs the TDS test server's read_only knob")
    with TdsTestServer() as primary, TdsTestServer() as secondary:
        for name, tds in (("primary", primary), ("secondary", secondary)):
            with SyncDatabasePool() as setup:
                setup.create_pool("s", url=url(tds))
                setup.execute("s", "CREATE TABLE whoami (name nvarchar(20))")
                setup.execute("s", "INSERT INTO whoami VALUES (@P1)", [name])
        secondary.faults.read_only = True
        yield primary, secondary


def url(tds: TdsTestServer) -> str:
    return f"mssql://{tds.user}:{tds.password}@{tds.host}:{tds.port}/dbpool"


def who(pool: SyncDatabasePool, **kwargs: bool) -> str:
    return str(pool.query("m", "SELECT name FROM whoami", **kwargs)["name"][0])


def test_roles_route_reads_and_writes(pair: tuple[TdsTestServer, TdsTestServer]) -> None:
    primary, secondary = pair
    with SyncDatabasePool() as pool:
        pool.create_pool("m", endpoints=[url(secondary), url(primary)], read_from="replicas")
        eps = pool.stats("m")["endpoints"]
        assert [(e["role"], e["is_primary"]) for e in eps] == [("replica", False), ("primary", True)]
        assert "db-pool-test" not in repr(eps)  # the test server's password
        assert {who(pool) for _ in range(4)} == {"secondary"}
        assert who(pool, readonly=False) == "primary"
        assert pool.execute("m", "INSERT INTO whoami VALUES ('w')") == 1
        # a write sent where reads go gets the server's own error
        with pytest.raises(db_pool.DatabaseError) as info:
            pool.query("m", "INSERT INTO whoami VALUES ('r'); SELECT 1 AS one")
        assert info.value.code == 3906


def test_writes_follow_a_role_swap(pair: tuple[TdsTestServer, TdsTestServer]) -> None:
    primary, secondary = pair
    with SyncDatabasePool() as pool:
        pool.create_pool("m", endpoints=[url(primary), url(secondary)], probe_interval=0.05)
        assert who(pool) == "primary"
        primary.faults.read_only, secondary.faults.read_only = True, False
        deadline = time.monotonic() + 10
        while pool.stats("m")["endpoints"][1]["is_primary"] is not True:
            assert time.monotonic() < deadline, pool.stats("m")["endpoints"]
            time.sleep(0.05)
        assert pool.execute("m", "INSERT INTO whoami VALUES ('after')") == 1
        assert who(pool) == "secondary"
        stats = pool.stats("m")
        assert stats["failovers"] == 1 and stats["topology_generation"] >= 2
        assert [e["role"] for e in stats["endpoints"]] == ["replica", "primary"]
