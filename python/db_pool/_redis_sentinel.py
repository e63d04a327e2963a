"""Redis Sentinel pools (docs/redis.md, "Sentinel"):
``redis+sentinel://[user:pass@]s1:26379,s2:26379/mymaster``. This module
reads the settings and asks the Sentinels; _redis_sentinel_watch.py
follows them afterwards.

The Sentinels are asked (each within ASK_TIMEOUT, dead ones skipped) for
the master and replicas of the service; those become the pool's endpoints,
whose roles the C core probes with ROLE like any pool of several.

Which answer counts: the one with the highest config epoch (the Sentinel
that led a failover has it first, as soon as the promoted replica answers
as a master), the master most of those name on a tie. A node is an
endpoint only while Sentinel vouches for its role: the master it names,
and replicas that are not down and that answered INFO as replicas. So an
old master that Sentinel has replaced but not yet demoted (it takes
Sentinel ~9 s to turn a reachable one into a replica) is not an endpoint;
it comes back as a replica once Sentinel has converted it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import unquote

from ._resp import RespConnection, RespError
from .errors import ConfigurationError, NoEndpointAvailable

DEFAULT_PORT = 26379
#: Each Sentinel gets this long to connect and answer (they are nearby and quick).
ASK_TIMEOUT = 1.0
#: A Sentinel that failed to answer is left out of a watcher's asks this long
#: (a frozen one would cost ASK_TIMEOUT each time), unless none answers.
RETRY_BACKOFF = 3.0
#: Endpoint settings that describe the Sentinels, not the data nodes.
KEYS = ("sentinels", "service_name", "sentinel_user", "sentinel_password")


def url_settings(hosts: str, path: str, settings: dict[str, str]) -> dict[str, str]:
    """redis+sentinel://[user:password@]s1[:port],s2[:port]/service[?db=N&
    sentinel_user=...&sentinel_password=...]: the credentials are the data
    nodes' (_redis.url_settings has put them in settings already)."""
    if not hosts:
        raise ConfigurationError("a redis+sentinel:// URL names the Sentinels: "
                                 "redis+sentinel://s1:26379,s2:26379/mymaster")
    settings["sentinels"] = unquote(hosts)
    service = unquote(path[1:] if path.startswith("/") else path)
    if not service or "/" in service:
        raise ConfigurationError("a redis+sentinel:// URL's path is the service (master) name "
                                 "the Sentinels monitor: redis+sentinel://s1:26379/mymaster")
    settings["service_name"] = service
    if "db" in settings:
        settings["database"] = settings.pop("db")
    return settings


@dataclass(frozen=True)
class SentinelSpec:
    """Where the Sentinels are and how to reach the data nodes they name."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    user: str | None
    password: str | None
    node_settings: Mapping[str, str]  # every data node's settings but host and port

    def endpoints(self, nodes: Sequence[tuple[str, int]]) -> list[dict[str, str]]:
        return [{**self.node_settings, "host": h, "port": str(p)} for h, p in nodes]


def _addresses(text: str) -> tuple[tuple[str, int], ...]:
    from ._common import split_host_port

    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, port = split_host_port(item)
        if port and not port.isdigit():
            raise ConfigurationError("a Sentinel's port is not a number")
        out.append((host or "localhost", int(port) if port else DEFAULT_PORT))
    if not out:
        raise ConfigurationError("sentinels names no Sentinel (host:port,host:port)")
    return tuple(out)


def spec_of(engine: str, settings: list[dict[str, str]]) -> SentinelSpec | None:
    """The Sentinel spec of a pool's endpoint settings, None for other pools."""
    if engine != "redis" or not any("sentinels" in ep or "service_name" in ep for ep in settings):
        return None
    if len(settings) != 1:
        raise ConfigurationError("a Sentinel pool has one set of settings: its endpoints "
                                 "are the nodes the Sentinels name")
    ep = settings[0]
    if "sentinels" not in ep or not ep.get("service_name"):
        raise ConfigurationError("a Sentinel pool needs both sentinels (host:port,...) and "
                                 "service_name")
    for key in ("host", "port", "unix_socket"):
        if key in ep:
            raise ConfigurationError(f"a Sentinel pool takes no {key}: the Sentinels name "
                                     "the nodes")
    if ep.get("tls", "disable") != "disable":
        raise ConfigurationError("a Sentinel pool over TLS is not supported yet: the "
                                 "Sentinels are asked in plain text (docs/redis.md)")
    return SentinelSpec(_addresses(ep["sentinels"]), ep["service_name"],
                        ep.get("sentinel_user") or None, ep.get("sentinel_password") or None,
                        {k: v for k, v in ep.items() if k not in KEYS})


# ---- asking the Sentinels ---------------------------------------------------------------

@dataclass(frozen=True)
class Topology:
    """What one Sentinel says: the master, the replicas it vouches for, and
    the config epoch of that view."""

    master: tuple[str, int]
    replicas: tuple[tuple[str, int], ...]
    epoch: int
    sentinel: str

    @property
    def nodes(self) -> tuple[tuple[str, int], ...]:
        return (self.master, *sorted(r for r in self.replicas if r != self.master))


