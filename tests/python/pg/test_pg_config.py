"""from_config end to end on the test PostgreSQL server: a TOML file whose
password comes from ${ENV}, with the environment overriding a pool option,
makes working pools on both APIs; a wrong password from password_command is
an AuthenticationError that does not show it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from db_pool import AuthenticationError, DatabasePool, SyncDatabasePool, load_config

from .conftest import pg_options

pytest.importorskip("tomllib")


def _toml(server: object, schema: str) -> str:
    s = server
    return (
        "[pools.orders]\n"
        f'url = "postgresql://{s.user}@{s.host}:{s.port}/{s.database}"\n'  # type: ignore[attr-defined]
        'password = "${TEST_PG_PASSWORD}"\n'
        f'options = "{pg_options(schema)}"\n'
        "max_size = 3\n"
        "acquire_timeout = 5\n"
        "application_name = \"from-config\"\n"
    )


async def test_from_config_toml_on_postgresql(pg_server: object, schema: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "db.toml"
    path.write_text(_toml(pg_server, schema))
    monkeypatch.setenv("TEST_PG_PASSWORD", pg_server.password)  # type: ignore[attr-defined]
    monkeypatch.setenv("DB_POOL_ORDERS_MAX_SIZE", "2")
    async with await DatabasePool.from_config(path, env=True) as pool:
        df = await pool.query("orders", "SELECT current_schema() AS s, "
                              "current_setting('application_name') AS app")
        assert df.row(0) == (schema, "from-config")
        assert pool.stats("orders")["max_size"] == 2  # the environment won
    with SyncDatabasePool.from_config(path) as spool:
        assert spool.stats("orders")["max_size"] == 3
        assert spool.query("orders", "SELECT 1 AS one")["one"][0] == 1


def test_wrong_password_from_a_command(pg_server: object, schema: str) -> None:
    s = pg_server
    marker = "Wrong-Pw-Marker-91x"
    config = {"pools": {"orders": {
        "url": f"postgresql://{s.user}@{s.host}:{s.port}/{s.database}",  # type: ignore[attr-defined]
        "password_command": [sys.executable, "-c", f"print('{marker}')"],
        "connect_timeout": 5,
    }}}
    assert load_config(config).pools["orders"].endpoints[0].settings["password"] == marker
    with pytest.raises(AuthenticationError) as info:
        SyncDatabasePool.from_config(config)
    assert marker not in str(info.value)
