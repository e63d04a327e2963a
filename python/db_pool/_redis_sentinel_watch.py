"""Following Redis Sentinel (docs/redis.md, "Sentinel"): one watcher per
Sentinel pool keeps the pool's endpoints where the Sentinels say the nodes
are (_redis_sentinel.py asks them).

A listener thread per Sentinel holds a subscription to the events that
mean the topology changed (+switch-master above all), reconnecting when it
drops, each socket operation bounded. The watcher's own thread asks the
Sentinels again as soon as an event arrives, and every POLL_INTERVAL anyway
should one be missed; when the answer differs it reconfigures the pool's
endpoints (dbp_manager_reconfigure_pool) and makes the core probe every
role now (dbp_manager_probe_now).

The fence: when the failover leader announces that it promotes a replica
(+failover-state-send-slaveof-noone), the listener that hears it takes the
old master out of the pool at once, before Sentinel even confirms the
promotion (it learns that from INFO, up to a second later), so no write
reaches a master that is being replaced; writes wait for the promoted
replica to answer ROLE as a master. The fence holds until the Sentinels
name the new master, or the failover aborts, or FENCE_HOLD passes."""

from __future__ import annotations

import logging
import select
import threading
import time
from typing import Any, Callable

from ._redis_sentinel import (ASK_TIMEOUT, RETRY_BACKOFF, SentinelClient, SentinelSpec,
                              Topology)
from ._resp import RespConnection, RespError
from .errors import NoEndpointAvailable

logger = logging.getLogger("db_pool")

#: Sentinels asked again this often even without an event.
POLL_INTERVAL = 1.0
#: A lost subscription is tried again this often (RETRY_BACKOFF after a timeout).
RESUBSCRIBE_INTERVAL = 1.0
#: How long a listener waits on its socket before it looks at the stop flag.
LISTEN_SLICE = 0.2
#: Sentinel's events after which the topology is asked again.
EVENTS = ("+switch-master", "+promoted-slave", "+slave", "+convert-to-slave", "+role-change",
          "-role-change", "+sdown", "-sdown", "+slave-reconf-done", "+reboot", "-dup-sentinel",
          "-failover-abort-not-elected", "-failover-abort-no-good-slave",
          "-failover-abort-slave-timeout", "+failover-end-for-timeout")
#: The failover leader is about to promote a replica: the master is fenced at once.
PROMOTING = "+failover-state-send-slaveof-noone"
#: A fence holds this long at most while the Sentinels still name the old master.
FENCE_HOLD = 30.0

Address = tuple[str, int]


