"""A throwaway MariaDB primary/replica cluster for failover tests.

``MysqlCluster.create()`` starts a primary and one or more replicas, each a
``MysqlServer`` (tests/mysql_server.py: same user dbpool_test /
dbpool-secret and database, fast InnoDB settings) on its own free loopback
port in its own temporary directory. Node 0 is the first primary, nodes 1..
the replicas; the indexes stay the same after a failover (``promote(1)``
makes node 1 a primary; node 0 stays "node 0").

Every node writes a binary log (ROW format, ``log_slave_updates``, its own
``server_id``), so a promoted replica can serve replicas of its own. The
replicas follow node 0 with ``CHANGE MASTER TO ... MASTER_USE_GTID =
slave_pos`` as ``dbpool_repl`` (REPLICATION SLAVE, no password, 127.0.0.1
only), retry a lost primary every second, and run with ``read_only = ON``:
dbpool_test has no READ_ONLY ADMIN (nor SUPER), so its writes there fail
with error 1290; replication itself is not bound by read_only.

Replication is SEMI-SYNCHRONOUS (built into MariaDB 10.3+), with
``rpl_semi_sync_master_wait_point = AFTER_SYNC``,
``rpl_semi_sync_master_wait_no_slave = ON`` and a timeout of an hour: a
commit the primary acknowledged is in the relay log of a replica (not
necessarily applied yet: poll, or ``MASTER_GTID_WAIT``), and other
sessions on the primary do not see it before that either. The costs, which
tests must keep in mind:

- while no replica is connected (``stop``/``kill`` of the only one),
  commits on the primary wait until one is back (up to the hour);
- only node 0 has the primary side of semi-sync enabled: a promoted replica
  commits without waiting;
- ``promote(i)`` (re)starts replica i's SQL thread, stops its I/O thread,
  waits until it has *applied* everything it received (``MASTER_GTID_WAIT``;
  RESET SLAVE ALL would throw the relay log away), then ``STOP SLAVE; RESET
  SLAVE ALL; SET GLOBAL read_only = 0``. Tests that stop replication
  threads themselves must not stop both: with GTID, MariaDB discards the
  relay log when a thread starts again after both were stopped;
- a killed old primary that is started again comes back as a second
  writable primary whose commits wait for replicas that no longer follow
  it (split brain is not modelled; use a fresh cluster);
- other replicas keep following the old primary after a promotion (no
  re-pointing): with n > 1 only the promoted node is writable afterwards.

A primary + replica cluster starts in about 0.4 s (up to 2 s on a busy
machine) once the template data directory exists (mariadb-install-db, once
per process). Every node is killed and its directory removed at interpreter
exit even if ``cleanup()`` is not called.

Usable on its own::

    python tests/mysql_cluster.py [REPLICAS]   # prints the DSNs, runs until SIGINT/SIGTERM
"""

from __future__ import annotations

import sys
import time

from mysql_server import REPL_USER, MariadbBins, MysqlServer  # tests/ is on sys.path

__all__ = ["MysqlCluster"]

#: Semi-sync timeout (ms): long enough that it never silently falls back to
#: asynchronous replication during a test.
SEMISYNC_TIMEOUT_MS = 3_600_000


def _node_conf(i: int, semisync: bool) -> str:
    """The [mariadbd] lines of node i (0: primary, else a replica)."""
    conf = (
        f"# tests/mysql_cluster.py: node {i}\n"
        f"server_id = {i + 1}\n"
        "log_bin = mariadb-bin\n"
        "log_slave_updates = ON\n"
        "binlog_format = ROW\n"
        "relay_log = relay-bin\n"
        "relay_log_recovery = ON\n"  # a killed replica refetches instead of trusting its relay log
        "slave_net_timeout = 10\n"
    )
    if i == 0:
        if semisync:
            conf += (
                "rpl_semi_sync_master_enabled = ON\n"
                f"rpl_semi_sync_master_timeout = {SEMISYNC_TIMEOUT_MS}\n"
                "rpl_semi_sync_master_wait_point = AFTER_SYNC\n"
                "rpl_semi_sync_master_wait_no_slave = ON\n"
            )
    else:
        conf += "read_only = ON\n"
        if semisync:
            conf += "rpl_semi_sync_slave_enabled = ON\n"
    return conf


