"""Broken configurations: each gives exactly the expected problems (path and
message), all at once, as one ConfigurationError; none connects anything
(a canary SQLite pool beside the broken one would create its file); no
secret appears in any message."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from db_pool import ConfigurationError, ConfigWarning, SyncDatabasePool, load_config
from db_pool import _config_sources

SECRET = "Pw-Marker-7fq2"
PG = "postgresql://app:" + SECRET + "@db1:5432/orders"

#: (id, pool "p"'s table, the expected problems as "path: message")
BROKEN: list[tuple[str, Any, list[str]]] = [
    ("unknown key", {"url": PG, "max_szie": 3},
     ['pools.p.max_szie: unknown key (did you mean "max_size"?)']),
    ("unknown setting", {"url": PG, "sslmdoe": "require"},
     ['pools.p.sslmdoe: unknown key (did you mean "sslmode"?)']),
    ("other engine's key", {"url": PG, "journal_mode": "wal"},
     ["pools.p.journal_mode: not a postgresql setting (it is a sqlite one)"]),
    ("refused libpq key", {"url": PG, "client_encoding": "LATIN1"},
     ["pools.p.client_encoding: client_encoding is always UTF8: results are Arrow UTF-8"]),
    ("no engine", {"host": "db1"},
     ["pools.p: needs an engine, a url or endpoints"]),
    ("unknown engine", {"engine": "postgre", "host": "db1"},
     ['pools.p.engine: unknown engine "postgre" (did you mean "postgres"?); this build '
      "supports: " + ", ".join(__import__("db_pool").engines())]),
    ("engine not a string", {"engine": 5},
     ["pools.p.engine: expected an engine name, got 5"]),
    ("url scheme", {"url": "oracle://u:" + SECRET + "@h/db"},
     ["pools.p.url: the url's scheme is not an engine (sqlite://, postgresql://, mssql://, "
      "mysql://, redis://; the url is not shown)"]),
    ("url and engine disagree", {"engine": "sqlite", "url": PG},
     ["pools.p.url: the url is postgresql, but the pool's engine is sqlite"]),
    ("url and endpoints", {"url": PG, "endpoints": [PG]},
     ["pools.p.endpoints: give either url or endpoints, not both"]),
    ("url not a string", {"engine": "postgresql", "url": 5},
     ["pools.p.url: expected a database URL, got an integer"]),
    ("url bad port", {"url": "mssql://sa:" + SECRET + "@h:14x3/db"},
     ["pools.p.url: the mssql url's port is not a number (not shown, in case it is a piece "
      "of a password: percent-encode '?' and '#' in one)"]),
    ("pg url bad port", {"url": "postgresql://app:" + SECRET + "@h:54x2/db"},
     ["pools.p.url: port: expected an integer 1-65535, got a string (from the url, not shown)"]),
    ("url unknown query key", {"url": PG + "?sslmod=require"},
     ['pools.p.url: unknown postgresql setting "sslmod" in the url (did you mean "sslmode"?)']),
    ("endpoint port", {"engine": "postgresql", "endpoints": [{"host": "a", "port": 5432},
                                                            {"host": "b", "port": "54x2"}]},
     ['pools.p.endpoints[1].port: expected an integer 1-65535, got "54x2"']),
    ("port out of range", {"url": PG, "port": 70000},
     ["pools.p.port: expected an integer 1-65535, got 70000"]),
    ("port zero", {"engine": "mssql", "user": "sa", "port": 0},
     ["pools.p.port: expected an integer 1-65535, got 0"]),
    ("port a bool", {"url": PG, "port": True},
     ["pools.p.port: expected an integer 1-65535, got true"]),
    ("endpoints a string", {"engine": "postgresql", "endpoints": PG},
     ["pools.p.endpoints: expected a list of URLs or tables, got a string"]),
    ("endpoints empty", {"engine": "postgresql", "endpoints": []},
     ["pools.p.endpoints: expected at least one endpoint, got an empty list"]),
    ("endpoint a number", {"engine": "postgresql", "endpoints": [PG, 5]},
     ["pools.p.endpoints[1]: expected a URL or a table of settings, got an integer"]),
    ("endpoint of another engine", {"engine": "postgresql", "endpoints": [PG, "sqlite:///x.db"]},
     ["pools.p.endpoints[1]: the url is sqlite, but the pool's engine is postgresql"]),
    ("pool option in an endpoint", {"engine": "postgresql",
                                    "endpoints": [{"host": "a", "max_size": 3}]},
     ["pools.p.endpoints[0].max_size: a pool option: set it in the pool's table, not an "
      "endpoint's"]),
    ("max_size zero", {"url": PG, "max_size": 0},
     ["pools.p.max_size: expected an integer >= 1, got 0"]),
    ("max_size a word", {"url": PG, "max_size": "ten"},
     ['pools.p.max_size: expected an integer >= 1, got "ten"']),
    ("min_size a fraction", {"url": PG, "min_size": 1.5},
     ["pools.p.min_size: expected an integer >= 0, got 1.5"]),
    ("min_size over max_size", {"url": PG, "min_size": 5, "max_size": 2},
     ["pools.p.min_size: min_size 5 is more than max_size 2"]),
    ("min_size over the default max_size", {"url": PG, "min_size": 11},
     ["pools.p.min_size: min_size 11 is more than max_size 10"]),
    ("negative timeout", {"url": PG, "acquire_timeout": -1},
     ["pools.p.acquire_timeout: expected a number of seconds 0-315360000, got -1"]),
    ("nan timeout", {"url": PG, "query_timeout": float("nan")},
     ["pools.p.query_timeout: expected a number of seconds 0-315360000, got nan"]),
    ("infinite timeout", {"url": PG, "idle_timeout": float("inf")},
     ["pools.p.idle_timeout: expected a number of seconds 0-315360000, got inf"]),
    ("timeout over ten years", {"url": PG, "max_lifetime": 4e8},
     ["pools.p.max_lifetime: expected a number of seconds 0-315360000, got 400000000.0"]),
    ("zero connect_timeout", {"url": PG, "connect_timeout": 0},
     ["pools.p.connect_timeout: expected a number of seconds > 0 and <= 315360000, got 0"]),
    ("bool timeout", {"url": PG, "cancel_grace": True},
     ["pools.p.cancel_grace: expected a number of seconds > 0 and <= 315360000, got true"]),
    ("probe too often", {"url": PG, "probe_interval": 0.001},
     ["pools.p.probe_interval: expected a number of seconds 0.01-315360000, got 0.001"]),
    ("jitter of one", {"url": PG, "lifetime_jitter": 1},
     ["pools.p.lifetime_jitter: expected a number >= 0 and < 1, got 1"]),
    ("read_from typo", {"url": PG, "read_from": "replica"},
     ['pools.p.read_from: expected one of "primary", "replicas", "any", got "replica" '
      '(did you mean "replicas"?)']),
    ("replicas with one endpoint", {"url": PG, "read_from": "replicas"},
     ['pools.p.read_from: "replicas" needs several endpoints; this pool has one']),
    ("balance", {"url": PG, "balance": "random"},
     ['pools.p.balance: expected one of "round_robin", "least_busy", got "random"']),
    ("reset_on_release", {"url": PG, "reset_on_release": False},
     ['pools.p.reset_on_release: expected one of "auto", "always", "never", got false']),
    ("empty init_sql", {"url": PG, "init_sql": "  "},
     ["pools.p.init_sql: must be non-empty SQL"]),
    ("sslmode typo", {"url": PG, "sslmode": "verify_full"},
     ['pools.p.sslmode: expected one of "disable", "allow", "prefer", "require", "verify-ca", '
      '"verify-full", got "verify_full" (did you mean "verify-full"?)']),
    ("missing CA file", {"url": PG, "sslrootcert": "/nonexistent/ca.pem"},
     ['pools.p.sslrootcert: cannot read "/nonexistent/ca.pem": No such file or directory']),
    ("alias twice", {"url": PG, "database": "a", "dbname": "b"},
     ["pools.p.dbname: dbname and database are the same setting: give one"]),
    ("password not a string", {"url": PG, "password": 12345},
     ["pools.p.password: expected a string, got an integer (secret, not shown)"]),
    ("NUL in a setting", {"url": PG, "application_name": "a\0b"},
     ["pools.p.application_name: contains a NUL byte"]),
    ("NUL in the password", {"url": PG, "password": "a\0" + SECRET},
     ["pools.p.password: contains a NUL byte"]),
    ("sqlite without database", {"engine": "sqlite", "mode": "ro"},
     ["pools.p: sqlite needs database"]),
    ("sqlite mode", {"url": "sqlite:///x.db", "mode": "rwx"},
     ['pools.p.mode: expected one of "rwc", "rw", "ro", got "rwx" (did you mean "rw"?)']),
    ("sqlite busy timeout", {"url": "sqlite:///x.db", "busy_timeout_ms": -5},
     ["pools.p.busy_timeout_ms: expected an integer 0-86400000, got -5"]),
    ("sqlite foreign_keys", {"url": "sqlite:///x.db", "foreign_keys": "maybe"},
     ['pools.p.foreign_keys: expected true or false, got "maybe"']),
    ("sqlite url with a host", {"url": "sqlite://host/x.db"},
     ["pools.p.url: sqlite URLs have no host: use sqlite:///relative.db, "
      "sqlite:////absolute/path.db or sqlite:///:memory:"]),
    ("mssql without user", {"engine": "mssql", "host": "h", "password": SECRET},
     ["pools.p: mssql needs user"]),
    ("mssql port and instance", {"engine": "mssql", "user": "sa", "port": 1433,
                                 "instance": "SQLEXPRESS"},
     ["pools.p.port: give either port or instance"]),
    ("mssql strict without hostname check", {"engine": "mssql", "user": "sa",
                                             "encrypt": "strict", "check_hostname": False},
     ["pools.p.check_hostname: encrypt=strict checks the host name: false contradicts it"]),
    ("mssql packet size", {"engine": "mssql", "user": "sa", "packet_size": 100},
     ["pools.p.packet_size: expected an integer 512-32767, got 100"]),
    ("password and password_file", {"url": PG, "password": SECRET,
                                    "password_file": "/nonexistent"},
     ["pools.p.password_file: give one of password, password_file and password_command"]),
    ("missing password file", {"url": "postgresql://app@db1/orders",
                               "password_file": "/nonexistent/pw"},
     ['pools.p.password_file: cannot read "/nonexistent/pw": No such file or directory']),
    ("password_command not a command", {"url": "postgresql://app@db1/orders",
                                        "password_command": []},
     ["pools.p.password_command: expected a command: a string or a list of strings, got a list"]),
    ("password_command not found", {"url": "postgresql://app@db1/orders",
                                    "password_command": "/nonexistent/vault read " + SECRET},
     ['pools.p.password_command: cannot run "vault": No such file or directory']),
    ("password_command fails", {"url": "postgresql://app@db1/orders", "password_command": [
        sys.executable, "-c", f"import sys; print('{SECRET}'); sys.stderr.write('{SECRET}'); "
                              "sys.exit(3)"]},
     [f'pools.p.password_command: "{Path(sys.executable).name}" exited with status 3 (its '
      "output is not shown)"]),
    ("several problems at once", {"url": PG, "max_size": 0, "min_size": -1, "port": "x",
                                  "sslmode": "on"},
     ["pools.p.port: expected an integer 1-65535, got \"x\"",
      'pools.p.sslmode: expected one of "disable", "allow", "prefer", "require", "verify-ca", '
      '"verify-full", got "on"',
      "pools.p.min_size: expected an integer >= 0, got -1",
      "pools.p.max_size: expected an integer >= 1, got 0"]),
    ("engine twice", {"engine": "sqlite", "db_type": "sqlite3", "database": "x.db"},
     ["pools.p.db_type: db_type and engine are the same key: give one"]),
    ("pool not a table", "sqlite:///x.db",
     ["pools.p: expected a table of settings, got a string"]),
]

#: Whole configurations that are broken above the pools.
BROKEN_TOP: list[tuple[str, Any, list[str]]] = [
    ("no pools", {"pool": {}}, ['pool: unknown key (did you mean "pools"?)',
                                "pools: missing: the configuration has no pools"]),
    ("pools not a table", {"pools": ["a"]}, ["pools: expected a table of pools, got a list"]),
    ("empty pools", {"pools": {}}, ["pools: expected at least one pool, got an empty table"]),
    ("not a table", ["pools"], ["expected a path or a dict, got a list"]),
    ("odd pool name", {"pools": {"a b": {"url": "sqlite:///x.db", "max_size": -1}}},
     ['pools."a b".max_size: expected an integer >= 1, got -1']),
]


def _problems(exc: ConfigurationError) -> list[str]:
    return [str(p) for p in exc.problems]


@pytest.mark.parametrize("table,expected", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_pool(table: Any, expected: list[str], tmp_path: Path) -> None:
    canary = tmp_path / "canary.db"
    config = {"pools": {"canary": {"url": f"sqlite:///{canary}"}, "p": table}}
    with pytest.raises(ConfigurationError) as info:
        SyncDatabasePool.from_config(config)
    assert _problems(info.value) == expected
    text = str(info.value)
    assert all(line in text for line in expected)
    assert SECRET not in text and SECRET not in repr(info.value.problems)
    assert not canary.exists(), "a pool was opened before the configuration was checked"


@pytest.mark.parametrize("config,expected", [b[1:] for b in BROKEN_TOP],
                         ids=[b[0] for b in BROKEN_TOP])
def test_broken_top(config: Any, expected: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_config(config)
    assert _problems(info.value) == expected


def test_at_least_forty() -> None:
    assert len(BROKEN) + len(BROKEN_TOP) >= 40


def test_problems_of_several_pools_come_together() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_config({"pools": {"a": {"url": "sqlite:///a.db", "max_size": 0},
                               "b": {"url": PG, "sslmode": "nope"}}})
    assert [p.path for p in info.value.problems] == ["pools.a.max_size", "pools.b.sslmode"]
    assert str(info.value).startswith("invalid configuration (2 problems):\n")


# ---- files ------------------------------------------------------------------------------


def test_missing_and_broken_toml(tmp_path: Path) -> None:
    pytest.importorskip("tomllib")
    with pytest.raises(ConfigurationError) as info:
        load_config(tmp_path / "nope.toml")
    assert _problems(info.value) == [
        f"{tmp_path / 'nope.toml'}: cannot read the file: No such file or directory"]
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[pools.p]\nurl = "{PG}"\npassword = {SECRET}\n')
    with pytest.raises(ConfigurationError) as info:
        load_config(bad)
    (problem,) = info.value.problems
    assert problem.path == str(bad)
    assert problem.message.startswith("not valid TOML: ") and "line 3" in problem.message
    assert SECRET not in str(info.value)
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_config(bad)
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked.toml"
        locked.write_text("[pools.p]\n")
        locked.chmod(0)
        with pytest.raises(ConfigurationError, match="Permission denied"):
            load_config(locked)


def test_toml_problems_have_paths(tmp_path: Path) -> None:
    pytest.importorskip("tomllib")
    path = tmp_path / "db.toml"
    path.write_text('[pools.orders]\nengine = "postgresql"\nendpoints = [\n'
                    '  { host = "a", port = 5432 },\n  { host = "b", port = "54x2" },\n]\n')
    with pytest.raises(ConfigurationError) as info:
        load_config(path)
    assert str(info.value) == (f"invalid configuration in {path} (1 problem):\n"
                               '  pools.orders.endpoints[1].port: expected an integer 1-65535, '
                               'got "54x2"')


# ---- password_file and password_command ---------------------------------------------------


def _pool(**secret: Any) -> dict[str, Any]:
    return {"pools": {"p": {"url": "postgresql://app@db1/orders", **secret}}}


def _password(config: Any) -> Any:
    return config.pools["p"].endpoints[0].settings["password"]


def test_password_file(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text(SECRET + "\n")
    f.chmod(0o600)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _password(load_config(_pool(password_file=str(f)))) == SECRET
    f.chmod(0o644)
    with pytest.warns(ConfigWarning, match="may be read by group or others"):
        assert _password(load_config(_pool(password_file=str(f)))) == SECRET
    f.write_text("")
    f.chmod(0o600)
    with pytest.raises(ConfigurationError) as info:
        load_config(_pool(password_file=str(f)))
    assert _problems(info.value) == [f'pools.p.password_file: "{f}" is empty']


def test_password_command() -> None:
    cmd = [sys.executable, "-c", f"print('{SECRET}')"]
    assert _password(load_config(_pool(password_command=cmd))) == SECRET
    # a string is split into words (no shell)
    line = f"{sys.executable} -c 'import sys; sys.stdout.write(\"x y\")'"
    assert _password(load_config(_pool(password_command=line))) == "x y"
    with pytest.raises(ConfigurationError) as info:
        load_config(_pool(password_command=[sys.executable, "-c", "pass"]))
    assert _problems(info.value) == [
        f'pools.p.password_command: the output of "{Path(sys.executable).name}" is empty']


@pytest.mark.parametrize("script", [
    "import time; time.sleep(30)",
    # a child that keeps the output open after its parent is killed
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
    "'import time; time.sleep(30)']); time.sleep(30)",
])
def test_password_command_that_hangs_is_bounded(script: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_config_sources, "PASSWORD_COMMAND_TIMEOUT", 0.5)
    start = time.monotonic()
    with pytest.raises(ConfigurationError) as info:
        load_config(_pool(password_command=[sys.executable, "-c", script]))
    assert time.monotonic() - start < 5
    assert _problems(info.value) == [
        f'pools.p.password_command: "{Path(sys.executable).name}" did not finish within '
        "0.5 s (killed)"]


def test_password_command_killed_by_a_signal() -> None:
    script = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    with pytest.raises(ConfigurationError, match="was killed by signal 15"):
        load_config(_pool(password_command=[sys.executable, "-c", script]))
