"""Redis over TLS (rediss://, the uniform tls keys) against a real
redis-server whose certificates openssl makes now (tests/tls_certs.py).
Its TLS port speaks nothing else, so a pool that works there works over
TLS; the server also listens on 127.0.0.2, an address the certificate does
not name."""

from __future__ import annotations

import time
from typing import Any, Iterator

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from db_pool import ConfigurationError, OperationalError, PoolTimeout, SyncDatabasePool
from redis_server import RedisServer, find_redis_bins, tls_unsupported_reason

PASSWORD = "dbpool-secret"


@pytest.fixture(scope="module")
def tls_server() -> Iterator[RedisServer]:
    reason = tls_unsupported_reason(find_redis_bins())
    if reason:
        pytest.skip(reason)
    server = RedisServer.start_private(tls=True, prefix="dbpool-redis-tls-",
                                       extra_conf="bind 127.0.0.1 127.0.0.2")
    yield server
    server.cleanup()


def ca(server: RedisServer) -> str:
    assert server.certs is not None
    return str(server.certs.ca_cert)


def no_secret(exc: pytest.ExceptionInfo[Any]) -> None:
    assert PASSWORD not in str(exc.value) and PASSWORD not in repr(exc.value)


def test_commands_pipelines_scans_and_writes_run_over_tls(tls_server: RedisServer) -> None:
    big = bytes(range(256)) * 12_000  # 3 MB: many TLS records each way
    frame = pl.DataFrame({"id": [f"{i}" for i in range(3000)],
                          "name": [f"name {i}" * (i % 7) for i in range(3000)],
                          "n": list(range(3000))})
    with SyncDatabasePool() as pool:
        pool.create_pool("t", url=tls_server.tls_url, ca_file=ca(tls_server), max_size=2)
        assert pool.command("t", "SET", "tls:big", big) == "OK"
        assert pool.command("t", "GET", "tls:big") == big
        assert pool.pipeline("t", [("INCR", "tls:n")] * 2000)[-1] == 2000
        assert pool.write_frame("t", frame, key_column="id", prefix="tls:h:") == 3000
        got = pool.query("t", "HGETALL", pattern="tls:h:*", schema={"name": pl.Utf8, "n": pl.Int64})
        want = frame.select(pl.format("tls:h:{}", "id").alias("_key"), "name", "n")
        assert_frame_equal(got.sort("n"), want.sort("n"), check_column_order=False)


def test_the_tls_port_refuses_plain_text(tls_server: RedisServer) -> None:
    plain_to_tls = tls_server.tls_url.replace("rediss://", "redis://")
    with SyncDatabasePool() as pool:
        with pytest.raises(OperationalError) as exc:
            pool.create_pool("plain", url=plain_to_tls, connect_timeout=3)
        no_secret(exc)


def test_an_idle_tls_connection_is_kept(tls_server: RedisServer) -> None:
    # TLS 1.3 session tickets arrive after the handshake: an idle
    # connection whose socket has such records is still good
    with SyncDatabasePool() as pool:
        pool.create_pool("t", url=tls_server.tls_url, ca_file=ca(tls_server), max_size=1)
        first = pool.command("t", "CLIENT", "ID")
        time.sleep(0.2)
        assert pool.command("t", "CLIENT", "ID") == first
        assert pool.command("t", "CLIENT", "ID") == first


def test_a_wrong_ca_or_host_is_refused_in_bounded_time(tls_server: RedisServer) -> None:
    assert tls_server.certs is not None
    other = str(tls_server.certs.other_ca_cert)
    other_host = tls_server.tls_url.replace("127.0.0.1", "127.0.0.2")
    with SyncDatabasePool() as pool:
        started = time.monotonic()
        for url, options in [
            (tls_server.tls_url, {"ca_file": other}),
            (tls_server.tls_url, {}),  # rediss:// checks against the system's CAs
            (other_host, {"ca_file": ca(tls_server)}),  # the certificate names 127.0.0.1
        ]:
            with pytest.raises(OperationalError, match="certificate") as exc:
                pool.create_pool("bad", url=url, connect_timeout=5, **options)
            no_secret(exc)
        assert time.monotonic() - started < 10
        pool.create_pool("ca_only", url=other_host, tls="verify-ca", ca_file=ca(tls_server))
        pool.create_pool("unchecked", url=tls_server.tls_url, tls="require")
        pool.create_pool("query", url=tls_server.tls_url + "?tls=require")
        for name in ("ca_only", "unchecked", "query"):
            assert pool.command(name, "PING") == "PONG"