class MysqlCluster:
    """A primary and its semi-synchronous replicas; see the module docstring."""

    def __init__(self, nodes: list[MysqlServer], semisync: bool) -> None:
        self.nodes = nodes
        self.semisync = semisync
        #: node -> the node it replicates from (None: a primary)
        self.sources: dict[int, int | None] = {0: None}
        self._cleaned = False

    # ---- construction --------------------------------------------------------------

    @classmethod
    def create(cls, replicas: int = 1, *, semisync: bool = True,
               bins: MariadbBins | None = None, timeout: float = 30) -> MysqlCluster:
        """Starts the primary and `replicas` replicas and waits until they replicate."""
        if replicas < 1:
            raise ValueError("a cluster needs at least one replica")
        primary = MysqlServer.start_private(
            bins, extra_conf=_node_conf(0, semisync), prefix="dbpool-mysql0-")
        cluster = cls([primary], semisync)
        try:
            for i in range(1, replicas + 1):
                cluster.nodes.append(MysqlServer.start_private(
                    primary.bins, extra_conf=_node_conf(i, semisync), prefix=f"dbpool-mysql{i}-"))
                cluster._follow(i, 0)
            cluster.wait_replicating(timeout)
        except BaseException:
            cluster.cleanup()
            raise
        return cluster

    def _follow(self, i: int, source: int) -> None:
        """Makes node i a replica of node `source` (from the start of its binlog)."""
        src = self.nodes[source]
        self.sql(i, (
            f"CHANGE MASTER TO MASTER_HOST = '{src.host}', MASTER_PORT = {src.port}, "
            f"MASTER_USER = '{REPL_USER}', MASTER_PASSWORD = '', "
            "MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1; "
            "START SLAVE"))
        self.sources[i] = source

    # ---- addresses -----------------------------------------------------------------

    def dsn(self, i: int) -> str:
        """mysql://dbpool_test:dbpool-secret@127.0.0.1:PORT/dbpool_test of node i."""
        return self.nodes[i].dsn

    @property
    def primary_dsn(self) -> str:
        """The DSN of node 0 (the primary until a failover)."""
        return self.dsn(0)

    @property
    def replica_dsn(self) -> str:
        """The DSN of node 1 (the first replica until a failover)."""
        return self.dsn(1)

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    def multi_host_dsn(self) -> str:
        """One URL naming every node, in order:
        mysql://user:pw@127.0.0.1:P0,127.0.0.1:P1/dbpool_test"""
        n = self.nodes[0]
        hosts = ",".join(f"{node.host}:{node.port}" for node in self.nodes)
        return f"mysql://{n.user}:{n.password}@{hosts}/{n.database}"

    # ---- control -------------------------------------------------------------------

    def sql(self, i: int, sql: str, timeout: float = 30) -> str:
        """Runs SQL on node i as root (mariadb client over its Unix socket); its output."""
        return self.nodes[i].sql(sql, timeout=timeout).strip()

    def kill(self, i: int) -> None:
        """Crashes node i: SIGKILL (its clients see the connection reset)."""
        self.nodes[i].stop("kill")

    def stop(self, i: int) -> None:
        """Stops node i cleanly (SIGTERM: disconnects its clients)."""
        self.nodes[i].stop("clean")

    def start(self, i: int) -> None:
        """Starts node i again on its port, as what it was: a replica resumes
        replicating by itself (its master.info survives)."""
        self.nodes[i].start()

    def freeze(self, i: int) -> None:
        """SIGSTOP node i (a hung server) until thaw(i)."""
        self.nodes[i].freeze()

    def thaw(self, i: int) -> None:
        self.nodes[i].thaw()

    def replica_status(self, i: int) -> dict[str, str]:
        """SHOW SLAVE STATUS of node i ({} if it replicates from nobody)."""
        rows = self.nodes[i].sql_rows("SHOW SLAVE STATUS")
        return rows[0] if rows else {}

    def is_read_only(self, i: int) -> bool:
        return self.sql(i, "SELECT @@global.read_only") == "1"

    def promote(self, i: int, timeout: float = 30) -> None:
        """Makes replica i a writable primary without losing what it received:
        stop fetching, apply the relay log up to the last GTID received (with
        the SQL thread started, should a test have stopped it), then
        STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0."""
        if self.sources.get(i) is None:
            raise ValueError(f"node {i} is not a replica")
        # SQL thread first: once both threads are stopped, MariaDB (GTID mode)
        # discards the relay log at the next start, with whatever was not applied.
        self.sql(i, "START SLAVE SQL_THREAD; STOP SLAVE IO_THREAD")
        status = self.replica_status(i)
        received = status.get("Gtid_IO_Pos", "")
        if received:
            waited = self.sql(i, f"SELECT MASTER_GTID_WAIT('{received}', {timeout})",
                              timeout=timeout + 10)
            if waited != "0":
                raise TimeoutError(
                    f"node {i} did not apply {received} within {timeout}s "
                    f"(Last_SQL_Error: {status.get('Last_SQL_Error', '')!r})\n"
                    + self.nodes[i].log_tail(10))
        self.sql(i, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0")
        self.sources[i] = None

    def wait_replicating(self, timeout: float = 30, primary: int = 0) -> None:
        """Polls until every running replica of `primary` has both replication
        threads running and, when semi-synchronous, the primary counts them all
        as semi-sync clients (with semi-sync on)."""
        deadline = time.monotonic() + timeout
        while True:
            want = [i for i, src in self.sources.items()
                    if src == primary and self.nodes[i].running]
            states = {i: self.replica_status(i) for i in want}
            ok = [i for i, s in states.items()
                  if s.get("Slave_IO_Running") == "Yes" and s.get("Slave_SQL_Running") == "Yes"]
            acks = "-"
            if self.semisync and len(ok) == len(want):
                st = {r["Variable_name"]: r["Value"] for r in self.nodes[primary].sql_rows(
                    "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'")}
                acks = (f"{st.get('Rpl_semi_sync_master_clients')}/"
                        f"{st.get('Rpl_semi_sync_master_status')}")
                if st.get("Rpl_semi_sync_master_status") == "ON" and \
                        int(st.get("Rpl_semi_sync_master_clients", "0")) >= len(want):
                    return
            elif len(ok) == len(want):
                return
            if time.monotonic() > deadline:
                summary = {i: (s.get("Slave_IO_Running"), s.get("Slave_SQL_Running"),
                               s.get("Last_IO_Error"), s.get("Last_SQL_Error"))
                           for i, s in states.items()}
                raise TimeoutError(
                    f"only {len(ok)} of {len(want)} replicas of node {primary} replicating "
                    f"after {timeout}s (semi-sync clients/status {acks}): {summary}\n"
                    + "\n".join(n.log_tail(10) for n in self.nodes))
            time.sleep(0.05)

    def cleanup(self) -> None:
        """Kills every node and removes their directories. Idempotent."""
        if self._cleaned:
            return
        self._cleaned = True
        for node in reversed(self.nodes):
            node.cleanup()

    def __enter__(self) -> MysqlCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"<MysqlCluster ports={self.ports} semisync={self.semisync}>"


def _main() -> None:
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # runs the cleanup below (and atexit)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # background jobs start with SIGINT ignored
    replicas = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    t0 = time.monotonic()
    with MysqlCluster.create(replicas) as cluster:
        print(f"{cluster!r} ready in {time.monotonic() - t0:.2f}s", flush=True)
        for i in range(len(cluster.nodes)):
            print(f"node{i} {'primary' if i == 0 else 'replica'}: {cluster.dsn(i)}", flush=True)
        print(f"all: {cluster.multi_host_dsn()}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    _main()
