"""`db-pool stats` and `db-pool serve`: the configured pools opened, then
their stats()/metrics() printed once (a table, JSON or the Prometheus
text), or served over HTTP by serve_metrics() (dashboard at /, /metrics,
/healthz, /readyz) until SIGINT or SIGTERM, after which the server stops
and the pools close within --close-timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any, Iterator

import polars as pl

from ._cli_base import EXIT_OK, info
from ._cli_output import print_json, table_text
from ._cli_pools import load, opened, select, source_label
from ._async import DatabasePool

_POOL_COLUMNS = ("engine", "size", "idle", "in_use", "opening", "waiting", "max_size",
                 "requests", "errors", "timeouts", "query_timeouts", "failovers")
_ENDPOINT_COLUMNS = ("endpoint", "role", "health", "is_primary", "size", "idle", "in_use",
                     "failures", "last_error")


# ---- stats ---------------------------------------------------------------------------


async def run_stats(args: argparse.Namespace) -> int:
    config = select(load(args), args.pool or [], source_label(args))
    async with opened(config) as pool:
        names = list(config.pools)
        if args.format == "prometheus":
            sys.stdout.write("".join(pool.prometheus_text(n) for n in names))
        elif args.format == "json":
            print_json({"pools": {n: pool.stats(n) for n in names},
                        "metrics": _merged(pool.metrics(n) for n in names)})
        else:
            print(stats_tables(pool, names))
    sys.stdout.flush()
    return EXIT_OK


def _merged(snapshots: Iterator[dict[str, list[dict[str, Any]]]]) -> dict[str, list[Any]]:
    """Several pools' metrics() as one: each metric's samples together."""
    out: dict[str, list[Any]] = {}
    for snap in snapshots:
        for name, samples in snap.items():
            out.setdefault(name, []).extend(samples)
    return out


def stats_tables(pool: DatabasePool, names: list[str]) -> str:
    """Two tables in Polars' format: one row per pool, one per endpoint."""
    pools, endpoints = [], []
    for name in names:
        stats = pool.stats(name)
        pools.append({"pool": name, **{c: stats.get(c) for c in _POOL_COLUMNS}})
        for ep in stats["endpoints"]:
            endpoints.append({"pool": name, **{c: ep.get(c) for c in _ENDPOINT_COLUMNS}})
    return (table_text(pl.DataFrame(pools), -1) + "\n"
            + table_text(pl.DataFrame(endpoints, infer_schema_length=None), -1))


# ---- serve ---------------------------------------------------------------------------


async def run_serve(args: argparse.Namespace) -> int:
    config = select(load(args), args.pool or [], source_label(args))
    read_only = args.read_only or []
    select(config, read_only, "the pools served")  # a typo in --read-only is an error
    async with opened(config, close_timeout=args.close_timeout) as pool:
        with _stop_on_signals() as stop:  # before the URL is out: whoever reads it may stop us
            server = pool.serve_metrics(args.host, args.port, allow_remote=args.allow_remote,
                                        read_only=read_only)
            print(f"serving {len(config.pools)} pool{'s' * (len(config.pools) != 1)} at "
                  f"{server.url} (dashboard), {server.url}metrics, {server.url}healthz, "
                  f"{server.url}readyz", flush=True)
            await stop.wait()
        info("stopping: closing the server and the pools")
        server.close()
    return EXIT_OK


class _stop_on_signals:
    """While active, SIGINT and SIGTERM set an asyncio.Event instead of
    ending the process; the usual handlers come back afterwards (so a
    second Ctrl-C while closing interrupts as usual). A SIGINT the process
    was started with ignored (a shell's background job) stays ignored."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.taken: list[int] = []

    def __enter__(self) -> asyncio.Event:
        for sig in self.SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue
            self.loop.add_signal_handler(sig, self.stop.set)
            self.taken.append(sig)
        return self.stop

    def __exit__(self, *exc: object) -> None:
        for sig in self.taken:
            self.loop.remove_signal_handler(sig)
