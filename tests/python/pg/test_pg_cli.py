"""The `db-pool` console script against the test PostgreSQL server: a query
written to a file and read back equal to what psycopg reads, and a bulk
load whose rows psycopg finds in the table. The password comes from
${ENV} in the TOML file and never shows in any output."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cli_helpers import run, run_with_terminal_stderr

from .conftest import pg_options

pytest.importorskip("tomllib")


def _config(tmp_path: Path, server: Any, schema: str) -> Path:
    path = tmp_path / "db-pool.toml"
    path.write_text(
        "[pools.orders]\n"
        f'url = "postgresql://{server.user}@{server.host}:{server.port}/{server.database}"\n'
        'password = "${TEST_PG_PASSWORD}"\n'
        f'options = "{pg_options(schema)}"\n'
        "max_size = 2\nconnect_timeout = 5\n")
    return path


def _no_password(server: Any, *outputs: str) -> None:
    for text in outputs:
        assert server.password not in text


def test_query_on_postgresql_to_files(pg_server: Any, schema: str, admin: Any,
                                      tmp_path: Path) -> None:
    admin.execute("CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric(10,2), "
                  "placed timestamptz, note text)")
    rows = [(i, f"customer {i % 7}", Decimal(i) * Decimal("1.25"),
             dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i),
             None if i % 3 else f"note {i}") for i in range(500)]
    with admin.cursor() as cur:
        cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, %s)", rows)
    config = _config(tmp_path, pg_server, schema)
    env = {"TEST_PG_PASSWORD": pg_server.password}
    sql = "SELECT id, customer, total, placed, note FROM orders ORDER BY id"

    out = tmp_path / "orders.parquet"
    r = run("query", "orders", sql, "-c", config, "-o", out, env=env)
    assert r.returncode == 0, r.stderr
    got = pl.read_parquet(out)
    expected_types: dict[str, pl.DataType] = {
        "id": pl.Int32(), "customer": pl.String(), "total": pl.Decimal(10, 2),
        "placed": pl.Datetime("us", "UTC"), "note": pl.String()}
    assert dict(got.schema) == expected_types
    assert got.rows() == rows  # what psycopg wrote, read back exactly

    r2 = run("query", "orders", sql, "-c", config, "--format", "csv", env=env)
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == got.write_csv()
    # on a terminal it streams (COPY or cursor batches): the same rows
    code, stdout, terminal, _ = run_with_terminal_stderr(
        "query", "orders", sql, "-c", config, "--format", "csv", env=env)
    assert (code, stdout) == (0, r2.stdout), terminal
    bad = run("query", "orders", "SELECT nope FROM orders", "-c", config, env=env)
    assert bad.returncode == 1
    assert bad.stderr.startswith("db-pool: error: ProgrammingError: ")
    assert "nope" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    _no_password(pg_server, r.stdout, r.stderr, r2.stderr, terminal.decode(), bad.stderr)


def test_load_into_postgresql(pg_server: Any, schema: str, admin: Any, tmp_path: Path) -> None:
    n = 20_000
    frame = pl.DataFrame({
        "id": range(n),
        "name": [None if i % 11 == 0 else f"name {i}" for i in range(n)],
        "score": [i / 8 for i in range(n)],
        "day": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 366) for i in range(n)],
    })
    data = tmp_path / "people.parquet"
    frame.write_parquet(data)
    config = _config(tmp_path, pg_server, schema)
    env = {"TEST_PG_PASSWORD": pg_server.password}

    r = run("load", "orders", "people", data, "-c", config, "--create", env=env)
    assert (r.returncode, r.stdout) == (0, f"{n:,} rows loaded into people\n"), r.stderr
    with admin.cursor() as cur:
        cur.execute("SELECT id, name, score, day FROM people ORDER BY id")
        assert cur.fetchall() == frame.rows()
        cur.execute("SELECT data_type FROM information_schema.columns WHERE table_schema = %s "
                    "AND table_name = 'people' ORDER BY ordinal_position", (schema,))
        assert [t for (t,) in cur.fetchall()] == ["bigint", "text", "double precision", "date"]

    # a CSV of the same rows, replacing the table
    csv = tmp_path / "people.csv"
    frame.head(100).write_csv(csv)
    r2 = run("load", "orders", "people", csv, "-c", config, "--mode", "replace", env=env)
    assert (r2.returncode, r2.stdout) == (0, "100 rows loaded into people\n"), r2.stderr
    with admin.cursor() as cur:
        cur.execute("SELECT id, name, score, day FROM people ORDER BY id")
        assert cur.fetchall() == frame.head(100).rows()
    # a duplicate key: nothing of the file is written
    admin.execute("ALTER TABLE people ADD PRIMARY KEY (id)")
    r3 = run("load", "orders", "people", csv, "-c", config, env=env)
    assert r3.returncode == 1
    assert r3.stderr.startswith("db-pool: error: IntegrityError: ")
    assert admin.execute("SELECT count(*) FROM people").fetchone() == (100,)
    _no_password(pg_server, r.stdout, r.stderr, r2.stderr, r3.stderr)
