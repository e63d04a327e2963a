"""The configuration model's sources: every source (create_pool keywords, a
URL, a dict, the environment, a TOML file with ${ENV} and password_file)
gives the same model for the same pools; env parsing and precedence;
from_config()/from_env() make working SQLite pools on both APIs."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import db_pool
from db_pool import (
    Config,
    ConfigurationError,
    DatabasePool,
    SyncDatabasePool,
    config_from_env,
    config_from_keywords,
    config_from_url,
    load_config,
)

HAVE_TOML = True
try:
    import tomllib  # noqa: F401
except ImportError:  # Python 3.10
    HAVE_TOML = False

needs_toml = pytest.mark.skipif(not HAVE_TOML, reason="tomllib needs Python 3.11+")

# ---- random pools, each written in every source's form ------------------------------

PASSWORD_CHARS = "abcXYZ019/:@%!#?&= "
NAME_CHARS = "abcdefghij_"


def _word(rng: random.Random, chars: str = "abcdefghijklmnop", n: int = 8) -> str:
    return "".join(rng.choice(chars) for _ in range(rng.randint(1, n)))


def random_pool(rng: random.Random) -> dict[str, Any]:
    """One pool: engine, endpoint addresses, shared settings, options."""
    engine = rng.choice(["sqlite", "postgresql", "mssql"])
    options: dict[str, Any] = {}
    if rng.random() < 0.7:
        options["max_size"] = rng.randint(2, 40)
        options["min_size"] = rng.randint(0, options["max_size"])
    if rng.random() < 0.5:
        options["acquire_timeout"] = rng.choice([0.5, 2, 7.25, 30])
    if rng.random() < 0.3:
        options["reset_on_release"] = rng.choice(["auto", "always", "never"])
    if rng.random() < 0.3:
        options["validate_after"] = rng.choice([-1, 0, 3.5])
    if engine == "sqlite":
        settings: dict[str, Any] = {"database": f"{_word(rng)}.db"}
        if rng.random() < 0.5:
            settings["journal_mode"] = rng.choice(["wal", "delete"])
        return {"engine": engine, "hosts": [], "settings": settings, "options": options}
    n_hosts = 1 if engine == "mssql" else rng.choice([1, 1, 2, 3])
    hosts = [(f"{_word(rng)}.internal", rng.randint(1, 65535)) for _ in range(n_hosts)]
    settings = {"database": _word(rng), "user": _word(rng),
                "password": "".join(rng.choice(PASSWORD_CHARS) for _ in range(12)) + "x"}
    if engine == "postgresql" and rng.random() < 0.5:
        settings["sslmode"] = rng.choice(["require", "verify-full"])
    if engine == "mssql" and rng.random() < 0.5:
        settings["encrypt"] = rng.choice(["require", "strict", "off"])
    if n_hosts > 1 and rng.random() < 0.5:
        options["read_from"] = rng.choice(["replicas", "any"])
    return {"engine": engine, "hosts": hosts, "settings": settings, "options": options}


def as_url(spec: dict[str, Any]) -> str:
    s = spec["settings"]
    engine = spec["engine"]
    extra = {k: v for k, v in s.items() if k not in ("database", "user", "password")}
    query = "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in extra.items()) if extra else ""
    if engine == "sqlite":
        return f"sqlite:///{s['database']}{query}"
    hosts = ",".join(f"{h}:{p}" for h, p in spec["hosts"])
    cred = f"{quote(s['user'], safe='')}:{quote(s['password'], safe='')}"
    return f"{engine}://{cred}@{hosts}/{quote(s['database'], safe='')}{query}"


def as_keywords(spec: dict[str, Any]) -> dict[str, Any]:
    s = dict(spec["settings"])
    kw: dict[str, Any] = {"db_type": spec["engine"], **spec["options"]}
    if spec["hosts"]:
        kw["host"] = ",".join(h for h, _ in spec["hosts"])
        kw["port"] = ",".join(str(p) for _, p in spec["hosts"]) if len(spec["hosts"]) > 1 \
            else spec["hosts"][0][1]
        kw["username"] = s.pop("user")
    kw.update(s)
    return kw


def as_table(spec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A dict/TOML table: a url, an engine with settings, or endpoints."""
    form = rng.choice(["url", "settings", "endpoints"])
    if form == "url" or not spec["hosts"]:
        return {"url": as_url(spec), **spec["options"]} if form == "url" else {
            "engine": spec["engine"], **spec["settings"], **spec["options"]}
    if form == "settings" and len(spec["hosts"]) == 1:
        h, p = spec["hosts"][0]
        return {"engine": spec["engine"], "host": h, "port": p, **spec["settings"],
                **spec["options"]}
    return {"engine": spec["engine"], **spec["settings"], **spec["options"],
            "endpoints": [{"host": h, "port": p} for h, p in spec["hosts"]]}


