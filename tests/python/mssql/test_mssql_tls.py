"""TLS: the encrypt setting and the CA file reach FreeTDS per pool
(through the driver's own freetds.conf sections), checked against the test
server's TLS modes and counters; asking for encryption (or giving a CA
file) never ends in a plaintext login; the settings file is a memory file
that no kill leaves behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from db_pool import ConfigurationError, DatabasePool, OperationalError
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


@pytest.mark.parametrize("how", [{"encrypt": "require"}, {"encrypt": "strict"},
                                 {"encryption": True}, {"ca_file": "system"},
                                 {"encrypt": "request", "ca_file": "system"}])
async def test_encryption_asked_for_refuses_a_server_without_tls(
    server: Target, how: dict[str, Any]
) -> None:
    """Never a silent downgrade: the server answers ENCRYPT_NOT_SUP, the
    login is not sent, and the error says why, within connect_timeout."""
    if server.tds is None:
        pytest.skip("the test server's TLS is off; a real server's is unknown")
    def logins() -> int:
        return server.tds.stats.get("logins") + server.tds.stats.get("login_failures")

    before = logins()
    async with DatabasePool() as pool:
        start = time.monotonic()
        with pytest.raises(OperationalError) as ei:
            await pool.create_pool("t", **server.kwargs(connect_timeout=3, **how))
        assert time.monotonic() - start < 3
        e = ei.value
        assert (e.category, e.sqlstate) == ("network", "08001"), e
        assert "the server does not offer encryption" in str(e), e
    assert logins() == before  # no LOGIN7 reached it


async def test_strict_verifies_the_certificate_and_its_host_name(tls_on: TdsTestServer) -> None:
    before = tls_on.stats.get("tls_full")
    async with DatabasePool() as pool:
        await pool.create_pool("t", **kwargs(tls_on, encrypt="strict", ca_file=tls_on.cafile))
        await roundtrip(pool, "t")
        # the certificate names localhost and 127.0.0.1, not 127.0.0.2: strict
        # refuses that server, require without the host name check takes it
        with TdsTestServer(tls="on", host="127.0.0.2") as elsewhere:
            other = {**kwargs(elsewhere, ca_file=elsewhere.cafile), "host": "127.0.0.2"}
            with pytest.raises(OperationalError):
                await pool.create_pool("other", **other, encrypt="strict", login_timeout=5)
            await pool.create_pool("other", **other, encrypt="require", check_hostname=False)
            await roundtrip(pool, "other")
            await pool.close_pool("other")
        # without ca_file, strict trusts the system's CAs only: not a self-signed one
        with pytest.raises(OperationalError):
            await pool.create_pool("sys", **kwargs(tls_on, encrypt="strict", login_timeout=5))
    assert tls_on.stats.get("tls_full") == before + 1


async def test_contradictory_tls_settings(server: Target) -> None:
    async with DatabasePool() as pool:
        for bad, match in [({"encrypt": "strict", "check_hostname": False}, "check_hostname"),
                           ({"encrypt": "off", "ca_file": "system"}, "ca_file"),
                           ({"encrypt": "sometimes"}, "strict, require or off")]:
            with pytest.raises(ConfigurationError, match=match):
                await pool.create_pool("t", **server.kwargs(**bad))


async def test_server_that_requires_tls(tls_require: TdsTestServer) -> None:
    before = tls_require.stats.get("tls_full")
    async with DatabasePool() as pool:
        await pool.create_pool("t", **kwargs(tls_require, encryption="require"))
        await roundtrip(pool, "t")
        with pytest.raises(OperationalError):
            await pool.create_pool("off", **kwargs(tls_require, encryption="off", login_timeout=5))
    assert tls_require.stats.get("tls_full") == before + 1


CHILD = textwrap.dedent("""
    import asyncio, sys
    from db_pool import DatabasePool

    async def main(port, silent_port):
        pool = DatabasePool()
        await pool.create_pool("ok", db_type="mssql", host="127.0.0.1", port=port,
                               username="sa", password="db-pool-test", encrypt="off")
        print("connected", flush=True)
        await pool.create_pool("stuck", db_type="mssql", host="127.0.0.1", port=silent_port,
                               username="sa", password="db-pool-test", connect_timeout=60,
                               ca_file="system")

    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
""")


def test_killed_process_leaves_no_settings_file(server: Target, tmp_path: Path) -> None:
    """The FreeTDS settings live in a memory file: nothing in $TMPDIR (or
    anywhere) while the process runs, and nothing after a SIGKILL, either
    with a pool connected or in the middle of a connect."""
    if server.tds is None:
        pytest.skip("needs the test server")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    import socket

    with socket.socket() as silent:  # accepts (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(server.port),
                                 str(silent.getsockname()[1])],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == "connected\n", (line, proc.stderr and proc.stderr.read())
            time.sleep(0.5)  # the second pool is now inside db-lib's login
            fds = [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")]
            assert any(link.startswith("/memfd:db-pool-freetds.conf") for link in fds), fds
            assert not any("freetds" in link and not link.startswith("/memfd:") for link in fds), fds
            assert list(tmpdir.iterdir()) == []
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
            proc.wait()
    assert list(tmpdir.iterdir()) == []
