"""TLS: the encryption setting and the CA file reach FreeTDS per pool
(through the driver's own freetds.conf sections), checked against the test
server's TLS modes and counters."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from db_pool import DatabasePool, OperationalError
from tests.tds_server import TdsTestServer

from .conftest import Target


@pytest.fixture(scope="module")
def tls_on(server: Target) -> Iterator[TdsTestServer]:
    if server.tds is None:
        pytest.skip("needs the test server's TLS counters")
    with TdsTestServer(tls="on") as srv:
        yield srv


@pytest.fixture(scope="module")
def tls_require(server: Target) -> Iterator[TdsTestServer]:
    if server.tds is None:
        pytest.skip("needs the test server's TLS counters")
    with TdsTestServer(tls="require") as srv:
        yield srv


def kwargs(srv: TdsTestServer, **extra: Any) -> dict[str, Any]:
    return {"db_type": "mssql", "host": "127.0.0.1", "port": srv.port, "database": "dbpool",
            "username": srv.user, "password": srv.password, **extra}


async def roundtrip(pool: DatabasePool, pool_id: str) -> None:
    big = "x" * 100_000  # TLS records spanning many TDS packets
    df = await pool.query(pool_id, "SELECT @P1 AS s, N'secret' AS t", [big])
    assert df.row(0) == (big, "secret")


async def test_require_with_ca_file_encrypts_everything(tls_on: TdsTestServer) -> None:
    before = tls_on.stats.get("tls_full")
    async with DatabasePool() as pool:
        await pool.create_pool("t", **kwargs(tls_on, encryption="require", ca_file=tls_on.cafile,
                                             check_hostname=False, max_size=1))
        for _ in range(5):  # one connection serves them all: an idle TLS socket looks idle
            await roundtrip(pool, "t")
    assert tls_on.stats.get("tls_full") == before + 1


async def test_request_encrypts_the_login_only(tls_on: TdsTestServer) -> None:
    before = tls_on.stats.get("tls_login")
    async with DatabasePool() as pool:
        await pool.create_pool("t", **kwargs(tls_on, encryption="request"))
        await roundtrip(pool, "t")
    assert tls_on.stats.get("tls_login") == before + 1


async def test_pools_with_different_settings_side_by_side(tls_on: TdsTestServer, server: Target) -> None:
    """Per-pool, not per-process: an encrypted and a plain pool at once."""
    full, login = tls_on.stats.get("tls_full"), tls_on.stats.get("tls_login")
    async with DatabasePool() as pool:
        await pool.create_pool("enc", **kwargs(tls_on, encryption="require", ca_file=tls_on.cafile,
                                               check_hostname=False, min_size=2, max_size=2))
        await pool.create_pool("plain", **server.kwargs(encryption="off"))
        await pool.create_pool("req", **kwargs(tls_on, encryption="request"))
        for pid in ("enc", "plain", "req"):
            await roundtrip(pool, pid)
    assert tls_on.stats.get("tls_full") == full + 2
    assert tls_on.stats.get("tls_login") == login + 1


async def test_untrusted_certificate_is_refused(tls_on: TdsTestServer, tmp_path: Any) -> None:
    other = TdsTestServer(tls="on")  # a second certificate the first server does not have
    other_ca = other.server.certificate.cert_file if other.server.certificate else None
    try:
        async with DatabasePool() as pool:
            with pytest.raises(OperationalError) as ei:
                await pool.create_pool("t", **kwargs(tls_on, encryption="require", ca_file=other_ca,
                                                     login_timeout=5))
            assert ei.value.category == "network"
    finally:
        other.server.cleanup_files()


async def test_require_against_a_server_without_tls(server: Target) -> None:
    if server.tds is None:
        pytest.skip("the test server's TLS is off; a real server's is unknown")
    async with DatabasePool() as pool:
        with pytest.raises(OperationalError) as ei:
            await pool.create_pool("t", **server.kwargs(encryption="require", login_timeout=5))
        assert ei.value.category == "network"


async def test_server_that_requires_tls(tls_require: TdsTestServer) -> None:
    before = tls_require.stats.get("tls_full")
    async with DatabasePool() as pool:
        await pool.create_pool("t", **kwargs(tls_require, encryption="require"))
        await roundtrip(pool, "t")
        with pytest.raises(OperationalError):
            await pool.create_pool("off", **kwargs(tls_require, encryption="off", login_timeout=5))
    assert tls_require.stats.get("tls_full") == before + 1
