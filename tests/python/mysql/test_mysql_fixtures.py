"""The MariaDB fixtures themselves, checked with PyMySQL (not db_pool): the
server is configured as documented (utf8mb4, strict mode, local_infile,
the test user's privileges), it can be killed, restarted, frozen and
thawed, a replica refuses the test user's writes, semi-synchronous
replication puts every acknowledged commit on the replica, and a promoted
replica has all of them and takes writes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

import pymysql
import pytest

from mysql_cluster import MysqlCluster
from mysql_server import MysqlServer

#: MariaDB error numbers the tests expect.
ER_ACCESS_DENIED = 1045
ER_DATA_TOO_LONG = 1406
ER_OPTION_PREVENTS_STATEMENT = 1290  # read_only
ER_NET_PACKET_TOO_LARGE = 1153
CR_SERVER_GONE = 2006
CR_SERVER_LOST = 2013


def connect(server: MysqlServer, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    """PyMySQL connection, autocommit, with bounded reads and writes."""
    options: dict[str, Any] = {"autocommit": True, "read_timeout": 10, "write_timeout": 10}
    return pymysql.connect(**server.connect_kwargs(**{**options, **kwargs}))


def query(conn: Any, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def poll(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.01) -> None:
    """Calls predicate() until it is true; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s")
        time.sleep(interval)


# ---- one server -------------------------------------------------------------------------


def test_server_answers_with_utf8mb4(mysql_server: MysqlServer, table_name: str) -> None:
    with connect(mysql_server) as conn:
        assert query(conn, "SELECT 41 + 1, DATABASE()") == [(42, "dbpool_test")]
        assert query(conn, "SELECT @@character_set_server, @@character_set_connection") == [
            ("utf8mb4", "utf8mb4")]
        query(conn, f"CREATE TABLE {table_name} (s VARCHAR(10))")
        query(conn, f"INSERT INTO {table_name} VALUES (%s)", ("😀 ü ß",))  # 4-byte UTF-8
        assert query(conn, f"SELECT s, LENGTH(s) FROM {table_name}") == [("😀 ü ß", 10)]
    if not mysql_server.external:
        assert "MariaDB" in mysql_server.sql("SELECT VERSION()")
        assert mysql_server.sql("SELECT @@time_zone") == "+00:00"


def test_strict_mode_refuses_truncation(mysql_server: MysqlServer, table_name: str) -> None:
    with connect(mysql_server) as conn:
        (mode,), = query(conn, "SELECT @@GLOBAL.sql_mode")
        assert "STRICT_TRANS_TABLES" in mode.split(",")
        query(conn, f"CREATE TABLE {table_name} (s VARCHAR(3)) ENGINE=InnoDB")
        with pytest.raises(pymysql.err.DataError) as err:
            query(conn, f"INSERT INTO {table_name} VALUES ('abcd')")
        assert err.value.args[0] == ER_DATA_TOO_LONG
        assert query(conn, f"SELECT COUNT(*) FROM {table_name}") == [(0,)]


def test_local_infile_loads(mysql_server: MysqlServer, table_name: str, tmp_path: Path) -> None:
    data = tmp_path / "rows.tsv"
    data.write_text("1\tone\n2\tzwei\n3\t\\N\n")
    with connect(mysql_server, local_infile=True) as conn:
        assert query(conn, "SELECT @@GLOBAL.local_infile") == [(1,)]
        query(conn, f"CREATE TABLE {table_name} (id INT PRIMARY KEY, s TEXT)")
        query(conn, f"LOAD DATA LOCAL INFILE %s INTO TABLE {table_name}", (str(data),))
        assert query(conn, f"SELECT id, s FROM {table_name} ORDER BY id") == [
            (1, "one"), (2, "zwei"), (3, None)]


def test_bad_password_is_error_1045(mysql_server: MysqlServer) -> None:
    with pytest.raises(pymysql.err.OperationalError) as err:
        pymysql.connect(**mysql_server.connect_kwargs(password="wrong-password", read_timeout=10))
    assert err.value.args[0] == ER_ACCESS_DENIED
    assert "wrong-password" not in str(err.value)
    assert mysql_server.password not in repr(mysql_server)


def test_user_may_cancel_its_own_queries_but_has_no_super(mysql_server: MysqlServer) -> None:
    """The driver cancels with KILL QUERY from a side connection of the same
    user: allowed without SUPER/CONNECTION ADMIN, which the user must not have."""
    with connect(mysql_server) as conn, connect(mysql_server) as side:
        grants = " ".join(row[0] for row in query(conn, "SHOW GRANTS"))
        for privilege in ("PROCESS", "RELOAD", "BINLOG MONITOR"):
            assert privilege in grants
        for privilege in ("SUPER", "READ_ONLY ADMIN", "CONNECTION ADMIN", "ALL PRIVILEGES ON *.*"):
            assert privilege not in grants
        conn_id = conn.thread_id()
        result: list[Any] = []

        def sleep() -> None:
            try:
                result.append(query(conn, "SELECT SLEEP(20)"))
            except pymysql.err.MySQLError as exc:  # 1317 query interrupted
                result.append(exc)

        sleeper = threading.Thread(target=sleep, daemon=True)
        t0 = time.monotonic()
        sleeper.start()
        poll(lambda: any(r[0] == conn_id and r[1] == "Query" for r in query(
            side, "SELECT ID, COMMAND FROM information_schema.PROCESSLIST")),
             5, "the SLEEP running")
        query(side, f"KILL QUERY {conn_id}")
        sleeper.join(10)
        assert result and time.monotonic() - t0 < 5, result
        assert query(conn, "SELECT 1") == [(1,)]  # the connection survives KILL QUERY


