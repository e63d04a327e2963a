"""Command line: ``python -m tests.tds_server --port 1433 [--tls on] [...]``
serves on 127.0.0.1 until interrupted (Ctrl-C / SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .config import DEFAULT_PASSWORD, DEFAULT_USER, Faults, ServerConfig
from .server import TdsServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.tds_server",
                                description="TDS 7.4 test server (SQL Server wire protocol) backed by sqlite.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1433, help="0 picks a free port (printed on start)")
    p.add_argument("--user", default=DEFAULT_USER)
    p.add_argument("--password", default=DEFAULT_PASSWORD)
    p.add_argument("--tls", choices=["off", "on", "require"], default="off",
                   help="off: ENCRYPT_NOT_SUP; on: TLS 1.2 when the client wants it; require: always")
    p.add_argument("--database", action="append", default=[], help="extra database (repeatable)")
    p.add_argument("--data-dir", default=None, help="keep the sqlite files here (default: temporary)")
    p.add_argument("--delay-ms", type=int, default=0, help="fault: wait before answering each request")
    p.add_argument("--drop-after-rows", type=int, default=None, help="fault: close the connection mid-result")
    p.add_argument("--refuse-connections", action="store_true", help="fault: close every connection at once")
    p.add_argument("--refuse-logins", action="store_true", help="fault: every login fails with 18456")
    p.add_argument("--strict-transaction-descriptor", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> None:
    faults = Faults(delay_ms=args.delay_ms, drop_after_rows=args.drop_after_rows,
                    refuse_connections=args.refuse_connections, refuse_logins=args.refuse_logins,
                    strict_transaction_descriptor=args.strict_transaction_descriptor)
    config = ServerConfig(host=args.host, port=args.port, user=args.user, password=args.password, tls=args.tls,
                          databases=("master", "tempdb", "dbpool", *args.database), data_dir=args.data_dir,
                          faults=faults)
    server = TdsServer(config)
    await server.start()
    cafile = f" cafile={server.certificate.cert_file}" if server.certificate else ""
    print(f"tds_server listening on {args.host}:{server.port} user={args.user} tls={args.tls}{cafile}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
