"""The `db-pool` command line, run as the real installed console script in
subprocesses (each bounded by a timeout) on SQLite files: exit codes,
stdout, files written and read back with Polars, load round trips, check
with broken configurations, stats in each format, serve answering HTTP and
stopping on SIGTERM, the progress line on a pseudo-terminal only, and no
secret in any output of any command."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cli_helpers import DB_POOL, read_line, run, run_with_terminal_stderr, start
from conftest import SLOW_SQL, sqlite_url
from db_pool import SyncDatabasePool
from metrics_checks import parsed

SECRET = "Pw-Marker-7q/@:%x"
ROWS = 100
SELECT_ITEMS = "SELECT id, name, price, day, flag FROM items ORDER BY id"


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then freed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A SQLite file with a table of ROWS items, some values NULL (made with
    the standard sqlite3 module, not the code under test)."""
    path = tmp_path / "main.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, "
                     "day DATE, flag BOOLEAN)")
        conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)", [
            (i, None if i % 10 == 3 else f"item, \"{i}\"", i * 1.25,
             date(2024, 1 + i % 12, 1 + i % 28).isoformat(), i % 2 == 0)
            for i in range(ROWS)])
    conn.close()
    return path


@pytest.fixture
def config(tmp_path: Path, db: Path) -> Path:
    """A TOML file with the pool "main" on ``db``."""
    path = tmp_path / "db-pool.toml"
    path.write_text(f'[pools.main]\nurl = "{sqlite_url(db)}"\nmax_size = 3\n')
    return path


def reference(db: Path, sql: str = SELECT_ITEMS) -> pl.DataFrame:
    """What the library itself reads for ``sql`` (the files must hold it)."""
    with SyncDatabasePool() as pool:
        pool.create_pool("ref", url=sqlite_url(db))
        return pool.query("ref", sql)


def assert_one_error_line(stderr: str, *pieces: str) -> None:
    lines = stderr.strip().splitlines()
    assert lines and all(line.startswith("db-pool: error: ") for line in lines), stderr
    assert "Traceback" not in stderr
    for piece in pieces:
        assert piece in stderr, (piece, stderr)


# ---- help, usage, exit codes ---------------------------------------------------------


@pytest.mark.parametrize("command", ["", "check", "query", "load", "stats", "serve"])
def test_help_of_every_command(command: str) -> None:
    r = run(*([command] if command else []), "--help", timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: db-pool {command}".rstrip())
    assert "exit codes: 0 done; 1 the work failed" in r.stdout
    assert r.stderr == ""


def test_python_m_db_pool_is_the_same_command() -> None:
    script = run("--version", timeout=30)
    module = subprocess.run([sys.executable, "-m", "db_pool", "--version"], capture_output=True,
                            text=True, timeout=30)
    assert script.returncode == module.returncode == 0
    assert script.stdout == module.stdout == "db-pool 0.1.0\n"
    assert DB_POOL.is_file()


@pytest.mark.parametrize("args, piece", [
    ((), "the following arguments are required: COMMAND"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    (("query",), "the following arguments are required: POOL, SQL"),
    (("query", "main", "SELECT 1", "--format", "xml"), "argument -f/--format: invalid choice"),
    (("serve", "--port", "70000"), "expected a port 0-65535"),
    (("query", "main", "SELECT 1", "--timeout", "-1"), "expected a number of seconds > 0"),
    (("stats", "--bogus"), "unrecognized arguments: --bogus"),
])
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], piece: str) -> None:
    r = run(*args, timeout=30)
    assert r.returncode == 2
    assert r.stdout == ""
    assert_one_error_line(r.stderr, piece)


# ---- check ---------------------------------------------------------------------------