def test_max_allowed_packet_is_configurable() -> None:
    """A separate private server with a 1 MB limit refuses a 2 MB statement."""
    with MysqlServer.start_private(max_allowed_packet="1M") as server:
        with connect(server) as conn:
            assert query(conn, "SELECT @@GLOBAL.max_allowed_packet") == [(1024 * 1024,)]
            assert query(conn, "SELECT LENGTH(%s)", ("x" * 900_000,)) == [(900_000,)]
            with pytest.raises(pymysql.err.MySQLError) as err:
                query(conn, "SELECT LENGTH(%s)", ("x" * (2 * 1024 * 1024),))
            # the server's own error, or (while PyMySQL still writes) the
            # connection the server closed after sending it
            assert err.value.args[0] in (ER_NET_PACKET_TOO_LARGE, CR_SERVER_GONE,
                                         CR_SERVER_LOST), err.value
        assert "max_allowed_packet" in server.sql("SHOW VARIABLES LIKE 'max_allowed_packet'")


def test_kill_and_restart_keep_committed_rows(mysql_private_server: MysqlServer,
                                              table_name: str) -> None:
    server = mysql_private_server
    port, pid = server.port, server.pid
    with connect(server) as conn:
        query(conn, f"CREATE TABLE {table_name} (id INT PRIMARY KEY)")
        query(conn, f"INSERT INTO {table_name} VALUES (1)")
        server.stop("kill")  # SIGKILL: no shutdown, InnoDB recovers at start
        assert not server.running
        with pytest.raises(pymysql.err.OperationalError):
            query(conn, "SELECT 1")
    server.start()
    assert server.port == port and server.pid != pid
    with connect(server) as conn:
        assert query(conn, f"SELECT id FROM {table_name}") == [(1,)]
    server.restart("clean")
    assert "Shutdown complete" in server.log_tail(200)
    with connect(server) as conn:
        assert query(conn, f"SELECT id FROM {table_name}") == [(1,)]


def test_freeze_and_thaw(mysql_private_server: MysqlServer) -> None:
    server = mysql_private_server
    with connect(server) as conn:
        server.freeze()
        try:
            t0 = time.monotonic()
            with pytest.raises(pymysql.err.OperationalError) as err:
                pymysql.connect(**server.connect_kwargs(connect_timeout=1, read_timeout=1))
            assert err.value.args[0] == CR_SERVER_LOST  # accepted by the kernel, no greeting
            assert time.monotonic() - t0 < 5
            assert server.running  # frozen, not dead
        finally:
            server.thaw()
        assert query(conn, "SELECT 1") == [(1,)]  # the old connection just resumes


# ---- a primary and a replica --------------------------------------------------------------


def test_replica_replicates_and_refuses_the_users_writes(mysql_cluster: MysqlCluster) -> None:
    status = mysql_cluster.replica_status(1)
    assert status["Using_Gtid"] == "Slave_Pos"
    assert (status["Slave_IO_Running"], status["Slave_SQL_Running"]) == ("Yes", "Yes")
    assert not mysql_cluster.is_read_only(0) and mysql_cluster.is_read_only(1)
    primary, replica = mysql_cluster.nodes[0], mysql_cluster.nodes[1]
    with connect(primary) as p, connect(replica) as r:
        query(p, "CREATE TABLE t (id INT PRIMARY KEY)")
        query(p, "INSERT INTO t VALUES (1)")
        poll(lambda: query(r, "SELECT COUNT(*) FROM information_schema.TABLES "
                              "WHERE TABLE_NAME = 't'") == [(1,)]
             and query(r, "SELECT id FROM t") == [(1,)], 5, "the row on the replica")
        with pytest.raises(pymysql.err.MySQLError) as err:
            query(r, "INSERT INTO t VALUES (2)")
        assert err.value.args[0] == ER_OPTION_PREVENTS_STATEMENT
    assert mysql_cluster.multi_host_dsn() == (
        f"mysql://dbpool_test:dbpool-secret@127.0.0.1:{primary.port},"
        f"127.0.0.1:{replica.port}/dbpool_test")


