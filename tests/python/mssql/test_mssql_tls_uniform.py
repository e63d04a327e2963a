"""The uniform TLS keys on MSSQL, against the TDS test server's real TLS (its
certificate, made by openssl, names localhost and 127.0.0.1 and is its own
CA): tls maps to FreeTDS's encrypt (verify-full: strict; verify-ca: require
with the host name unchecked; require; disable: off; prefer is refused), from
keywords, URLs and the configuration model, on both APIs; what FreeTDS
cannot do (client certificates) and uniform keys that contradict the
driver's own are refused before connecting."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest

from db_pool import ConfigurationError, DatabasePool, OperationalError, SyncDatabasePool
from tests.tds_server import TdsTestServer
from tests.tls_certs import make_certificates

from .conftest import Target

BOUND = 8.0


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


def kwargs(srv: TdsTestServer, host: str = "127.0.0.1", **extra: Any) -> dict[str, Any]:
    return {"db_type": "mssql", "host": host, "port": srv.port, "database": "dbpool",
            "username": srv.user, "password": srv.password, "login_timeout": 5, **extra}


def url(srv: TdsTestServer, **params: str) -> str:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return (f"mssql://{srv.user}:{quote(srv.password, safe='')}@127.0.0.1:{srv.port}/dbpool"
            f"?{query}")


async def one(pool: Any, pool_id: str = "t") -> None:
    assert (await pool.query(pool_id, "SELECT 1 AS one"))["one"][0] == 1


async def test_verify_full_encrypts_everything_from_each_source(tls_on: TdsTestServer) -> None:
    full = tls_on.stats.get("tls_full")
    ca = str(tls_on.cafile)
    async with DatabasePool() as pool:
        await pool.create_pool("t", **kwargs(tls_on, tls="verify-full", ca_file=ca))
        await one(pool)
    with SyncDatabasePool() as spool:
        spool.create_pool("t", url=url(tls_on, tls="verify-full", ca_file=ca))
        assert spool.query("t", "SELECT 1 AS one")["one"][0] == 1
    async with await DatabasePool.from_config({"pools": {"t": {
            "engine": "mssql", "user": tls_on.user, "password": tls_on.password,
            "database": "dbpool", "login_timeout": 5,
            "endpoints": [{"host": "127.0.0.1", "port": tls_on.port, "tls": "verify-full",
                           "ca_file": ca}]}}}) as cpool:
        await one(cpool)
    assert tls_on.stats.get("tls_full") == full + 3


async def test_wrong_ca_fails_in_bounded_time(tls_on: TdsTestServer, tmp_path: Path) -> None:
    other = make_certificates(tmp_path / "certs").other_ca_cert
    async with DatabasePool() as pool:
        start = time.monotonic()
        with pytest.raises(OperationalError) as info:
            await pool.create_pool("t", **kwargs(tls_on, tls="verify-full", ca_file=str(other)))
        assert time.monotonic() - start < BOUND
        assert info.value.category == "network", info.value
        assert tls_on.password not in str(info.value)


async def test_verify_full_checks_the_host_name_verify_ca_does_not(server: Target) -> None:
    """The certificate names localhost and 127.0.0.1: a server reached as
    127.0.0.2 fails verify-full and passes verify-ca."""
    if server.tds is None:
        pytest.skip("needs the test server")
    with TdsTestServer(tls="on", host="127.0.0.2") as elsewhere:
        before = elsewhere.stats.get("tls_full")
        ca = str(elsewhere.cafile)
        async with DatabasePool() as pool:
            start = time.monotonic()
            with pytest.raises(OperationalError):
                await pool.create_pool("t", **kwargs(elsewhere, "127.0.0.2", tls="verify-full",
                                                     ca_file=ca))
            assert time.monotonic() - start < BOUND
            await pool.create_pool("t", **kwargs(elsewhere, "127.0.0.2", tls="verify-ca",
                                                 ca_file=ca))
            await one(pool)
        assert elsewhere.stats.get("tls_full") == before + 1


async def test_require_encrypts_everything_prefer_is_refused(tls_on: TdsTestServer) -> None:
    """FreeTDS's request (the nearest to prefer) leaves the session after the
    login in plaintext, as the test server's counters show: so prefer is
    refused rather than quietly meaning less than on PostgreSQL."""
    full, login = tls_on.stats.get("tls_full"), tls_on.stats.get("tls_login")
    async with DatabasePool() as pool:
        await pool.create_pool("req", **kwargs(tls_on, tls="require"))
        await one(pool, "req")
        with pytest.raises(ConfigurationError, match="encrypts only the login"):
            await pool.create_pool("pref", **kwargs(tls_on, tls="prefer"))
        await pool.create_pool("request", **kwargs(tls_on, encrypt="request"))
        await one(pool, "request")
    assert tls_on.stats.get("tls_full") == full + 1
    assert tls_on.stats.get("tls_login") == login + 1


async def test_disable_against_a_server_that_requires_tls(tls_require: TdsTestServer,
                                                           server: Target) -> None:
    async with DatabasePool() as pool:
        start = time.monotonic()
        with pytest.raises(OperationalError):
            await pool.create_pool("off", **kwargs(tls_require, tls="disable"))
        assert time.monotonic() - start < BOUND
        await pool.create_pool("plain", **server.kwargs(tls="disable"))
        await one(pool, "plain")


@pytest.mark.parametrize("bad, path, words", [
    ({"tls": "verify-full", "cert_file": "C", "key_file": "K"}, "cert_file",
     "cannot present a client certificate"),
    ({"tls": "verify-full", "ca_file": "system", "encrypt": "require"}, "tls",
     'tls = "verify-full" and encrypt = "require" disagree'),
    ({"tls": "verify-ca", "ca_file": "A", "check_hostname": True}, "tls",
     'tls = "verify-ca" and check_hostname = "true" disagree'),
    ({"tls": "require", "ca_file": "A"}, "ca_file", "does not do"),
    ({"tls": "verify-full"}, "tls", "needs ca_file"),
    ({"tls": "verify-ca", "ca_file": "system"}, "ca_file", "any publicly trusted"),
    ({"tls": "disable", "ca_file": "A"}, "ca_file", "contradicts it"),
    ({"tls": "sometimes"}, "tls", "expected one of"),
    ({"tls": "prefer"}, "tls", "encrypts only the login"),
])
async def test_refused_before_connecting(server: Target, tmp_path: Path, bad: dict[str, Any],
                                         path: str, words: str) -> None:
    files = {"C": tmp_path / "c.pem", "K": tmp_path / "k.pem", "A": tmp_path / "ca.pem"}
    for f in files.values():
        f.write_text("not used\n")
    bad = {k: str(files[v]) if isinstance(v, str) and v in files else v for k, v in bad.items()}
    async with DatabasePool() as pool:
        with pytest.raises(ConfigurationError, match=words) as info:
            await pool.create_pool("t", **server.kwargs(**bad))
        assert path in [p.path for p in info.value.problems]
        assert pool.list_pools() == []
    with pytest.raises(ConfigurationError, match=words) as info:
        SyncDatabasePool.from_config({"pools": {"t": {"engine": "mssql", "user": "sa", **bad}}})
    assert f"pools.t.{path}" in [p.path for p in info.value.problems]