def test_check_prints_the_effective_configuration_masked(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[pools.main]\nurl = "{sqlite_url(db)}"\nmax_size = 3\n\n'
        '[pools.orders]\nengine = "postgresql"\nhost = "db.example"\nuser = "app"\n'
        'password = "${ORDERS_PW}"\ndatabase = "orders"\n'
        'alerts = [{ rule = "saturation", threshold = 0.9, for = 30 }]\n')
    r = run("check", path, env={"ORDERS_PW": SECRET})
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr
    printed = tomllib.loads(r.stdout)  # the output is TOML
    orders = printed["pools"]["orders"]
    assert orders["endpoints"] == [{"database": "orders", "host": "db.example",
                                    "password": "***", "user": "app"}]
    assert orders["engine"] == "postgresql" and orders["max_size"] == 10  # defaults filled in
    assert orders["alerts"] == [{"rule": "saturation", "threshold": 0.9, "for": 30}]
    assert printed["pools"]["main"]["max_size"] == 3
    assert printed["pools"]["main"]["endpoints"] == [{"database": str(db)}]
    # what it prints is a configuration that gives the same output again
    again = tmp_path / "again.toml"
    again.write_text(r.stdout)
    r2 = run("check", again)
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout.splitlines()[1:] == r.stdout.splitlines()[1:]
    # JSON, and one pool only
    r3 = run("check", path, "--format", "json", "--pool", "orders", env={"ORDERS_PW": SECRET})
    assert r3.returncode == 0, r3.stderr
    assert json.loads(r3.stdout)["pools"]["orders"]["endpoints"][0]["password"] == "***"
    assert list(json.loads(r3.stdout)["pools"]) == ["orders"]


BROKEN = [
    ('[pools.orders]\nengine = "postgresql"\nhost = "h"\nport = "54x2"\n',
     'pools.orders.port: expected an integer 1-65535, got "54x2"'),
    ('[pools.orders]\nurl = "sqlite:///x.db"\nmax_sise = 3\n',
     'pools.orders.max_sise: unknown key (did you mean "max_size"?)'),
    ('[pools.orders]\nurl = "sqlite:///x.db"\nmin_size = 5\nmax_size = 2\n',
     "pools.orders.min_size: min_size 5 is more than max_size 2"),
    ('[pools.orders]\nengine = "postgresql"\nendpoints = ["postgresql://h1/db", '
     '{ host = "h2", port = 0 }]\n',
     "pools.orders.endpoints[1].port: expected an integer 1-65535, got 0"),
    ('[pools.orders]\nengine = "oracle"\n', 'pools.orders.engine: unknown engine "oracle"'),
    ("[pools.orders\nurl = 1\n", "not valid TOML"),
    ('[pools.orders]\nurl = "sqlite:///x.db"\npassword_file = "/nonexistent/pw"\n',
     'pools.orders.password_file: cannot read "/nonexistent/pw"'),
]


@pytest.mark.parametrize("text, expected", BROKEN)
def test_check_a_broken_configuration_exits_2_naming_the_path(
        tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text)
    r = run("check", path, timeout=30)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert_one_error_line(r.stderr, expected, "invalid configuration", str(path))
    assert not (tmp_path / "x.db").exists()  # nothing connected


def test_check_reports_every_problem_at_once_and_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text('[pools.a]\nurl = "sqlite:///a.db"\nmax_size = 0\n'
                    '[pools.b]\nurl = "sqlite:///b.db"\nidle_timeout = -3\n')
    r = run("check", path, timeout=30)
    assert r.returncode == 2
    assert_one_error_line(r.stderr, "(2 problems)", "pools.a.max_size:", "pools.b.idle_timeout:")
    assert len(r.stderr.strip().splitlines()) == 3
    r = run("check", tmp_path / "missing.toml", timeout=30)
    assert r.returncode == 2
    assert_one_error_line(r.stderr, "cannot read the file")