@pytest.mark.parametrize("down", ["stop", "kill"])
def test_commit_waits_while_the_replica_is_down(mysql_cluster: MysqlCluster, down: str) -> None:
    """Semi-sync: with the replica stopped (or killed), a commit on the
    primary does not return; it does once the replica is back, which then
    has the row."""
    with connect(mysql_cluster.nodes[0]) as conn:
        query(conn, "CREATE TABLE t (id INT PRIMARY KEY)")
    mysql_cluster.wait_replicating(10)
    getattr(mysql_cluster, down)(1)
    done = threading.Event()

    def insert() -> None:
        with connect(mysql_cluster.nodes[0], read_timeout=30) as conn:
            query(conn, "INSERT INTO t VALUES (1)")
        done.set()

    writer = threading.Thread(target=insert, daemon=True)
    writer.start()
    poll(lambda: "Waiting for semi-sync ACK from slave" in mysql_cluster.sql(
        0, "SELECT STATE FROM information_schema.PROCESSLIST"),
         10, "the commit waiting for the replica's acknowledgement", interval=0.05)
    time.sleep(0.3)
    assert not done.is_set()
    mysql_cluster.start(1)
    writer.join(20)
    assert done.is_set()
    mysql_cluster.wait_replicating(10)
    poll(lambda: mysql_cluster.sql(1, "SELECT COUNT(*) FROM dbpool_test.t") == "1", 5,
         "the row on the restarted replica")


def test_acknowledged_commits_survive_primary_kill_unapplied(mysql_cluster: MysqlCluster) -> None:
    """With the replica's SQL thread stopped, acknowledged rows exist only in
    its relay log; killing the primary and promoting the replica must still
    give every one (promote applies the relay log before RESET SLAVE ALL;
    1000 transactions, so that stopping half-way would show)."""
    rows = 1000
    with connect(mysql_cluster.nodes[0]) as conn:
        query(conn, "CREATE TABLE t (id INT PRIMARY KEY)")
        mysql_cluster.wait_replicating(10)
        poll(lambda: mysql_cluster.sql(1, "SELECT COUNT(*) FROM information_schema.TABLES "
                                          "WHERE TABLE_NAME = 't'") == "1",
             5, "table t on the replica")
        mysql_cluster.sql(1, "STOP SLAVE SQL_THREAD")
        for i in range(rows):
            query(conn, "INSERT INTO t VALUES (%s)", (i,))  # returns once the replica has it
    mysql_cluster.kill(0)
    assert mysql_cluster.sql(1, "SELECT COUNT(*) FROM dbpool_test.t") == "0"  # not applied yet
    mysql_cluster.promote(1)
    assert mysql_cluster.sql(1, "SELECT COUNT(*), MIN(id), MAX(id) FROM dbpool_test.t") == (
        f"{rows}\t0\t{rows - 1}")


def test_promoted_replica_has_every_acknowledged_write(mysql_cluster: MysqlCluster) -> None:
    """5 threads insert rows (autocommit) on the primary; after 100 acknowledged
    rows the primary is SIGKILLed. Every acknowledged row must be on the
    promoted replica; the only others allowed are the one insert per thread
    that was in flight at the kill. The promoted replica then takes writes."""
    threads_n, kill_after = 5, 100
    primary, replica = mysql_cluster.nodes[0], mysql_cluster.nodes[1]
    with connect(primary) as conn:
        query(conn, "CREATE TABLE t (id INT PRIMARY KEY)")
    acked: list[int] = []  # list.append is atomic
    errors: list[BaseException | None] = [None] * threads_n
    start = threading.Barrier(threads_n + 1)

    def writer(n: int) -> None:
        with connect(primary) as conn:
            start.wait(10)
            deadline = time.monotonic() + 30  # bounded even if the kill never comes
            i = 0
            while time.monotonic() < deadline:
                row_id = n * 1_000_000 + i
                try:
                    query(conn, "INSERT INTO t VALUES (%s)", (row_id,))
                except pymysql.err.OperationalError as exc:
                    errors[n] = exc
                    return
                acked.append(row_id)
                i += 1

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(threads_n)]
    for t in threads:
        t.start()
    start.wait(10)
    poll(lambda: len(acked) >= kill_after, 20, f"{kill_after} acknowledged inserts")
    mysql_cluster.kill(0)
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert all(isinstance(e, pymysql.err.OperationalError) for e in errors), errors
    acknowledged = set(acked)

    t0 = time.monotonic()
    mysql_cluster.promote(1)
    assert time.monotonic() - t0 < 10
    assert not mysql_cluster.is_read_only(1)
    assert mysql_cluster.replica_status(1) == {}
    with connect(replica) as conn:
        on_replica = {row[0] for row in query(conn, "SELECT id FROM t")}
        assert acknowledged - on_replica == set(), "acknowledged writes lost"
        assert len(on_replica - acknowledged) <= threads_n, sorted(on_replica - acknowledged)
        query(conn, "INSERT INTO t VALUES (-1)")  # takes writes, without waiting for a replica
        assert query(conn, "SELECT COUNT(*) FROM t WHERE id = -1") == [(1,)]
