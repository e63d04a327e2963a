"""Redis Sentinel pools (docs/redis.md, "Sentinel"):
``redis+sentinel://[user:pass@]s1:26379,s2:26379/mymaster``.

The Sentinels are asked (each within ASK_TIMEOUT, dead ones skipped) for
the master and replicas of the service; those become the pool's endpoints,
whose roles the C core probes with ROLE like any pool of several. A
watcher thread per pool then follows Sentinel: it subscribes to the events
that mean the topology changed (+switch-master above all) on every
Sentinel it can reach, and asks again at once when one arrives (and every
POLL_INTERVAL anyway, should an event be missed). When the answer differs
it reconfigures the pool's endpoints (dbp_manager_reconfigure_pool) and
makes the core probe every role now (dbp_manager_probe_now). When the
leader announces that it promotes a replica (+failover-state-send-slaveof-
noone), the old master leaves the pool at once (a fence) and stays out
until the Sentinels agree on the new one, or the failover aborts.

Which answer counts: the one with the highest config epoch (the Sentinel
that led a failover has it first, as soon as the promoted replica answers
as a master), the master most of those name on a tie. A node is an
endpoint only while Sentinel vouches for its role: the master it names,
and replicas that are neither down nor disconnected and that answered
INFO as replicas. So an old master that Sentinel has replaced but not yet
demoted (it takes Sentinel ~9 s to turn a reachable one into a replica)
leaves the pool at the switch, and no new write goes to it; it comes back
as a replica once Sentinel has converted it."""

from __future__ import annotations

import logging
import select
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import unquote

from ._resp import RespConnection, RespError
from .errors import ConfigurationError, NoEndpointAvailable

logger = logging.getLogger("db_pool")

DEFAULT_PORT = 26379
#: Each Sentinel gets this long to connect and answer (they are nearby and quick).
ASK_TIMEOUT = 1.0
#: Sentinels asked again this often even without an event.
POLL_INTERVAL = 1.0
#: A lost subscription is tried again this often.
RESUBSCRIBE_INTERVAL = 1.0
#: Sentinel's events after which the topology is asked again.
EVENTS = ("+switch-master", "+promoted-slave", "+slave", "+convert-to-slave", "+role-change",
          "-role-change", "+sdown", "-sdown", "+slave-reconf-done", "+reboot", "-dup-sentinel",
          "-failover-abort-not-elected", "-failover-abort-no-good-slave",
          "-failover-abort-slave-timeout", "+failover-end-for-timeout")
#: The failover leader is about to promote a replica: the master is fenced at once.
PROMOTING = "+failover-state-send-slaveof-noone"
#: A fence holds this long at most while the Sentinels still name the old master
#: (an abort event ends it sooner).
FENCE_HOLD = 30.0
#: Endpoint settings that describe the Sentinels, not the data nodes.
KEYS = ("sentinels", "service_name", "sentinel_user", "sentinel_password")


def url_settings(credentials: str | None, hosts: str, path: str, settings: dict[str, str]
                 ) -> dict[str, str]:
    """redis+sentinel://[user:password@]s1[:port],s2[:port]/service[?db=N&
    sentinel_user=...&sentinel_password=...]: the credentials are the data
    nodes'."""
    if credentials is not None:
        user, colon, password = credentials.partition(":")
        if colon:
            settings["password"] = unquote(password)
            if user:
                settings["user"] = unquote(user)
        elif user:
            settings["password"] = unquote(user)
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
        for address in self.spec.sentinels:
            if self.stopping is not None and self.stopping.is_set():
                break
            deadline = time.monotonic() + ASK_TIMEOUT
            try:
                out.append(ask(self._conn(address, deadline), self.spec.service, deadline,
                               known))
                self.errors.pop(f"{address[0]}:{address[1]}", None)
            except (OSError, TimeoutError, RespError, ValueError) as exc:
                self.errors[f"{address[0]}:{address[1]}"] = str(exc) or type(exc).__name__
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


# ---- following Sentinel -----------------------------------------------------------------

