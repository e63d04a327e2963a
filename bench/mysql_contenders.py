"""W7 MySQL contenders: one contender running one MariaDB workload once, in
its own process (bench/run.py runs this file for workloads named mysql_*).

    python bench/mysql_contenders.py WORKLOAD CONTENDER JSON_ARGS

Prints one JSON object on its last line, as bench/contenders.py does (whose
checksum, clock and drivers it reuses):

- mysql_read:  the whole W7 table into a polars DataFrame;
- mysql_small: many 1-row primary-key SELECTs at a concurrency (W1's
  rows and checksum, on MariaDB);
- mysql_write: a DataFrame (read from Parquet before the clock starts)
  appended to a table; run.py truncates before and checks after.

Arguments: url (mysql://, for db_pool and ConnectorX), host, port, user,
password, database (for the others), and sql / table / parquet / tsv_file.
The mariadb client gets the password through MYSQL_PWD, not its command line.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any, Callable

import polars as pl

from contenders import Args, Clock, Result, checksum, drive_async, peak_rss_mib, row_value

def frame_of(rows: Any, names: list[str]) -> pl.DataFrame:
    """A DataFrame of a driver's row tuples, as a user of that driver builds it."""
    return pl.DataFrame(list(rows), schema=names, orient="row", infer_schema_length=None)


# ---- mysql_read: the W7 table into a DataFrame ----------------------------------------


def read_db_pool(a: Args) -> tuple[pl.DataFrame, float]:
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
        with Clock() as c:
            df = pool.query("b", a["sql"])
    return df, c.seconds


def read_connectorx(a: Args) -> tuple[pl.DataFrame, float]:
    with Clock() as c:
        df = pl.read_database_uri(a["sql"], a["url"], engine="connectorx")
    return df, c.seconds


def read_pymysql(a: Args) -> tuple[pl.DataFrame, float]:
    import pymysql

    conn = pymysql.connect(host=a["host"], port=a["port"], user=a["user"], password=a["password"],
                           database=a["database"], charset="utf8mb4")
    try:
        with Clock() as c:
            with conn.cursor() as cur:
                cur.execute(a["sql"])
                df = frame_of(cur.fetchall(), [d[0] for d in cur.description])
        return df, c.seconds
    finally:
        conn.close()


def read_mysqlclient(a: Args) -> tuple[pl.DataFrame, float]:
    import MySQLdb

    conn = MySQLdb.connect(host=a["host"], port=a["port"], user=a["user"], password=a["password"],
                           database=a["database"], charset="utf8mb4")
    try:
        with Clock() as c:
            cur = conn.cursor()
            cur.execute(a["sql"])
            df = frame_of(cur.fetchall(), [d[0] for d in cur.description])
            cur.close()
        return df, c.seconds
    finally:
        conn.close()


READ: dict[str, Callable[[Args], tuple[pl.DataFrame, float]]] = {
    "db_pool": read_db_pool,
    "connectorx": read_connectorx,
    "pymysql_df": read_pymysql,
    "mysqlclient_df": read_mysqlclient,
}


# ---- mysql_small: 1-row primary-key SELECTs at a concurrency --------------------------


async def small_db_pool(a: Args) -> Result:
    from db_pool import DatabasePool

    async with DatabasePool() as pool:
        await pool.create_pool("b", url=a["url"], min_size=a["concurrency"],
                               max_size=a["concurrency"])

        async def one(key: int) -> int:
            return row_value((await pool.query("b", a["sql"], [key])).row(0))

        return await drive_async(one, a)


async def small_asyncmy(a: Args, frame: bool) -> Result:
    import asyncmy

    pool = await asyncmy.create_pool(host=a["host"], port=a["port"], user=a["user"],
                                     password=a["password"], db=a["database"], charset="utf8mb4",
                                     minsize=a["concurrency"], maxsize=a["concurrency"],
                                     autocommit=True)
    sql = a["sql"].replace("?", "%s")
    try:
        async def one(key: int) -> int:
            async with pool.acquire() as conn, conn.cursor() as cur:
                await cur.execute(sql, (key,))
                rows = await cur.fetchall()
                if frame:
                    return row_value(frame_of(rows, [d[0] for d in cur.description]).row(0))
                return row_value(rows[0])

        return await drive_async(one, a)
    finally:
        pool.close()
        await pool.wait_closed()


SMALL: dict[str, Callable[[Args], Any]] = {
    "db_pool": small_db_pool,
    "asyncmy": lambda a: small_asyncmy(a, frame=False),
    "asyncmy_df": lambda a: small_asyncmy(a, frame=True),
}


# ---- mysql_write: a DataFrame into a table ---------------------------------------------


def write_db_pool(a: Args, df: pl.DataFrame) -> float:
    from db_pool import SyncDatabasePool

    with SyncDatabasePool() as pool:
        pool.create_pool("b", url=a["url"], min_size=1, max_size=1)
        with Clock() as c:
            pool.write_frame("b", df, a["table"])
    return c.seconds


def write_asyncmy(a: Args, df: pl.DataFrame) -> float:
    """executemany of the frame's rows: asyncmy (like PyMySQL) rewrites an
    INSERT ... VALUES into multi-row INSERTs of up to ~1 MB each; one commit."""
    import asyncmy

    async def run() -> float:
        conn = await asyncmy.connect(host=a["host"], port=a["port"], user=a["user"],
                                     password=a["password"], db=a["database"], charset="utf8mb4")
        try:
            cols = ", ".join(df.columns)
            marks = ", ".join(["%s"] * df.width)
            with Clock() as c:
                async with conn.cursor() as cur:
                    await cur.executemany(f"INSERT INTO {a['table']} ({cols}) VALUES ({marks})",
                                          df.rows())
                await conn.commit()
            return c.seconds
        finally:
            conn.close()

    return asyncio.run(run())


def write_mariadb_load_data(a: Args, df: pl.DataFrame) -> float:
    """The server's own limit: the mariadb client's LOAD DATA LOCAL INFILE of
    a tab-separated file of the same rows (written before the clock starts)."""
    cmd = [a["client"], "--no-defaults", "--local-infile=1", f"--host={a['host']}",
           f"--port={a['port']}", f"--user={a['user']}", f"--database={a['database']}",
           "-e", f"LOAD DATA LOCAL INFILE '{a['tsv_file']}' INTO TABLE {a['table']}"]
    env = {**os.environ, "MYSQL_PWD": a["password"]}
    with Clock() as c:
        subprocess.run(cmd, check=True, env=env, timeout=600, capture_output=True)
    return c.seconds


WRITE: dict[str, Callable[[Args, pl.DataFrame], float]] = {
    "db_pool": write_db_pool,
    "asyncmy": write_asyncmy,
    "mariadb_load_data": write_mariadb_load_data,
}


def main() -> None:
    workload, contender, a = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    result: Result
    if workload == "mysql_read":
        df, seconds = READ[contender](a)
        peak = peak_rss_mib()  # the read's, not the checksum's
        result = {"seconds": seconds, "rows": df.height, "checksum": checksum(df),
                  "peak_rss_mib": peak}
    elif workload == "mysql_small":
        result = asyncio.run(SMALL[contender](a))
        result["peak_rss_mib"] = peak_rss_mib()
    elif workload == "mysql_write":
        frame = pl.read_parquet(a["parquet"])
        result = {"seconds": WRITE[contender](a, frame), "rows": frame.height,
                  "peak_rss_mib": peak_rss_mib()}
        if contender == "mariadb_load_data":  # the work is in the client's process
            result["peak_rss_mib"] = float("nan")
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