def _pairs(reply: Any) -> dict[str, str]:
    if not isinstance(reply, list):
        raise ConnectionError(f"unexpected Sentinel reply {type(reply).__name__}")
    return {str(k): str(v) for k, v in zip(reply[::2], reply[1::2])}


def _vouched(replica: dict[str, str], known: frozenset[tuple[str, int]]) -> bool:
    """A replica Sentinel sees up, connected and answering INFO as a replica
    (a replaced master not yet demoted still reports role master). Sentinel
    lists every node afresh after a switch, before their first INFO, and its
    links to them drop at times: one that was a replica already stays on
    trust unless Sentinel sees it down or as a master."""
    flags = set(replica.get("flags", "").split(","))
    if flags & {"s_down", "o_down"} or replica.get("role-reported") != "slave":
        return False
    if (replica.get("ip", ""), int(replica.get("port", "0"))) in known:
        return True  # Sentinel's link to it drops now and then, the node is fine
    return replica.get("info-refresh", "0") not in ("0", "") and "disconnected" not in flags


def ask(conn: RespConnection, service: str, deadline: float,
        known: frozenset[tuple[str, int]] = frozenset()) -> Topology:
    master, addr, replicas = conn.pipeline(
        ("SENTINEL", "MASTER", service), ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", service),
        ("SENTINEL", "REPLICAS", service), deadline=deadline)
    for reply in (master, addr, replicas):
        if isinstance(reply, RespError):
            raise reply
    if not isinstance(addr, list) or len(addr) != 2:
        raise RespError(f"sentinel {conn.address} does not know the service")
    info = _pairs(master)
    nodes = []
    for item in replicas or []:
        r = _pairs(item)
        if _vouched(r, known):
            nodes.append((r["ip"], int(r["port"])))
    return Topology((str(addr[0]), int(addr[1])), tuple(nodes),
                    int(info.get("config-epoch", "0") or 0), conn.address)


def choose(views: Sequence[Topology]) -> Topology:
    """The newest view: highest config epoch, then the master most name."""
    top = max(v.epoch for v in views)
    newest = [v for v in views if v.epoch == top]
    votes: dict[tuple[str, int], int] = {}
    for v in newest:
        votes[v.master] = votes.get(v.master, 0) + 1
    master = max(votes, key=lambda m: votes[m])  # on a tie, the first named
    return next(v for v in newest if v.master == master)


class SentinelClient:
    """Command connections to the Sentinels, kept between asks."""

    def __init__(self, spec: SentinelSpec) -> None:
        self.spec = spec
        self._conns: dict[tuple[str, int], RespConnection] = {}
        self.errors: dict[str, str] = {}
        self.stopping: threading.Event | None = None  # a watcher's stop: ask no further
        self.backoff = 0.0  # RETRY_BACKOFF in a watcher (discovery asks every Sentinel)
        self._retry_at: dict[tuple[str, int], float] = {}

    def _conn(self, address: tuple[str, int], deadline: float) -> RespConnection:
        conn = self._conns.get(address)
        if conn is None:
            left = max(0.01, deadline - time.monotonic())
            conn = RespConnection(*address, user=self.spec.user, password=self.spec.password,
                                  timeout=left)
            self._conns[address] = conn
        return conn

    def views(self, known: frozenset[tuple[str, int]] = frozenset()) -> list[Topology]:
        """Every reachable Sentinel's view, each asked within ASK_TIMEOUT
        (`known`: the replicas the pool has now)."""
        out = []
        now = time.monotonic()
        due = [a for a in self.spec.sentinels if self._retry_at.get(a, 0.0) <= now]
        for address in due or self.spec.sentinels:
            if self.stopping is not None and self.stopping.is_set():
                break
            deadline = time.monotonic() + ASK_TIMEOUT
            try:
                out.append(ask(self._conn(address, deadline), self.spec.service, deadline,
                               known))
                self.errors.pop(f"{address[0]}:{address[1]}", None)
            except (OSError, TimeoutError, RespError, ValueError) as exc:
                self.errors[f"{address[0]}:{address[1]}"] = str(exc) or type(exc).__name__
                self._retry_at[address] = time.monotonic() + self.backoff
                conn = self._conns.pop(address, None)
                if conn is not None:
                    conn.close()
        return out

    def topology(self, known: frozenset[tuple[str, int]] = frozenset()) -> Topology:
        views = self.views(known)
        if not views:
            detail = "; ".join(f"{a}: {e}" for a, e in self.errors.items())
            raise NoEndpointAvailable(f"no Sentinel of service {self.spec.service!r} answered "
                                      f"({detail})")
        return choose(views)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def discover(spec: SentinelSpec) -> Topology:
    client = SentinelClient(spec)
    try:
        return client.topology()
    finally:
        client.close()