def test_check_warns_of_a_password_file_others_can_read(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o644)
    path = tmp_path / "c.toml"
    path.write_text('[pools.orders]\nengine = "postgresql"\nhost = "h"\nuser = "u"\n'
                    f'password_file = "{secret_file}"\n')
    r = run("check", path, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith(f'db-pool: warning: password file "{secret_file}" may be read by '
                               "group or others (mode 644): chmod 600 it\n")
    assert 'password = "***"' in r.stdout
    assert SECRET not in r.stdout + r.stderr


def test_check_connect_tries_each_endpoint_within_a_bound(tmp_path: Path, db: Path) -> None:
    new_file = tmp_path / "sub" / "new.db"
    new_file.parent.mkdir()
    path = tmp_path / "c.toml"
    path.write_text(
        f'[pools.main]\nurl = "{sqlite_url(db)}"\n'
        f'[pools.fresh]\nurl = "{sqlite_url(new_file)}"\n')
    r = run("check", path, "--connect", timeout=30)
    assert r.returncode == 0, r.stderr
    assert "# connect pools.main.endpoints[0]" in r.stdout and ": ok (" in r.stdout
    assert "does not exist yet: the pool will create it" in r.stdout
    assert not new_file.exists()  # check creates nothing

    path.write_text(
        f'[pools.main]\nurl = "{sqlite_url(db)}"\n'
        f'[pools.down]\nengine = "postgresql"\nhost = "127.0.0.1"\nport = {refused_port()}\n'
        f'user = "app"\npassword = "{SECRET}"\ndatabase = "x"\n')
    started = time.monotonic()
    r = run("check", path, "--connect", "--timeout", "2", timeout=30)
    assert time.monotonic() - started < 15
    assert r.returncode == 1
    assert "pools.down.endpoints[0] (127.0.0.1:" in r.stdout
    assert "failed: OperationalError" in r.stdout
    assert SECRET not in r.stdout + r.stderr


# ---- query ---------------------------------------------------------------------------


def test_query_prints_polars_table(config: Path, db: Path) -> None:
    r = run("query", "main", "SELECT id, name, price FROM items WHERE id < 3 ORDER BY id",
            "--config", config)
    assert r.returncode == 0, r.stderr
    expected = reference(db, "SELECT id, name, price FROM items WHERE id < 3 ORDER BY id")
    with pl.Config(tbl_rows=25, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=1000):
        assert r.stdout == str(expected) + "\n"
    assert r.stderr == ""


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson", "parquet"])
def test_query_writes_a_file_that_reads_back_equal(fmt: str, config: Path, db: Path,
                                                   tmp_path: Path) -> None:
    out = tmp_path / f"items.{fmt}"
    r = run("query", "main", SELECT_ITEMS, "-c", config, "-o", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert f"wrote {ROWS} rows ({fmt})" in r.stderr
    expected = reference(db)
    assert expected.height == ROWS and expected.schema["day"] == pl.Date
    if fmt == "parquet":
        got = pl.read_parquet(out)
    elif fmt == "csv":
        got = pl.read_csv(out, schema=expected.schema)
    elif fmt == "json":
        got = pl.read_json(out, schema={**expected.schema, "day": pl.String}).with_columns(
            pl.col("day").str.to_date())
    else:
        got = pl.read_ndjson(out, schema={**expected.schema, "day": pl.String}).with_columns(
            pl.col("day").str.to_date())
    assert_frame_equal(got, expected)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_query_to_stdout_in_each_text_format(config: Path, db: Path) -> None:
    expected = reference(db)
    r = run("query", "main", SELECT_ITEMS, "-c", config, "--format", "csv")
    assert r.returncode == 0 and r.stdout == expected.write_csv()
    r = run("query", "main", SELECT_ITEMS, "-c", config, "--format", "json")
    rows = json.loads(r.stdout)
    assert rows[:2] == [
        {"id": 0, "name": 'item, "0"', "price": 0.0, "day": "2024-01-01", "flag": True},
        {"id": 1, "name": 'item, "1"', "price": 1.25, "day": "2024-02-02", "flag": False}]
    assert len(rows) == ROWS and rows[3]["name"] is None


def test_query_pool_from_a_url_or_the_environment(db: Path) -> None:
    sql = "SELECT count(*) AS n FROM items"
    r = run("query", sqlite_url(db), sql, "-f", "csv")
    assert (r.returncode, r.stdout) == (0, f"n\n{ROWS}\n"), r.stderr
    r = run("query", "default", sql, "-f", "csv", env={"DATABASE_URL": sqlite_url(db)})
    assert (r.returncode, r.stdout) == (0, f"n\n{ROWS}\n"), r.stderr
    r = run("query", "reports", sql, "-f", "csv", env={"DB_POOL_REPORTS_URL": sqlite_url(db)})
    assert (r.returncode, r.stdout) == (0, f"n\n{ROWS}\n"), r.stderr
    r = run("query", "nope", sql, env={"DB_POOL_REPORTS_URL": sqlite_url(db)})
    assert r.returncode == 2
    assert_one_error_line(r.stderr, "no pool named 'nope' in the environment (its pools: reports)")
    r = run("query", "default", sql)  # nothing configured at all
    assert r.returncode == 2
    assert_one_error_line(r.stderr, "no pools in the environment")


def test_query_failures(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    r = run("query", "main", "SELECT * FROM missing_table", "-c", config, "-o", out)
    assert r.returncode == 1
    assert_one_error_line(r.stderr, "ProgrammingError: no such table: missing_table")
    assert list(tmp_path.glob("*out.csv*")) == []  # no file, no temporary left
    r = run("query", "elsewhere", "SELECT 1", "-c", config)
    assert r.returncode == 2
    assert_one_error_line(r.stderr, "no pool named 'elsewhere' in", "(its pools: main)")
    r = run("query", "main", "SELECT 1", "-c", config, "-o", tmp_path / "out.xlsx")
    assert r.returncode == 2
    assert_one_error_line(r.stderr, "cannot tell the format from the name")
    r = run("query", "main", "SELECT 1 AS x", "-c", config, "-o", tmp_path / "no" / "dir.csv")
    assert r.returncode == 1
    assert_one_error_line(r.stderr, "No such file or directory")
    r = run("query", "main", "SELECT 1", "-c", tmp_path / "nothere.toml")
    assert r.returncode == 2


def test_query_empty_result_keeps_its_columns(config: Path) -> None:
    sql = "SELECT id, name FROM items WHERE id < 0;"
    r = run("query", "main", sql, "-c", config, "-f", "csv")
    assert (r.returncode, r.stdout) == (0, "id,name\n"), r.stderr
    # on a terminal the read streams, and an empty stream has no batch: same output
    code, stdout, terminal, _ = run_with_terminal_stderr("query", "main", sql, "-c", config,
                                                         "-f", "csv")
    assert (code, stdout) == (0, "id,name\n"), terminal


def test_debug_shows_the_traceback(config: Path) -> None:
    r = run("query", "main", "SELECT * FROM missing_table", "-c", config, "--debug")
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "db-pool: error: ProgrammingError: no such table: missing_table")


def test_interrupted_query_exits_130(config: Path) -> None:
    proc = start("query", "main", SLOW_SQL, "-c", config)
    try:
        time.sleep(1.0)  # running the endless statement by now
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.stderr is not None and proc.stdout is not None
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert code == 130, err
    assert "db-pool: error: interrupted" in err and "Traceback" not in err


# ---- load ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_load_round_trip(fmt: str, config: Path, db: Path, tmp_path: Path) -> None:
    exported = tmp_path / f"items.{fmt}"
    assert run("query", "main", SELECT_ITEMS, "-c", config, "-o", exported).returncode == 0
    r = run("load", "main", "copy", exported, "-c", config, "--create")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{ROWS} rows loaded into copy\n"
    original = reference(db)
    assert_frame_equal(reference(db, "SELECT * FROM copy ORDER BY id"), original)
    # again: appended; --mode fail refuses (nothing written); --mode replace starts over
    assert run("load", "main", "copy", exported, "-c", config).returncode == 0
    assert reference(db, "SELECT count(*) AS n FROM copy")["n"][0] == 2 * ROWS
    r = run("load", "main", "copy", exported, "-c", config, "--mode", "fail")
    assert r.returncode == 1
    assert_one_error_line(r.stderr, 'table "copy" already exists')
    assert reference(db, "SELECT count(*) AS n FROM copy")["n"][0] == 2 * ROWS
    r = run("load", "main", "copy", exported, "-c", config, "--mode", "replace")
    assert (r.returncode, r.stdout) == (0, f"{ROWS} rows loaded into copy\n"), r.stderr
    assert_frame_equal(reference(db, "SELECT * FROM copy ORDER BY id"), original)


def test_load_failures(config: Path, db: Path, tmp_path: Path) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("id,name\n1,a\n2,b\n")
    r = run("load", "main", "absent", csv, "-c", config)  # no --create: no such table
    assert r.returncode == 1
    assert_one_error_line(r.stderr, "no such table: absent")
    r = run("load", "main", "items", tmp_path / "nothere.csv", "-c", config)
    assert r.returncode == 2
    assert_one_error_line(r.stderr, "nothere.csv': no such file")
    (tmp_path / "rows.xlsx").write_text("x")
    r = run("load", "main", "items", tmp_path / "rows.xlsx", "-c", config)
    assert r.returncode == 2
    assert_one_error_line(r.stderr, "expected a .csv or .parquet file")
    # a row that breaks a constraint: all or nothing
    clash = tmp_path / "clash.csv"
    clash.write_text("id,name\n1000,new\n5,duplicate key\n")
    r = run("load", "main", "items", clash, "-c", config)
    assert r.returncode == 1
    assert_one_error_line(r.stderr, "IntegrityError")
    assert reference(db, "SELECT count(*) AS n FROM items")["n"][0] == ROWS


# ---- stats ---------------------------------------------------------------------------


def test_stats_in_each_format(config: Path) -> None:
    r = run("stats", "-c", config)
    assert r.returncode == 0, r.stderr
    assert "│ main ┆ sqlite ┆" in r.stdout and "│ pool ┆ endpoint" in r.stdout
    r = run("stats", "main", "-c", config, "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["pools"]["main"]["size"] == 1 and data["pools"]["main"]["max_size"] == 3
    wait = data["metrics"]["db_client_connection_wait_time_seconds"][0]
    assert wait["buckets"][-1][0] == "+Inf"  # strict JSON
    r = run("stats", "-c", config, "--format", "prometheus")
    assert r.returncode == 0, r.stderr
    samples = parsed(r.stdout)
    idle = [v for (name, labels), v in samples.items()
            if name == "db_client_connection_count" and ("state", "idle") in labels
            and ("pool", "main") in labels]
    assert idle == [1.0]
    # --env: DB_POOL_<POOL>_<KEY> overrides the file only when asked
    env = {"DB_POOL_MAIN_MAX_SIZE": "2"}
    r = run("stats", "main", "-c", config, "-f", "json", "--env", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pools"]["main"]["max_size"] == 2
    r = run("stats", "main", "-c", config, "-f", "json", env=env)
    assert json.loads(r.stdout)["pools"]["main"]["max_size"] == 3
    r = run("stats", "other", "-c", config)
    assert r.returncode == 2
    assert_one_error_line(r.stderr, "no pool named 'other'")


# ---- serve ---------------------------------------------------------------------------


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_then_stops_on_a_signal(stop: signal.Signals, config: Path) -> None:
    proc = start("serve", "-c", config, "--port", "0")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = read_line(proc.stdout, 30)
        assert line.startswith("serving 1 pool at http://127.0.0.1:"), line
        url = line.split()[4]
        assert get(url + "healthz") == (200, '{"status": "ok"}')
        status, body = get(url + "metrics")
        assert status == 200 and 'pool="main"' in body
        status, body = get(url + "readyz")
        assert status == 200 and json.loads(body)["ready"] is True
        status, body = get(url)
        assert status == 200 and "db_pool dashboard" in body
        started = time.monotonic()
        proc.send_signal(stop)
        code = proc.wait(timeout=10)
        assert time.monotonic() - started < 5
        assert code == 0
        assert "stopping: closing the server and the pools" in proc.stderr.read()
        with pytest.raises(OSError):  # the port is closed
            get(url + "healthz")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_serve_refuses_a_remote_address_without_allow_remote(config: Path) -> None:
    r = run("serve", "-c", config, "--host", "0.0.0.0", "--port", "0", timeout=30)
    assert r.returncode == 2
    assert_one_error_line(r.stderr, "would listen beyond this machine")


# ---- progress ------------------------------------------------------------------------

#: Three million rows: a read of two seconds or more here.
LONG_READ = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
             "SELECT x, printf('%040d', x) AS s FROM c")


def test_progress_line_on_a_terminal_only(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "p.db")
    out = tmp_path / "big.parquet"
    code, stdout, terminal, seconds = run_with_terminal_stderr(
        "query", url, LONG_READ, "-o", out, timeout=120)
    assert code == 0, terminal
    assert seconds > 1.0, "the read was too quick to show progress: make it longer"
    text = terminal.decode()
    draws = [d for d in text.split("\r") if d.startswith("query: ")]
    assert draws, text
    assert " rows  " in draws[-1] and "MiB" in draws[-1] and "rows/s" in draws[-1]
    assert text.count("\x1b[K") >= len(draws)  # each drawn in place, then erased
    assert pl.read_parquet(out).height == 3_000_000
    # the same read with stderr on a pipe: no progress line at all
    r = run("query", url, LONG_READ, "-o", out, timeout=120)
    assert r.returncode == 0
    assert r.stderr == f"db-pool: wrote 3,000,000 rows (parquet) to {out}\n"


def test_load_progress_on_a_terminal_loads_every_slice(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "p.db")
    data = tmp_path / "rows.parquet"
    n = 1_000_003  # not a multiple of the slice size
    pl.DataFrame({"x": range(n), "s": [f"{i:030d}" for i in range(n)]}).write_parquet(data)
    code, stdout, terminal, seconds = run_with_terminal_stderr(
        "load", url, "big", data, "--create", timeout=120)
    assert code == 0, terminal
    assert stdout == "1,000,003 rows loaded into big\n"
    if seconds > 1.0:
        assert "load: [" in terminal.decode() and "/1,000,003 rows" in terminal.decode()
    with SyncDatabasePool() as pool:
        pool.create_pool("p", url=url)
        got = pool.query("p", "SELECT count(*) AS n, count(DISTINCT x) AS d, max(x) AS m FROM big")
    assert got.row(0) == (n, n, n - 1)


# ---- secrets -------------------------------------------------------------------------


def test_no_secret_in_any_output(tmp_path: Path, db: Path) -> None:
    port = refused_port()
    path = tmp_path / "secret.toml"
    path.write_text(
        f'[pools.main]\nurl = "{sqlite_url(db)}"\n'
        f'[pools.pg]\nengine = "postgresql"\nhost = "127.0.0.1"\nport = {port}\nuser = "app"\n'
        f'password = "{SECRET}"\ndatabase = "x"\nconnect_timeout = 2\n'
        f'[pools.env]\nurl = "postgresql://app:${{PW}}@127.0.0.1:{port}/x"\n'
        'connect_timeout = 2\n')
    broken = tmp_path / "broken.toml"
    broken.write_text(f'[pools.pg]\nurl = "postgresql://app:{SECRET}@127.0.0.1:{port}/x"\n'
                      'password = 12\nport = "54x2"\n')
    csv = tmp_path / "rows.csv"
    csv.write_text("id\n1\n")
    url = f"postgresql://app:{quote(SECRET, safe='')}@127.0.0.1:{port}/x"
    env = {"PW": SECRET}
    commands: list[tuple[Any, ...]] = [
        ("check", path), ("check", path, "--format", "json"),
        ("check", path, "--connect", "--timeout", "2"), ("check", broken),
        ("query", "pg", "SELECT 1", "-c", path), ("query", "env", "SELECT 1", "-c", path),
        ("query", url, "SELECT 1"), ("query", "main", "SELECT 1 AS one", "-c", path),
        ("load", "pg", "t", csv, "-c", path), ("load", url, "t", csv),
        ("stats", "-c", path), ("stats", "main", "-c", path, "-f", "json"),
        ("stats", "main", "-c", path, "-f", "prometheus"),
        ("serve", "-c", path, "--port", "0"),
        ("query", "pg", "SELECT 1", "-c", broken),
    ]
    codes = []
    for args in commands:
        for debug in ((), ("--debug",)):
            r = run(*args, *debug, env=env, timeout=60)
            codes.append(r.returncode)
            for piece in (SECRET, "Pw-Marker", "7q/@"):
                assert piece not in r.stdout + r.stderr, (args, debug, r.stdout, r.stderr)
    assert set(codes) == {0, 1, 2}  # the error paths were taken, and the good ones
