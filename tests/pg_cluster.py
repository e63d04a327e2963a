"""A throwaway PostgreSQL streaming-replication cluster for failover tests.

``PgCluster.create()`` starts a primary and one or more hot standbys made
from it with ``pg_basebackup -R``, each a ``PgServer`` (same role
dbpool_test / dbpool-secret and database, fsync=off, run as postgres through
runuser when root) on its own free loopback port in its own temporary
directory. Node 0 is the first primary, nodes 1.. the standbys; the indexes
stay the same after a failover (``promote(1)`` makes node 1 a primary; node
0 stays "node 0").

Replication is SYNCHRONOUS: the primary has ``synchronous_commit = on`` and
``synchronous_standby_names = 'ANY n (*)'`` for its n standbys, so a commit
the primary acknowledged has been flushed by every standby. That is what
lets a failover test kill the primary, promote a standby and require every
acknowledged write to be there. The costs, which tests must keep in mind:

- while any standby is down (``stop``/``kill``), commits on the primary
  wait until it is back and has caught up;
- the setting is given with ALTER SYSTEM on the primary *after* the base
  backups were taken, so the standbys' copies of postgresql.auto.conf do not
  hold it and a promoted standby (which has no standby of its own) commits
  without waiting; ``promote()`` also resets it there, in case;
- a killed old primary that is started again comes back as a second
  primary on the old timeline that waits for standbys that no longer follow
  it: its commits hang (split brain is not modelled; use a fresh cluster);
- other standbys keep following the old primary after a promotion (no
  re-pointing): with n > 1 only the promoted node is writable afterwards.

The primary is a copy of a stopped template server that is made (initdb)
once per process: initdb is most of the start-up time, 1-2.5 s on 2 cores.
The standbys reach the primary over its Unix socket as the bootstrap
superuser (``local replication all trust``), so no replication password.
A primary + standby cluster then starts in about 1 s. Every node is stopped
(``-m immediate``) and its directory removed at interpreter exit even if
``cleanup()`` is not called.

Usable on its own::

    python tests/pg_cluster.py [STANDBYS]   # prints the DSNs, runs until SIGINT/SIGTERM
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pg_server import SUPERUSER, PgServer, find_pg_bin  # tests/ is on sys.path

__all__ = ["PgCluster"]

#: Appended to every node's postgresql.conf (the standbys copy the primary's).
REPLICATION_CONF = """\
wal_level = replica
max_wal_senders = 10
wal_keep_size = '128MB'
# a standby retries the primary after 100 ms, not 5 s (restarts, failovers)
wal_retrieve_retry_interval = '100ms'
"""

#: The standbys log in for replication over the primary's Unix socket.
REPLICATION_HBA = "local replication all trust\n"


_templates: dict[Path, PgServer] = {}


def _template(bin_dir: Path) -> PgServer:
    """A stopped server made once per process (initdb, role, database,
    REPLICATION_CONF/HBA), whose data directory each new primary copies."""
    if bin_dir not in _templates:
        server = PgServer.start_private(
            bin_dir, extra_conf=REPLICATION_CONF, extra_hba=REPLICATION_HBA
        )
        server.stop("fast")  # a clean shutdown: copies of it start without recovery
        _templates[bin_dir] = server
    return _templates[bin_dir]


def _start_node(node: PgServer, i: int) -> None:
    """Starts a data directory copied from another server (template or
    primary) as node i: its own socket directory, port and cluster_name."""
    with open(node.data_dir / "postgresql.conf", "a") as conf:
        conf.write(
            f"\n# tests/pg_cluster.py: node {i}\n"
            f"unix_socket_directories = '{node.socket_dir}'\n"
            f"cluster_name = 'node{i}'\n"  # a standby's application_name upstream
        )
    node._write_port()  # the copied port.conf names the other server's port
    node.start_on_free_port()


class PgCluster:
    """A primary and its synchronous streaming standbys; see the module docstring."""

    def __init__(self, nodes: list[PgServer], synchronous: bool) -> None:
        self.nodes = nodes
        self.synchronous = synchronous
        self._cleaned = False

    # ---- construction --------------------------------------------------------------

    @classmethod
    def create(cls, standbys: int = 1, *, synchronous: bool = True,
               bin_dir: Path | None = None, timeout: float = 30) -> PgCluster:
        """Starts the primary and `standbys` standbys and waits until they stream."""
        if standbys < 1:
            raise ValueError("a cluster needs at least one standby")
        bin_dir = bin_dir or find_pg_bin()
        template = _template(bin_dir)
        primary = PgServer.new_private(bin_dir, prefix="dbpool-pg0-")
        cluster = cls([primary], synchronous)
        try:
            subprocess.run(["cp", "-a", str(template.data_dir), str(primary.data_dir)], check=True)
            _start_node(primary, 0)
            for i in range(1, standbys + 1):
                cluster.nodes.append(cluster._make_standby(i))
            if synchronous:
                # After the base backups: their postgresql.auto.conf stays without it.
                cluster.sql(0, f"ALTER SYSTEM SET synchronous_standby_names = 'ANY {standbys} (*)'")
                cluster.sql(0, "ALTER SYSTEM SET synchronous_commit = on")
                cluster.sql(0, "SELECT pg_reload_conf()")
            cluster.wait_streaming(timeout)
        except BaseException:
            cluster.cleanup()
            raise
        return cluster

    def _make_standby(self, i: int) -> PgServer:
        """pg_basebackup -R of the primary into a new directory, started as node i."""
        primary = self.nodes[0]
        standby = PgServer.new_private(primary.bin_dir, prefix=f"dbpool-pg{i}-")
        try:
            standby._run(
                "pg_basebackup",
                "-D", str(standby.data_dir),
                "-h", str(primary.socket_dir),
                "-p", str(primary.port),
                "-U", SUPERUSER,
                "-R",  # standby.signal + primary_conninfo
                "-X", "stream",
                "-c", "fast",  # no waiting for a spread checkpoint
                "--no-sync",
            )
            _start_node(standby, i)
        except BaseException:
            standby.cleanup()
            raise
        return standby

    # ---- addresses -----------------------------------------------------------------

    def dsn(self, i: int) -> str:
        """postgresql://dbpool_test:dbpool-secret@127.0.0.1:PORT/dbpool_test of node i."""
        return self.nodes[i].dsn

    @property
    def primary_dsn(self) -> str:
        """The DSN of node 0 (the primary until a failover)."""
        return self.dsn(0)

    @property
    def standby_dsn(self) -> str:
        """The DSN of node 1 (the first standby until a failover)."""
        return self.dsn(1)

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    def multi_host_dsn(self) -> str:
        """One libpq-style URL naming every node, in order:
        postgresql://user:pw@127.0.0.1:P0,127.0.0.1:P1/dbpool_test"""
        n = self.nodes[0]
        hosts = ",".join(f"{node.host}:{node.port}" for node in self.nodes)
        return f"postgresql://{n.user}:{n.password}@{hosts}/{n.database}"

    # ---- control -------------------------------------------------------------------

    def sql(self, i: int, sql: str) -> str:
        """Runs SQL on node i as the superuser (psql over the Unix socket); its output."""
        return self.nodes[i]._psql(sql).strip()

    def kill(self, i: int) -> None:
        """Crashes node i: ``pg_ctl stop -m immediate`` (no shutdown checkpoint)."""
        self.nodes[i].stop("immediate")

    def stop(self, i: int) -> None:
        """Stops node i cleanly (``-m fast``: disconnects its clients)."""
        self.nodes[i].stop("fast")

    def start(self, i: int) -> None:
        """Starts node i again (as what it was: a standby resumes streaming)."""
        self.nodes[i].start()

    def promote(self, i: int) -> None:
        """Promotes standby i (``pg_ctl promote -w``: returns once it takes writes)
        and makes sure it does not wait for a synchronous standby of its own."""
        node = self.nodes[i]
        node._run("pg_ctl", "-D", str(node.data_dir), "-w", "-t", "30", "promote", timeout=40)
        self.sql(i, "ALTER SYSTEM RESET synchronous_standby_names")
        self.sql(i, "SELECT pg_reload_conf()")

    def is_in_recovery(self, i: int) -> bool:
        """True while node i is a standby."""
        return self.sql(i, "SELECT pg_is_in_recovery()") == "t"

    def streaming(self, primary: int = 0) -> list[tuple[str, str, str]]:
        """(application_name, state, sync_state) of each standby connected to `primary`."""
        out = self.sql(
            primary,
            "SELECT application_name, state, sync_state FROM pg_stat_replication "
            "ORDER BY application_name",
        )
        return [tuple(line.split("|")) for line in out.splitlines() if line]  # type: ignore[misc]

    def wait_streaming(self, timeout: float = 30, primary: int = 0) -> None:
        """Polls pg_stat_replication on `primary` until every other running
        node streams from it (and, when synchronous, counts as sync/quorum)."""
        want = len(self.nodes) - 1
        deadline = time.monotonic() + timeout
        while True:
            rows = self.streaming(primary)
            ok = [
                r for r in rows
                if r[1] == "streaming"
                and (not self.synchronous or r[2] in ("sync", "quorum"))
            ]
            if len(ok) >= want:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"only {len(ok)} of {want} standbys streaming after {timeout}s: {rows}\n"
                    + "\n".join(n.log_tail(10) for n in self.nodes)
                )
            time.sleep(0.05)

    def cleanup(self) -> None:
        """Stops every node (immediately) and removes their directories. Idempotent."""
        if self._cleaned:
            return
        self._cleaned = True
        for node in reversed(self.nodes):
            node.cleanup()

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"<PgCluster ports={self.ports} synchronous={self.synchronous}>"


def _main() -> None:
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)  # runs the cleanup below (and atexit)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # background jobs start with SIGINT ignored
    standbys = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    t0 = time.monotonic()
    with PgCluster.create(standbys) as cluster:
        print(f"{cluster!r} ready in {time.monotonic() - t0:.2f}s", flush=True)
        for i in range(len(cluster.nodes)):
            print(f"node{i} {'primary' if i == 0 else 'standby'}: {cluster.dsn(i)}", flush=True)
        print(f"all: {cluster.multi_host_dsn()}", flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    _main()
