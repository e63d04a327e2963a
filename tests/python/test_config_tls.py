"""The uniform TLS keys in the configuration, without a server: every
source (keywords, URL, dict, environment, TOML) gives the same model and the
same engine settings; SQLite refuses TLS (but takes tls = "disable" and
runs); rules that hold for every engine are refused with the key's path;
the key's passphrase is never shown. Servers: tests/python/pg/test_pg_tls.py
and tests/python/mssql/test_mssql_tls_uniform.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from db_pool import (
    ConfigurationError,
    DatabasePool,
    SyncDatabasePool,
    config_from_env,
    config_from_keywords,
    config_from_url,
    load_config,
)
from db_pool._common import pool_arguments
from db_pool._config_model import native_arguments

SECRET = "Key-Pass-Marker-5k"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("PEM\n")
        out[name] = str(tmp_path / name)
    return out


def pg_tls(files: dict[str, str]) -> dict[str, str]:
    return {"tls": "verify-full", "ca_file": files["ca.pem"], "cert_file": files["client.pem"],
            "key_file": files["client.key"], "key_password": SECRET}


def test_every_source_gives_the_same_model_and_libpq_settings(
        files: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tls = pg_tls(files)
    query = "&".join(f"{k}={v}" for k, v in tls.items())
    base = "postgresql://app@db.internal:5433/orders"
    from_dict = load_config({"pools": {"p": {"url": base, **tls}}})
    env = {"DB_POOL_P_URL": base, **{f"DB_POOL_P_{k.upper()}": v for k, v in tls.items()}}
    toml = tmp_path / "db.toml"
    toml.write_text("[pools.p]\n" + f'url = "{base}"\n'
                    + "".join(f'{k} = "{v}"\n' for k, v in tls.items()))
    models = [
        from_dict,
        config_from_url(f"{base}?{query}", "p"),
        config_from_keywords("p", db_type="postgresql", host="db.internal", port=5433,
                             database="orders", username="app", **tls),
        config_from_env(env),
    ]
    if pytest.importorskip("tomllib"):
        models.append(load_config(toml))
    assert all(m == from_dict for m in models), [m.masked() for m in models]
    _engine, settings, _options, _watch = native_arguments(from_dict.pools["p"])
    assert {k: v for k, v in settings[0].items() if k.startswith("ssl")} == {
        "sslmode": "verify-full", "sslrootcert": files["ca.pem"], "sslcert": files["client.pem"],
        "sslkey": files["client.key"], "sslpassword": SECRET}
    # create_pool's own path: the URL loses the keys libpq does not know
    _engine, kw_settings, _options = pool_arguments(None, None, None, None, None, None,
                                                    f"{base}?{query}&application_name=x", {})
    assert kw_settings[0]["dsn"] == f"{base}?application_name=x"
    assert {k: v for k, v in kw_settings[0].items() if k.startswith("ssl")} == {
        k: v for k, v in settings[0].items() if k.startswith("ssl")}


def test_the_passphrase_is_never_shown(files: dict[str, str]) -> None:
    config = load_config({"pools": {"p": {"url": "postgresql://db/x", **pg_tls(files)}}})
    assert SECRET not in f"{config!r} {config.masked()}"
    with pytest.raises(ConfigurationError) as info:
        load_config({"pools": {"p": {"url": "postgresql://db/x", **pg_tls(files),
                                     "key_password": 12345, "sslpassword": SECRET}}})
    text = str(info.value)
    assert SECRET not in text and "12345" not in text
    assert "pools.p.key_password: expected a string, got an integer (secret, not shown)" in text
    with pytest.raises(ConfigurationError) as info:
        pool_arguments("postgresql", "db", None, None, None, None, None,
                       {**pg_tls(files), "sslpassword": "other"})
    assert str(info.value.problems[0]) == ("key_password: key_password and sslpassword "
                                           "disagree: give one (key_password is the same for "
                                           "every engine)")
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("given, path, message", [
    ({"tls": "verify-full", "ca_file": "CA", "cert_file": "CERT"}, "cert_file",
     "needs key_file (the client certificate's private key)"),
    ({"tls": "require", "key_file": "KEY", "cert_file": "CERT", "key_password": "x"}, None, ""),
    ({"key_password": "x"}, "key_password", "is the passphrase of key_file: give key_file too"),
    ({"tls": "require", "ca_file": "CA"}, "ca_file",
     'a CA file is for verifying the server\'s certificate, which tls = "require" does '
     'not do: give tls = "verify-full" (recommended) or "verify-ca", or drop the CA file'),
    ({"tls": "prefer", "ca_file": "CA"}, "ca_file",
     'a CA file is for verifying the server\'s certificate, which tls = "prefer" does '
     'not do: give tls = "verify-full" (recommended) or "verify-ca", or drop the CA file'),
    ({"tls": "verify-ca"}, "tls",
     'tls = "verify-ca" needs ca_file: the CA certificates that signed the server\'s '
     '("system": the system\'s trusted CAs)'),
    ({"tls": "disable", "ca_file": "CA"}, "ca_file",
     'tls = "disable" makes no TLS connection: ca_file contradicts it'),
    ({"tls": "verify-full", "ca_file": "CA", "sslrootcert": "CERT"}, "ca_file",
     "ca_file and sslrootcert disagree: give one (ca_file is the same for every engine)"),
    ({"tls": "VERIFY-FULL", "ca_file": "system", "sslmode": "verify-full"}, None, ""),
    ({"ca_file": "CA"}, None, ""),  # without tls: libpq's own sslmode decides
    ({"tls": "verify-ca", "sslrootcert": "CA"}, None, ""),  # libpq's own CA key serves
    ({"tls": "require", "sslrootcert": "CA"}, "tls",
     'a CA file is for verifying the server\'s certificate, which tls = "require" does '
     'not do: give tls = "verify-full" (recommended) or "verify-ca", or drop the CA file'),
])
def test_rules_for_every_engine(files: dict[str, str], given: dict[str, Any], path: str | None,
                                message: str) -> None:
    names = {"CA": files["ca.pem"], "CERT": files["client.pem"], "KEY": files["client.key"]}
    given = {k: names.get(v, v) if isinstance(v, str) else v for k, v in given.items()}
    table = {"url": "postgresql://db.internal/x", **given}
    if path is None:
        load_config({"pools": {"p": table}})
        pool_arguments("postgresql", "db", None, None, None, None, None, given)
        return
    with pytest.raises(ConfigurationError) as info:
        load_config({"pools": {"p": table}})
    assert [str(p) for p in info.value.problems] == [f"pools.p.{path}: {message}"]
    with pytest.raises(ConfigurationError) as info:
        pool_arguments("postgresql", "db", None, None, None, None, None, given)
    assert [str(p) for p in info.value.problems] == [f"{path}: {message}"]


def test_missing_files_are_reported_all_at_once(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone.pem")
    with pytest.raises(ConfigurationError) as info:
        load_config({"pools": {"p": {"engine": "postgresql", "endpoints": [
            {"host": "a", "tls": "verify-full", "ca_file": gone},
            {"host": "b", "tls": "require", "cert_file": gone, "key_file": str(tmp_path)}]}}})
    assert [p.path for p in info.value.problems] == [
        "pools.p.endpoints[0].ca_file", "pools.p.endpoints[1].cert_file",
        "pools.p.endpoints[1].key_file"]
    assert "Is a directory" in info.value.problems[2].message


SQLITE_REFUSAL = ('sqlite is embedded (no network connection): TLS does not apply (only '
                  'tls = "disable" is accepted)')


def test_sqlite_refuses_tls(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    Path(db).touch()  # a readable ca_file: refused for being TLS, not for being missing
    with pytest.raises(ConfigurationError) as info:
        load_config({"pools": {"p": {"url": f"sqlite:///{db}?tls=require"}}})
    assert [str(p) for p in info.value.problems] == [f"pools.p.url: tls: {SQLITE_REFUSAL}"]
    with pytest.raises(ConfigurationError) as info:
        config_from_env({"DB_POOL_P_URL": f"sqlite:///{db}", "DB_POOL_P_TLS": "verify-full",
                         "DB_POOL_P_CA_FILE": db})
    assert [str(p) for p in info.value.problems] == [
        f"DB_POOL_P_TLS: {SQLITE_REFUSAL}", f"DB_POOL_P_CA_FILE: {SQLITE_REFUSAL}"]
    with SyncDatabasePool() as spool, pytest.raises(ConfigurationError, match="embedded"):
        spool.create_pool("p", db_type="sqlite", database=db, tls="prefer")


async def test_sqlite_takes_tls_disable(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    async with DatabasePool() as pool:
        await pool.create_pool("kw", db_type="sqlite", database=db, tls="disable")
        await pool.create_pool("url", url=f"sqlite:///{db}?tls=disable")
        for pid in ("kw", "url"):
            assert (await pool.query(pid, "SELECT 1 AS one"))["one"][0] == 1
    with SyncDatabasePool.from_config({"pools": {"p": {"url": f"sqlite:///{db}",
                                                       "tls": "disable"}}}) as spool:
        assert spool.query("p", "SELECT 1 AS one")["one"][0] == 1


def test_tls_unknown_value_and_did_you_mean() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_config({"pools": {"p": {"url": "postgresql://db/x", "tls": "verify_full",
                                     "ca_flie": "x"}}})
    assert [str(p) for p in info.value.problems] == [
        'pools.p.ca_flie: unknown key (did you mean "ca_file"?)',
        'pools.p.tls: expected one of "disable", "prefer", "require", "verify-ca", '
        '"verify-full", got "verify_full" (did you mean "verify-full"?)']