class SentinelWatcher:
    """Follows Sentinel for one pool (see the module docstring). stop()
    returns within STOP_BOUND; a thread still waiting on a Sentinel then
    ends by itself within ASK_TIMEOUT and changes nothing more."""

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
        self.changes = 0  # reconfigurations applied
        self._stop = threading.Event()
        self._due = threading.Event()  # an event arrived: ask now
        self._lock = threading.Lock()  # topology, fence and the pool's endpoints
        self._heard: list[tuple[str, str, str]] = []
        self._fenced: tuple[Address, float] | None = None  # (fenced master, until)
        self._client = SentinelClient(spec)
        self._client.stopping = self._stop
        self._client.backoff = RETRY_BACKOFF
        self._threads = [threading.Thread(target=self._run, daemon=True,
                                          name=f"db_pool-sentinel-{pool_id}")]
        self._threads += [threading.Thread(target=self._listen, args=(a,), daemon=True,
                                           name=f"db_pool-sentinel-{pool_id}-{a[0]}:{a[1]}")
                          for a in spec.sentinels]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        self._due.set()
        deadline = time.monotonic() + self.STOP_BOUND
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # -- asking ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and self._manager() is not None:
                self._due.wait(POLL_INTERVAL)
                self._due.clear()
                if self._stop.is_set():
                    return
                with self._lock:
                    heard, self._heard = self._heard, []
                self._refresh(heard)
        except Exception:  # never let the thread die silently
            logger.exception("pool %r: the Sentinel watcher stopped", self.pool_id)
        finally:
            self._client.close()

    def _refresh(self, heard: list[tuple[str, str, str]]) -> None:
        known = frozenset(self.topology.replicas)
        try:
            new = self._client.topology(known)
        except NoEndpointAvailable as exc:
            logger.warning("pool %r: %s", self.pool_id, exc)
            return
        with self._lock:
            if self._held(new):
                return
            old = self.topology
            if new.nodes == old.nodes and new.master == old.master:
                return
            if heard:
                logger.info("pool %r: Sentinel events: %s", self.pool_id,
                            "; ".join(" ".join(h) for h in heard))
            self._apply_locked(new)

    def _held(self, new: Topology) -> bool:
        """Whether `new` still names the master fenced off: kept out until the
        Sentinels name another, the failover aborts or FENCE_HOLD ends."""
        if self._fenced is None:
            return False
        fenced, until = self._fenced
        if new.master == fenced and time.monotonic() < until:
            return True
        self._fenced = None
        return False

    def _apply_locked(self, new: Topology) -> None:
        """Reconfigures the pool to `new`'s nodes and has every role probed now."""
        old = self.topology
        manager = self._manager()
        if manager is None or self._stop.is_set():
            self._stop.set()
            return
        try:
            if set(new.nodes) != set(old.nodes):
                manager.reconfigure_pool(self.pool_id, self.spec.endpoints(new.nodes),
                                         self.options)
            manager.probe_now(self.pool_id)
        except Exception as exc:  # the pool was closed meanwhile, or the manager
            if not self._stop.is_set():
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

    # -- listening -------------------------------------------------------------------

    def _listen(self, address: Address) -> None:
        """Keeps a subscription on one Sentinel and hands its events on."""
        while not self._stop.is_set():
            conn = self._subscribe(address)
            if conn is None:
                continue
            try:
                while not self._stop.is_set():
                    readable, _, _ = select.select([conn], [], [], LISTEN_SLICE)
                    if not readable:
                        continue
                    alive = conn.feed()
                    while (msg := conn.pending()) is not None:
                        if isinstance(msg, list) and len(msg) == 3 and msg[0] == "message":
                            self._on_event(conn.address, str(msg[1]), str(msg[2]))
                    if not alive:
                        break
            except (OSError, ValueError):
                pass
            finally:
                conn.close()

    def _subscribe(self, address: Address) -> RespConnection | None:
        deadline = time.monotonic() + ASK_TIMEOUT
        try:
            conn = RespConnection(*address, user=self.spec.user, password=self.spec.password,
                                  timeout=ASK_TIMEOUT)
            try:
                conn.send(("SUBSCRIBE", *EVENTS, PROMOTING), deadline=deadline)
                for _ in range(len(EVENTS) + 1):
                    conn.read(deadline)  # the confirmations
            except BaseException:
                conn.close()
                raise
            return conn
        except (OSError, TimeoutError, RespError, ValueError) as exc:
            frozen = isinstance(exc, TimeoutError)  # not gone: try it less often
            self._stop.wait(RETRY_BACKOFF if frozen else RESUBSCRIBE_INTERVAL)
            return None

    def _on_event(self, sentinel: str, channel: str, payload: str) -> None:
        with self._lock:
            if channel == PROMOTING:
                self._fence_locked(payload)
            elif channel.startswith("-failover-abort") or channel == "+failover-end-for-timeout":
                self._fenced = None
            self._heard.append((sentinel, channel, payload))
        self._due.set()

    def _fence_locked(self, payload: str) -> None:
        """"slave <name> <ip> <port> @ <service> <ip> <port>": the leader
        promotes that replica of that master."""
        parts = payload.split()
        if len(parts) < 8 or parts[4] != "@" or parts[5] != self.spec.service:
            return
        try:
            promoted, fenced = (parts[2], int(parts[3])), (parts[6], int(parts[7]))
        except ValueError:
            return
        if fenced != self.topology.master or promoted == fenced:
            return
        self._fenced = (fenced, time.monotonic() + FENCE_HOLD)
        logger.info("pool %r: Sentinel is promoting %s:%d; %s:%d takes no more writes",
                    self.pool_id, *promoted, *fenced)
        replicas = tuple(r for r in self.topology.replicas if r not in (promoted, fenced))
        self._apply_locked(Topology(promoted, replicas, self.topology.epoch, "fence"))