def test_a_client_certificate_is_presented(redis_server_factory: Any) -> None:
    server = redis_server_factory(tls=True)  # started with client certificates optional
    assert server.cli("CONFIG", "SET", "tls-auth-clients", "yes").strip() == "OK"
    certs = server.certs
    with SyncDatabasePool() as pool:
        with pytest.raises(OperationalError):
            pool.create_pool("none", url=server.tls_url, ca_file=str(certs.ca_cert),
                             connect_timeout=5)
        pool.create_pool("cert", url=server.tls_url, ca_file=str(certs.ca_cert),
                         cert_file=str(certs.client_cert), key_file=str(certs.client_key),
                         key_password=certs.key_password)
        assert pool.command("cert", "PING") == "PONG"
        with pytest.raises(ConfigurationError, match="key_file") as exc:
            pool.create_pool("badpw", url=server.tls_url, ca_file=str(certs.ca_cert),
                             cert_file=str(certs.client_cert), key_file=str(certs.client_key),
                             key_password="not-" + certs.key_password)
        assert certs.key_password not in str(exc.value)


def test_a_frozen_tls_server_fails_within_the_deadlines(redis_server_factory: Any) -> None:
    server = redis_server_factory(tls=True)
    with SyncDatabasePool() as pool:
        pool.create_pool("t", url=server.tls_url, ca_file=str(server.certs.ca_cert),
                         max_size=1, connect_timeout=2)
        assert pool.command("t", "PING") == "PONG"
        server.freeze()
        try:
            started = time.monotonic()
            with pytest.raises(OperationalError):  # QueryTimeout: the reply is abandoned
                pool.command("t", "PING", timeout=1)
            assert time.monotonic() - started < 3
            started = time.monotonic()
            with pytest.raises((OperationalError, PoolTimeout)):  # a new handshake
                pool.command("t", "PING", timeout=5)
            assert time.monotonic() - started < 6
        finally:
            server.thaw()
        assert pool.command("t", "PING") == "PONG"


@pytest.mark.parametrize("url_tail, options, match", [
    ("", {"tls": "prefer"}, "nothing negotiates"),
    ("", {"tls": "verify-full", "ca_file": "system", "cert_file": "/nonexistent.pem",
          "key_file": "/nonexistent.key"}, "cert_file"),
    ("?tls=disable", {"ca_file": "system"}, "contradicts"),
])
def test_bad_tls_settings_are_config_errors(tls_server: RedisServer, url_tail: str,
                                            options: dict[str, str], match: str) -> None:
    with SyncDatabasePool() as pool:
        with pytest.raises(ConfigurationError, match=match) as exc:
            pool.create_pool("x", url=tls_server.tls_url + url_tail, **options)
        no_secret(exc)
        assert pool.list_pools() == []


def test_tls_needs_tcp_and_a_ca_to_verify(tls_server: RedisServer) -> None:
    with SyncDatabasePool() as pool:
        with pytest.raises(ConfigurationError, match="TCP"):
            pool.create_pool("u", url=f"unix://:{PASSWORD}@{tls_server.socket_path}",
                             tls="require")
        with pytest.raises(ConfigurationError, match="ca_file"):
            pool.create_pool("v", url=tls_server.url, tls="verify-full")
        with pytest.raises(ConfigurationError, match="Sentinel"):
            pool.create_pool("s", url="redis+sentinel://127.0.0.1:1/mymaster", tls="require")


def test_a_configuration_takes_rediss_urls(tls_server: RedisServer) -> None:
    """from_config: the URL's TLS defaults survive the configuration model,
    and a pool's own tls key still chooses another mode."""
    for pool_table in ({"url": tls_server.tls_url, "ca_file": ca(tls_server)},
                       {"url": tls_server.tls_url, "tls": "require"},
                       {"url": tls_server.url.replace("redis://", "rediss://"), "tls": "disable"}):
        with SyncDatabasePool.from_config({"pools": {"cache": pool_table}}) as pool:
            assert pool.command("cache", "PING") == "PONG"
    with pytest.raises(ConfigurationError, match="nothing negotiates"):
        SyncDatabasePool.from_config({"pools": {"cache": {"url": tls_server.tls_url,
                                                          "tls": "prefer"}}})
