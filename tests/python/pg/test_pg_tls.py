"""The uniform TLS keys (tls, ca_file, cert_file, key_file, key_password)
against a real PostgreSQL server with ssl=on that takes TCP connections over
TLS only, with certificates openssl made for this run: verify-full runs the
queries over TLS from every configuration source and both APIs; a wrong
CA, a host name the certificate does not name and tls="disable" fail with
typed errors in bounded time; client certificates authenticate; missing
files are configuration errors before anything connects; the key's
passphrase never shows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import quote

import pytest

from db_pool import (
    ConfigurationError,
    DatabasePool,
    OperationalError,
    SyncDatabasePool,
    load_config,
)
from db_pool._config_model import native_arguments

from .conftest import TLS_CLIENT_PASSWORD, TLS_CLIENT_ROLE, TlsServer
from sync_as_async import SyncAsAsync

SSL_SQL = ("SELECT ssl, version, coalesce(client_dn, '') AS client_dn "
           "FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
#: A failed connection must end within this (connect_timeout is 5).
BOUND = 8.0


def base(t: TlsServer, **extra: Any) -> dict[str, Any]:
    s = t.server
    return {"db_type": "postgresql", "host": "127.0.0.1", "port": s.port, "database": s.database,
            "username": s.user, "password": s.password, "connect_timeout": 5, "max_size": 2,
            **extra}


def url(t: TlsServer, **params: str) -> str:
    s = t.server
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return (f"postgresql://{s.user}:{quote(s.password, safe='')}@127.0.0.1:{s.port}/"
            f"{s.database}" + (f"?{query}" if query else ""))


async def assert_over_tls(pool: Any, pool_id: str = "p", client_dn: str = "") -> None:
    df = await pool.query(pool_id, SSL_SQL)
    assert df["ssl"].to_list() == [True]
    assert df["version"][0].startswith("TLSv1.")
    assert df["client_dn"][0] == client_dn


# ---- verify-full from every source, both APIs ---------------------------------------------


SOURCES = ["async-keywords", "sync-url", "sync-keyword-endpoints", "async-dict-endpoints",
           "sync-env", "async-toml"]


async def open_pool(source: str, t: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    tls: str = "verify-full", ca: Path | None = None) -> Any:
    """A pool "p" made from ``source`` with tls and ca_file (the right CA unless ``ca``)."""
    ca_file = str(ca or t.certs.ca_cert)
    if source == "async-keywords":
        pool = DatabasePool()
        try:
            await pool.create_pool("p", **base(t, tls=tls, ca_file=ca_file))
        except BaseException:
            await pool.close()
            raise
        return pool
    if source == "sync-url":
        spool = SyncDatabasePool()
        try:
            spool.create_pool("p", url=url(t, tls=tls, ca_file=ca_file), connect_timeout=5)
        except BaseException:
            spool.close()
            raise
        return SyncAsAsync(spool)
    if source == "sync-keyword-endpoints":  # create_pool(endpoints=[URL with ?tls=...])
        spool = SyncDatabasePool()
        try:
            spool.create_pool("p", endpoints=[url(t, tls=tls, ca_file=ca_file)],
                              connect_timeout=5)
        except BaseException:
            spool.close()
            raise
        return SyncAsAsync(spool)
    if source == "async-dict-endpoints":
        s = t.server
        ep = {"host": "127.0.0.1", "port": s.port, "tls": tls, "ca_file": ca_file}
        return await DatabasePool.from_config({"pools": {"p": {
            "engine": "postgresql", "database": s.database, "user": s.user,
            "password": s.password, "connect_timeout": 5, "endpoints": [ep]}}})
    if source == "sync-env":
        monkeypatch.setenv("DB_POOL_P_URL", url(t))
        monkeypatch.setenv("DB_POOL_P_TLS", tls)
        monkeypatch.setenv("DB_POOL_P_CA_FILE", ca_file)
        monkeypatch.setenv("DB_POOL_P_CONNECT_TIMEOUT", "5")
        return SyncAsAsync(SyncDatabasePool.from_env())
    assert source == "async-toml"
    pytest.importorskip("tomllib")
    path = tmp_path / "db.toml"
    monkeypatch.setenv("TLS_TEST_PASSWORD", t.server.password)
    s = t.server
    path.write_text(
        "[pools.p]\n"
        f'url = "postgresql://{s.user}@127.0.0.1:{s.port}/{s.database}"\n'
        'password = "${TLS_TEST_PASSWORD}"\n'
        f'tls = "{tls}"\n'
        f'ca_file = "{ca_file}"\n'
        "connect_timeout = 5\n")
    return await DatabasePool.from_config(path)


@pytest.mark.parametrize("source", SOURCES)
async def test_verify_full_runs_over_tls(pg_tls_server: TlsServer, source: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pool = await open_pool(source, pg_tls_server, tmp_path, monkeypatch)
    try:
        await assert_over_tls(pool)
    finally:
        await pool.close()


@pytest.mark.parametrize("source", SOURCES)
async def test_verify_full_with_a_wrong_ca_fails_in_bounded_time(
        pg_tls_server: TlsServer, source: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    start = time.monotonic()
    with pytest.raises(OperationalError) as info:
        await open_pool(source, pg_tls_server, tmp_path, monkeypatch,
                        ca=pg_tls_server.certs.other_ca_cert)
    assert time.monotonic() - start < BOUND
    assert "certificate verify failed" in str(info.value), info.value
    assert pg_tls_server.server.password not in str(info.value)


# ---- the host name --------------------------------------------------------------------


async def test_verify_full_checks_the_host_name_verify_ca_does_not(
        pg_tls_server: TlsServer) -> None:
    """libpq connects to hostaddr and checks the certificate against host: a
    name the certificate does not hold fails verify-full, passes verify-ca."""
    t = pg_tls_server
    elsewhere = {"host": "db.not-in-the-cert.test", "hostaddr": "127.0.0.1",
                 "ca_file": str(t.certs.ca_cert)}
    async with DatabasePool() as pool:
        start = time.monotonic()
        with pytest.raises(OperationalError) as info:
            await pool.create_pool("p", **base(t, tls="verify-full", **elsewhere))
        assert time.monotonic() - start < BOUND
        assert "does not match host name" in str(info.value), info.value
        await pool.create_pool("p", **base(t, tls="verify-ca", **elsewhere))
        await assert_over_tls(pool)


# ---- a server that takes TLS only --------------------------------------------------------


@pytest.mark.parametrize("api", ["async", "sync"])
async def test_disable_against_a_tls_only_server_gives_the_servers_message(
        pg_tls_server: TlsServer, api: str) -> None:
    pool: Any = DatabasePool() if api == "async" else SyncAsAsync(SyncDatabasePool())
    try:
        start = time.monotonic()
        with pytest.raises(OperationalError) as info:
            await pool.create_pool("p", **base(pg_tls_server, tls="disable"))
        assert time.monotonic() - start < BOUND
        message = str(info.value)
        assert "no pg_hba.conf entry" in message and "no encryption" in message, message
    finally:
        await pool.close()


async def test_require_encrypts_without_a_ca(pg_tls_server: TlsServer) -> None:
    async with DatabasePool() as pool:
        await pool.create_pool("p", **base(pg_tls_server, tls="require"))
        await assert_over_tls(pool)


# ---- client certificates -----------------------------------------------------------------


def client_kwargs(t: TlsServer, database: str, **extra: Any) -> dict[str, Any]:
    return {"db_type": "postgresql", "host": "localhost", "port": t.server.port,
            "database": database, "username": TLS_CLIENT_ROLE, "connect_timeout": 5,
            "tls": "verify-full", "ca_file": str(t.certs.ca_cert), **extra}


def client_cert(t: TlsServer, password: str | None = None) -> dict[str, Any]:
    return {"cert_file": str(t.certs.client_cert), "key_file": str(t.certs.client_key),
            "key_password": t.certs.key_password if password is None else password}


async def test_client_certificate_authenticates(pg_tls_server: TlsServer) -> None:
    """pg_hba "cert": the certificate alone logs dbpool_client in (no
    password), verify-full against the name localhost."""
    t = pg_tls_server
    async with DatabasePool() as pool:
        await pool.create_pool("p", **client_kwargs(t, "postgres", **client_cert(t)))
        await assert_over_tls(pool, client_dn=f"/CN={TLS_CLIENT_ROLE}")
        with pytest.raises(OperationalError) as info:  # without it: refused
            await pool.create_pool("nocert", **client_kwargs(t, "postgres"))
        assert "certificate" in str(info.value), info.value


async def test_clientcert_verify_full_needs_password_and_certificate(
        pg_tls_server: TlsServer) -> None:
    t = pg_tls_server
    db = t.server.database
    with SyncDatabasePool() as spool:
        spool.create_pool("p", **client_kwargs(t, db, password=TLS_CLIENT_PASSWORD,
                                                **client_cert(t)))
        assert spool.query("p", SSL_SQL)["client_dn"][0] == f"/CN={TLS_CLIENT_ROLE}"
        with pytest.raises(OperationalError) as info:
            spool.create_pool("nocert", **client_kwargs(t, db, password=TLS_CLIENT_PASSWORD))
        assert "certificate" in str(info.value), info.value


async def test_a_wrong_key_password_is_never_shown(pg_tls_server: TlsServer) -> None:
    t = pg_tls_server
    wrong = "Wrong-Key-Pass-Marker-3z"
    async with DatabasePool() as pool:
        with pytest.raises(OperationalError) as info:
            await pool.create_pool("p", **client_kwargs(t, "postgres", **client_cert(t, wrong)))
    text = f"{info.value!r} {info.value}"
    assert wrong not in text and t.certs.key_password not in text
    config = load_config({"pools": {"p": {
        "url": f"postgresql://{TLS_CLIENT_ROLE}@localhost:{t.server.port}/postgres",
        "tls": "verify-full", "ca_file": str(t.certs.ca_cert), **client_cert(t)}}})
    shown = f"{config!r} {config.masked()} {config.pools['p'].endpoints[0]!r}"
    assert t.certs.key_password not in shown and "***" in shown


# ---- checked before connecting ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["ca_file", "cert_file", "key_file"])
async def test_missing_files_are_configuration_errors(pg_tls_server: TlsServer, tmp_path: Path,
                                                      key: str) -> None:
    t = pg_tls_server
    tls = {"ca_file": str(t.certs.ca_cert), **client_cert(t), key: str(tmp_path / "missing.pem")}
    async with DatabasePool() as pool:
        with pytest.raises(ConfigurationError) as info:
            await pool.create_pool("p", **client_kwargs(t, "postgres", **tls))
        assert [p.path for p in info.value.problems] == [key]
        assert "No such file or directory" in str(info.value)
        assert t.certs.key_password not in str(info.value)
        assert pool.list_pools() == []
    with pytest.raises(ConfigurationError) as info:
        SyncDatabasePool.from_config({"pools": {"p": {
            "url": f"postgresql://{TLS_CLIENT_ROLE}@localhost:{t.server.port}/postgres",
            "tls": "verify-full", **tls}}})
    assert [p.path for p in info.value.problems] == [f"pools.p.{key}"]


def test_each_endpoint_keeps_its_own_tls(pg_tls_server: TlsServer) -> None:
    t = pg_tls_server
    ca = str(t.certs.ca_cert)
    config = load_config({"pools": {"p": {
        "engine": "postgresql", "user": "u", "database": "d",
        "endpoints": [{"host": "a.internal", "tls": "verify-full", "ca_file": ca},
                      f"postgresql://b.internal?tls=verify-ca&ca_file={quote(ca, safe='')}",
                      {"host": "c.internal", "tls": "require"}]}}})
    _engine, settings, _options, _watch = native_arguments(config.pools["p"])
    tls = [(s.get("sslmode"), s.get("sslrootcert")) for s in settings]
    assert tls == [("verify-full", ca), ("verify-ca", ca), ("require", None)]
    assert not any(k in s for s in settings for k in ("tls", "ca_file"))


async def test_uniform_and_libpq_keys_must_agree(pg_tls_server: TlsServer) -> None:
    t = pg_tls_server
    async with DatabasePool() as pool:
        with pytest.raises(ConfigurationError, match='tls = "verify-full" and sslmode = '
                                                     '"require" disagree'):
            await pool.create_pool("p", url=url(t, sslmode="require"), tls="verify-full",
                                   ca_file=str(t.certs.ca_cert))
        # the same meaning twice is fine
        await pool.create_pool("p", url=url(t, sslmode="verify-full"), tls="verify-full",
                               ca_file=str(t.certs.ca_cert), sslrootcert=str(t.certs.ca_cert))
        await assert_over_tls(pool)
