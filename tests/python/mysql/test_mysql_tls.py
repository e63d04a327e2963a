"""The uniform TLS options on MySQL/MariaDB against a real server whose
certificates openssl makes now (tests/tls_certs.py): verify-full checks the
CA and the host name, require encrypts without checking, and the session
really runs over TLS (the server's Ssl_cipher)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest

from db_pool import ConfigurationError, OperationalError, SyncDatabasePool
from mysql_server import MysqlServer
from tls_certs import CertificateSet, make_certificates


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MysqlServer, CertificateSet]]:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make the test certificates")
    certs = make_certificates(tmp_path_factory.mktemp("mysql-tls"))
    server = MysqlServer.start_private(prefix="dbpool-mysql-tls-", extra_conf=(
        f"ssl_ca = {certs.ca_cert}\nssl_cert = {certs.server_cert}\n"
        f"ssl_key = {certs.server_key}\n"
        "bind-address = 127.0.0.1,127.0.0.2\n"))  # .2: an address the certificate does not name
    try:
        yield server, certs
    finally:
        server.cleanup()


def url(server: MysqlServer, host: str = "127.0.0.1", **query: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return (f"mysql://{server.user}:{server.password}@{host}:{server.port}/{server.database}"
            + (f"?{q}" if q else ""))


def cipher(pool: SyncDatabasePool, name: str) -> str:
    return str(pool.query(name, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")["Value"][0])


def test_verify_full_runs_over_tls(tls: tuple[MysqlServer, CertificateSet]) -> None:
    server, certs = tls
    with SyncDatabasePool() as pool:
        pool.create_pool("kw", url=url(server), tls="verify-full", ca_file=str(certs.ca_cert))
        pool.create_pool("url", url=url(server, tls="verify-full", ca_file=str(certs.ca_cert)))
        pool.create_pool("req", url=url(server), tls="require")
        for name in ("kw", "url", "req"):
            assert cipher(pool, name) != "", name


def test_a_wrong_ca_or_host_name_is_refused_in_bounded_time(
        tls: tuple[MysqlServer, CertificateSet], tmp_path: Path) -> None:
    server, certs = tls
    with SyncDatabasePool() as pool:
        started = time.monotonic()
        with pytest.raises(OperationalError):
            pool.create_pool("wrong_ca", url=url(server), tls="verify-full",
                             ca_file=str(certs.other_ca_cert), connect_timeout=5)
        with pytest.raises(OperationalError):  # the certificate names localhost and 127.0.0.1
            pool.create_pool("wrong_host", url=url(server, host="127.0.0.2"), tls="verify-full",
                             ca_file=str(certs.ca_cert), connect_timeout=5)
        assert time.monotonic() - started < 10
        pool.create_pool("no_host_check", url=url(server, host="127.0.0.2"), tls="verify-ca",
                         ca_file=str(certs.ca_cert))
        assert cipher(pool, "no_host_check") != ""


def test_missing_files_and_contradictions_are_config_errors(
        tls: tuple[MysqlServer, CertificateSet]) -> None:
    server, certs = tls
    with SyncDatabasePool() as pool:
        with pytest.raises(ConfigurationError, match="ca_file"):
            pool.create_pool("x", url=url(server), tls="verify-full",
                             ca_file="/nonexistent/ca.pem")
        with pytest.raises(ConfigurationError, match="ssl_mode"):
            pool.create_pool("y", url=url(server), tls="verify-full", ssl_mode="required",
                             ca_file=str(certs.ca_cert))
        assert pool.list_pools() == []