def as_env(name: str, spec: dict[str, Any]) -> dict[str, str]:
    env = {f"DB_POOL_{name.upper()}_{k.upper()}": str(v) for k, v in spec["options"].items()}
    if len(spec["hosts"]) > 1 and spec["engine"] == "postgresql":
        one = [dict(spec, hosts=[h]) for h in spec["hosts"]]
        env[f"DB_POOL_{name.upper()}_ENDPOINTS"] = " ".join(as_url(s) for s in one)
    else:
        env[f"DB_POOL_{name.upper()}_URL"] = as_url(spec)
    return env


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


def as_toml(tables: dict[str, dict[str, Any]]) -> str:
    out = []
    for name, table in tables.items():
        out.append(f"[pools.{name}]")
        out += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(out) + "\n"


def _pool_names(rng: random.Random, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = _word(rng, NAME_CHARS.replace("_", ""), 6)
        if name not in names and name != "default":
            names.append(name)
    return names


@pytest.mark.parametrize("seed", range(40))
def test_every_source_gives_the_same_model(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    names = _pool_names(rng, rng.randint(1, 3))
    specs = {n: random_pool(rng) for n in names}

    by_keywords = {n: config_from_keywords(n, **as_keywords(s)).pools[n] for n, s in specs.items()}
    expected = Config(by_keywords)
    by_url = {n: config_from_url(as_url(s), n, **s["options"]).pools[n] for n, s in specs.items()}
    assert Config(by_url) == expected

    tables = {n: as_table(s, rng) for n, s in specs.items()}
    assert load_config({"pools": tables}) == expected

    env: dict[str, str] = {"UNRELATED": "1"}
    for n, s in specs.items():
        env.update(as_env(n, s))
    assert config_from_env(env) == expected

    if HAVE_TOML:
        # the passwords through ${ENV} and password_file instead of inline
        secrets: dict[str, str] = {}
        for i, (n, table) in enumerate(tables.items()):
            pw = specs[n]["settings"].get("password")
            if pw is None or "url" in table:
                continue
            if i % 2:
                secrets[f"PW_{n.upper()}"] = pw
                table["password"] = "${PW_" + n.upper() + "}"
            else:
                f = tmp_path / f"{n}.pw"
                f.write_text(pw + "\n")
                f.chmod(0o600)
                del table["password"]
                table["password_file"] = str(f)
        path = tmp_path / "db.toml"
        path.write_text(as_toml(tables))
        assert load_config(path, environ=secrets) == expected


def test_database_url_is_the_default_pool() -> None:
    url = "postgresql://app:s%3Acret@db1:5433/orders"
    by_env = config_from_env({"DATABASE_URL": url, "DB_POOL_DEFAULT_MAX_SIZE": "4"})
    assert by_env == config_from_url(url, max_size=4)
    ep = by_env.pools["default"].endpoints[0].settings
    assert ep == {"host": "db1", "port": 5433, "database": "orders", "user": "app",
                  "password": "s:cret"}
    # the more specific variable wins
    both = config_from_env({"DATABASE_URL": url, "DB_POOL_DEFAULT_URL": "sqlite:///x.db"})
    assert both.pools["default"].engine == "sqlite"


def test_env_pool_names_and_keys() -> None:
    env = {
        "DB_POOL_ORDER_ITEMS_URL": "sqlite:///items.db",
        "DB_POOL_ORDER_ITEMS_MAX_SIZE": "7",
        "DB_POOL_ORDER_ITEMS_STATEMENT_CACHE_SIZE": "5",
        "DB_POOL_ORDER_ITEMS_FOREIGN_KEYS": "off",
        "DB_POOL_HA_ENGINE": "postgresql",
        "DB_POOL_HA_ENDPOINTS": "postgresql://a:1/db  postgresql://b:2/db",
        "DB_POOL_HA_READ_FROM": "replicas",
        "DB_POOL_TEST_PG_DSN": "postgresql://ignored",  # no pool "test_pg": not ours
    }
    config = config_from_env(env)
    assert sorted(config.pools) == ["ha", "order_items"]
    items = config.pools["order_items"]
    assert items.options["max_size"] == 7
    assert items.endpoints[0].settings == {"database": "items.db", "statement_cache_size": 5,
                                           "foreign_keys": False}
    ha = config.pools["ha"]
    assert [e.settings for e in ha.endpoints] == [
        {"host": "a", "port": 1, "database": "db"}, {"host": "b", "port": 2, "database": "db"}]
    assert ha.options["read_from"] == "replicas"


def test_env_problems_name_the_variable() -> None:
    env = {
        "DB_POOL_ORDERS_URL": "sqlite:///o.db",
        "DB_POOL_ORDERS_MAX_SIZ": "3",
        "DB_POOL_ORDERS_ACQUIRE_TIMEOUT": "soon",
        "DB_POOL_ORDRES_MAX_SIZE": "3",
    }
    with pytest.raises(ConfigurationError) as info:
        config_from_env(env)
    assert [tuple(p) for p in info.value.problems] == [
        ("DB_POOL_ORDERS_MAX_SIZ", "unknown key 'max_siz' for pool 'orders' (did you mean "
                                   "\"max_size\"?)"),
        ("DB_POOL_ORDRES_MAX_SIZE", "sets a key of pool 'ordres', which is not defined (no "
                                    "DB_POOL_ORDRES_URL) (did you mean \"orders\"?)"),
        ("DB_POOL_ORDERS_ACQUIRE_TIMEOUT",
         'expected a number of seconds 0-315360000, got "soon"'),
    ]
    with pytest.raises(ConfigurationError, match="no pools in the environment"):
        config_from_env({"HOME": "/root"})


def test_env_overrides_a_file(tmp_path: Path) -> None:
    base = {"pools": {"orders": {"engine": "sqlite", "database": "a.db", "max_size": 5,
                                 "path": "ignored-by-alias.db"}}}
    base["pools"]["orders"].pop("path")
    env = {"DB_POOL_ORDERS_MAX_SIZE": "9", "DB_POOL_ORDERS_PATH": "b.db",
           "DB_POOL_EXTRA_URL": "sqlite:///extra.db"}
    config = load_config(base, env=True, environ=env)
    orders = config.pools["orders"]
    assert orders.options["max_size"] == 9
    assert orders.endpoints[0].settings == {"database": "b.db"}  # the alias replaced it
    assert sorted(config.pools) == ["extra", "orders"]
    assert load_config(base, environ=env).pools["orders"].options["max_size"] == 5  # env=False
    # a url from the environment replaces the file's url and endpoints
    with_eps = {"pools": {"orders": {"engine": "sqlite", "endpoints": ["sqlite:///e.db"]}}}
    config = load_config(with_eps, env=True, environ={"DB_POOL_ORDERS_URL": "sqlite:///u.db"})
    assert config.pools["orders"].endpoints[0].settings == {"database": "u.db"}
    # a bad value from the environment is named by its variable
    with pytest.raises(ConfigurationError) as info:
        load_config(base, env=True, environ={"DB_POOL_ORDERS_MIN_SIZE": "x"})
    assert [str(p) for p in info.value.problems] == [
        'DB_POOL_ORDERS_MIN_SIZE: expected an integer >= 0, got "x"']


def test_pool_settings_win_over_endpoint_urls() -> None:
    config = load_config({"pools": {"p": {
        "url": "postgresql://u:urlpw@h:5432/db?sslmode=disable",
        "password": "tablepw", "sslmode": "require"}}})
    assert config.pools["p"].endpoints[0].settings == {
        "host": "h", "port": 5432, "database": "db", "user": "u", "password": "tablepw",
        "sslmode": "require"}
    # the same rule as create_pool's keywords over its url
    assert config == config_from_keywords("p", url="postgresql://u:urlpw@h:5432/db?sslmode=disable",
                                          password="tablepw", sslmode="require")


@needs_toml
def test_toml_with_interpolation(tmp_path: Path) -> None:
    path = tmp_path / "db.toml"
    path.write_text(
        '[pools.orders]\n'
        'url = "postgresql://app@${DB_HOST}:${DB_PORT}/orders"\n'
        'password = "${DB_PASSWORD}"\n'
        'application_name = "cost: $${not a variable}"\n'
        'max_size = 12\n'
        '[pools.local]\n'
        'engine = "sqlite"\n'
        'database = "${DATA_DIR}/app.db"\n'
    )
    env = {"DB_HOST": "db1", "DB_PORT": "6543", "DB_PASSWORD": "Pw-from-env", "DATA_DIR": "/data"}
    config = load_config(path, environ=env)
    assert config.pools["orders"].endpoints[0].settings == {
        "host": "db1", "port": 6543, "database": "orders", "user": "app",
        "password": "Pw-from-env", "application_name": "cost: ${not a variable}"}
    assert config.pools["local"].endpoints[0].settings == {"database": "/data/app.db"}
    assert "Pw-from-env" not in repr(config) and "***" in repr(config)
    # a value from ${...} that is wrong is not shown
    with pytest.raises(ConfigurationError) as info:
        load_config(path, environ=dict(env, DB_PORT="Pw-oops"))
    assert [str(p) for p in info.value.problems] == [
        "pools.orders.url: port: expected an integer 1-65535, got a string "
        "(from the url, not shown)"]
    with pytest.raises(ConfigurationError) as info:
        load_config(path, environ={})
    assert [str(p) for p in info.value.problems] == [
        "pools.orders.url: ${DB_HOST} is not set in the environment",
        "pools.orders.url: ${DB_PORT} is not set in the environment",
        "pools.orders.password: ${DB_PASSWORD} is not set in the environment",
        "pools.local.database: ${DATA_DIR} is not set in the environment",
    ]


def test_diff() -> None:
    old = load_config({"pools": {
        "a": {"engine": "postgresql", "user": "u", "password": "old",
              "endpoints": [{"host": "h1"}, {"host": "h2"}]},
        "b": {"url": "sqlite:///b.db"},
    }})
    new = load_config({"pools": {
        "a": {"engine": "postgresql", "user": "u", "password": "new", "max_size": 20,
              "endpoints": [{"host": "h1"}, {"host": "h3"}]},
        "c": {"url": "sqlite:///c.db"},
    }})
    d = db_pool.diff(old, new)
    assert d.added == ("c",) and d.removed == ("b",)
    a = d.changed["a"]
    assert a.options == {"max_size": (10, 20)}
    assert a.endpoints_added == ("h3/",) and a.endpoints_removed == ("h2/",)
    assert a.settings_changed == {"h1/": ("password",)}
    assert not db_pool.diff(new, new)
    assert "new" not in repr(d) and "old" not in repr(d.changed["a"].settings_changed)


def test_pools_from_config_work_on_both_apis(tmp_path: Path) -> None:
    config = {"pools": {
        "files": {"url": f"sqlite:///{tmp_path}/f.db", "max_size": 3, "journal_mode": "wal"},
        "mem": {"engine": "sqlite", "database": ":memory:", "min_size": 0},
    }}
    with SyncDatabasePool.from_config(config) as pool:
        assert sorted(pool.list_pools()) == ["files", "mem"]
        assert pool.stats("files")["max_size"] == 3
        assert pool.query("files", "PRAGMA journal_mode")["journal_mode"][0] == "wal"
        assert pool.query("mem", "SELECT 41 + 1 AS x")["x"][0] == 42


@pytest.mark.skipif(not HAVE_TOML, reason="TOML needs Python 3.11's tomllib")
def test_a_file_sets_alerts_leak_detection_and_the_slow_query_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The options the Python layer watches with come from a file as from
    create_pool (on_alert= is code: create_pool only)."""
    path = tmp_path / "db.toml"
    path.write_text(
        "[pools.w]\nurl = \"sqlite:///:memory:\"\nmax_size = 1\nslow_query_threshold = 0\n"
        "alert_interval = 0.05\n"
        "alerts = [{ rule = \"saturation\", threshold = 1.0 }]\n")
    with SyncDatabasePool.from_config(path) as pool:
        with caplog.at_level("WARNING", logger="db_pool"):
            pool.query("w", "SELECT 1 AS x")
        assert any("slow" in r.getMessage() for r in caplog.records)
        samples = pool.metrics("w")["dbpool_alert_firing"]
        assert [s["labels"]["rule"] for s in samples] == ["saturation"]
    bad = {"pools": {"w": {"url": "sqlite:///:memory:",
                           "alerts": [{"rule": "saturation", "threshold": 90}]}}}
    with pytest.raises(ConfigurationError) as info:
        load_config(bad)
    assert [p.path for p in info.value.problems] == ["pools.w.alerts"]
    assert "threshold must be a fraction" in str(info.value)


async def test_async_from_config_and_from_env(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pool = await DatabasePool.from_config(
        {"pools": {"a": {"url": f"sqlite:///{tmp_path}/a.db", "max_size": 2}}})
    async with pool:
        assert (await pool.query("a", "SELECT 1 AS one"))["one"][0] == 1
        assert pool.stats("a")["max_size"] == 2
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/d.db")
    monkeypatch.setenv("DB_POOL_DEFAULT_MAX_SIZE", "5")
    async with await DatabasePool.from_env() as pool:
        assert pool.list_pools() == ["default"]
        assert pool.stats("default")["max_size"] == 5
    with SyncDatabasePool.from_env() as spool:
        assert spool.stats("default")["max_size"] == 5


def test_a_pool_that_fails_to_open_closes_the_others(tmp_path: Path) -> None:
    """Validation passes, then the second pool cannot open its file: the
    first pool is closed again and the error raised."""
    config = {"pools": {
        "good": {"url": f"sqlite:///{tmp_path}/good.db"},
        "bad": {"url": f"sqlite:///{tmp_path}/missing-dir/x.db", "mode": "rw"},
    }}
    with pytest.raises(db_pool.OperationalError):
        SyncDatabasePool.from_config(config)


def test_option_sets_come_from_the_table() -> None:
    """create_pool's option names and time rules, now derived from the key
    table, are the ones it had."""
    from db_pool import _common

    assert _common.POOL_OPTIONS == {
        "min_size", "max_size", "max_waiting", "acquire_timeout", "idle_timeout",
        "max_lifetime", "lifetime_jitter", "validate_after", "read_from", "balance",
        "failover_timeout", "probe_interval", "max_replica_lag", "query_timeout",
        "connect_timeout", "cancel_grace", "init_sql", "reset_on_release"}
    assert _common._TIME_OPTIONS == {
        "acquire_timeout": "zero", "idle_timeout": "zero", "max_lifetime": "zero",
        "validate_after": "any", "failover_timeout": "zero", "probe_interval": "positive",
        "max_replica_lag": "zero", "query_timeout": "zero", "connect_timeout": "positive",
        "cancel_grace": "positive"}


def test_defaults_agree_with_the_library(tmp_path: Path) -> None:
    """The table's min_size/max_size defaults are the C library's (what a
    pool made without options reports)."""
    config = load_config({"pools": {"p": {"url": f"sqlite:///{tmp_path}/p.db"}}})
    with SyncDatabasePool() as pool:
        pool.create_pool("p", url=f"sqlite:///{tmp_path}/p.db")
        stats = pool.stats("p")
    assert stats["min_size"] == config.pools["p"].options["min_size"]
    assert stats["max_size"] == config.pools["p"].options["max_size"]


def test_environment_is_not_read_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_P_MAX_SIZE", "99")
    config = load_config({"pools": {"p": {"url": "sqlite:///p.db"}}})
    assert config.pools["p"].options["max_size"] == 10
    assert load_config({"pools": {"p": {"url": "sqlite:///p.db"}}},
                       env=True).pools["p"].options["max_size"] == 99
    assert os.environ["DB_POOL_P_MAX_SIZE"] == "99"