class SentinelWatcher:
    """Keeps one pool's endpoints where Sentinel says the nodes are (see the
    module docstring). ``stop()`` returns within about STOP_BOUND seconds."""

    #: stop() waits this long; a thread still asking a slow Sentinel then
    #: ends by itself within ASK_TIMEOUT and changes nothing more.
    STOP_BOUND = 0.5

    def __init__(self, manager: Callable[[], Any], pool_id: str, spec: SentinelSpec,
                 options: dict[str, Any], topology: Topology,
                 on_change: Callable[[Topology, Topology], None] | None = None) -> None:
        #: the native manager, or None once its pools are gone (a weak link:
        #: a registry dropped without close() is still freed)
        self._manager = manager
        self.pool_id = pool_id
        self.spec = spec
        self.options = options
        self.topology = topology
        self.on_change = on_change
        self.changes = 0           # reconfigurations applied
        self.last_switch: float | None = None  # time.monotonic() of the last master change
        self._client = SentinelClient(spec)
        self._client.stopping = self._stop = threading.Event()
        self._subs: dict[tuple[str, int], RespConnection] = {}
        self._sub_retry: dict[tuple[str, int], float] = {}
        #: (fenced master, promoted replica, until) while a promotion is under way
        self._fenced: tuple[tuple[str, int], tuple[str, int], float] | None = None
        self._unfence = False
        import socket

        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name=f"db_pool-sentinel-{pool_id}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self.STOP_BOUND)

    # -- the loop --

    def _run(self) -> None:
        next_ask = time.monotonic() + POLL_INTERVAL
        try:
            while not self._stop.is_set() and self._manager() is not None:
                self._subscribe()
                timeout = max(0.0, next_ask - time.monotonic())
                socks: list[Any] = [self._wake_r, *self._subs.values()]
                try:
                    readable, _, _ = select.select(socks, [], [], timeout)
                except (OSError, ValueError):
                    readable = []
                if self._stop.is_set():
                    return
                heard = self._drain([s for s in readable if s is not self._wake_r])
                for _, channel, payload in heard:
                    if channel == PROMOTING:
                        self._fence(payload)
                    elif channel.startswith("-failover-abort") or channel.endswith("timeout"):
                        self._unfence = True
                if heard or time.monotonic() >= next_ask:
                    self._refresh(heard)
                    next_ask = time.monotonic() + POLL_INTERVAL
        except Exception:  # never let the thread die silently
            logger.exception("pool %r: the Sentinel watcher stopped", self.pool_id)
        finally:
            for conn in self._subs.values():
                conn.close()
            self._client.close()
            self._wake_r.close()
            self._wake_w.close()

    def _subscribe(self) -> None:
        """A subscription on every Sentinel that answers (retried now and then)."""
        now = time.monotonic()
        for address in self.spec.sentinels:
            if address in self._subs or self._sub_retry.get(address, 0.0) > now:
                continue
            self._sub_retry[address] = now + RESUBSCRIBE_INTERVAL
            deadline = now + ASK_TIMEOUT / 2
            try:
                conn = RespConnection(*address, user=self.spec.user,
                                      password=self.spec.password, timeout=ASK_TIMEOUT / 2)
                conn.send(("SUBSCRIBE", *EVENTS, PROMOTING), deadline=deadline)
                for _ in range(len(EVENTS) + 1):
                    conn.read(deadline)  # the confirmations
            except (OSError, TimeoutError, RespError, ValueError):
                continue
            self._subs[address] = conn
            if self._stop.is_set():
                return

    def _drain(self, readable: list[RespConnection]) -> list[tuple[str, str, str]]:
        """The events that arrived: (sentinel, channel, payload)."""
        heard = []
        for conn in readable:
            alive = conn.feed()
            while True:
                msg = conn.pending()
                if msg is None:
                    break
                if isinstance(msg, list) and len(msg) == 3 and msg[0] == "message":
                    heard.append((conn.address, str(msg[1]), str(msg[2])))
            if not alive:
                self._subs = {a: c for a, c in self._subs.items() if c is not conn}
        return heard

    def _fence(self, payload: str) -> None:
        """The leader is promoting a replica ("slave <name> <ip> <port> @
        <service> <ip> <port>"): no write may go to the old master from now
        on, so it leaves the pool before Sentinel even confirms the promotion
        (up to a second later: it learns it from INFO); writes wait for the
        promoted replica to answer ROLE as a master."""
        parts = payload.split()
        if len(parts) < 8 or parts[4] != "@" or parts[5] != self.spec.service:
            return
        promoted, fenced = (parts[2], int(parts[3])), (parts[6], int(parts[7]))
        if fenced != self.topology.master or promoted == fenced:
            return
        replicas = tuple(r for r in self.topology.replicas if r not in (promoted, fenced))
        self._fenced = (fenced, promoted, time.monotonic() + FENCE_HOLD)
        self._unfence = False
        logger.info("pool %r: Sentinel is promoting %s:%d; %s:%d takes no more writes",
                    self.pool_id, *promoted, *fenced)
        self.apply(Topology(promoted, replicas, self.topology.epoch, "fence"))

    def _held(self, new: Topology) -> bool:
        """Whether `new` still names the master fenced off, which is kept out
        until the Sentinels catch up, the failover aborts or FENCE_HOLD ends."""
        if self._fenced is None:
            return False
        fenced, promoted, until = self._fenced
        if new.master == fenced and not self._unfence and time.monotonic() < until:
            return True
        self._fenced = None
        return False

    def _refresh(self, heard: list[tuple[str, str, str]]) -> None:
        try:
            new = self._client.topology(frozenset(self.topology.replicas))
        except NoEndpointAvailable as exc:
            logger.warning("pool %r: %s", self.pool_id, exc)
            return
        if self._held(new):
            return
        old = self.topology
        if new.nodes == old.nodes and new.master == old.master:
            return
        if heard:
            logger.info("pool %r: Sentinel events: %s", self.pool_id,
                        "; ".join(" ".join(h) for h in heard))
        self.apply(new)

    def apply(self, new: Topology) -> None:
        """Reconfigures the pool to `new`'s nodes and has every role probed now."""
        old = self.topology
        if self._stop.is_set():
            return
        if new.master != old.master:
            self.last_switch = time.monotonic()
        manager = self._manager()
        if manager is None:
            self._stop.set()
            return
        try:
            if set(new.nodes) != set(old.nodes):
                manager.reconfigure_pool(self.pool_id, self.spec.endpoints(new.nodes),
                                         self.options)
            manager.probe_now(self.pool_id)
        except Exception as exc:  # the pool was closed meanwhile, or the manager
            if self._stop.is_set():
                return
            logger.warning("pool %r: could not follow Sentinel: %s", self.pool_id, exc)
            self._stop.set()
            return
        self.topology = new
        self.changes += 1
        logger.info("pool %r: Sentinel (%s, epoch %d) names master %s:%d and replicas %s",
                    self.pool_id, new.sentinel, new.epoch, *new.master,
                    ", ".join(f"{h}:{p}" for h, p in new.replicas if (h, p) != new.master)
                    or "none")
        if self.on_change is not None:
            self.on_change(old, new)
