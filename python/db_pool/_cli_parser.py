"""The `db-pool` command line's arguments (argparse): the commands check,
query, load, stats and serve, their options and their --help texts.
docs/cli.md documents the same."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import NoReturn

from ._cli_base import EXIT_USAGE, PROG, error
from ._cli_output import DEFAULT_TABLE_ROWS, FORMATS
from ._cli_pools import CLOSE_TIMEOUT

EPILOG = """\
exit codes: 0 done; 1 the work failed (a database error, an endpoint not
reached, a file not written); 2 usage or configuration error; 130
interrupted. Errors go to stderr as one line, without a traceback unless
--debug. Secrets are never printed. See docs/cli.md.
"""

CONFIG_HELP = """\
Without --config, the pools come from the environment: DB_POOL_<POOL>_URL
(and DB_POOL_<POOL>_<KEY>), or DATABASE_URL for the pool "default".
"""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one ``db-pool: error:`` line (exit 2)."""

    def error(self, message: str) -> NoReturn:
        error(f"{message} (see {self.prog} --help)")
        sys.exit(EXIT_USAGE)


def _wrapped(text: str) -> str:
    """A description filled to the width of the epilogs (they are kept as written)."""
    return textwrap.fill(text, 78)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535, got {text!r}")
    return value


def _common() -> Parser:
    """--debug on every command (SUPPRESS: the top level's value stays)."""
    p = Parser(add_help=False)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the traceback of an error, and debug logging")
    return p


def _config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="FILE",
                   help="the TOML configuration file (default: the environment)")
    p.add_argument("--env", action="store_true",
                   help="with --config: DB_POOL_<POOL>_<KEY> variables override the file")


def build() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Named, pooled database connections from the command line: check a "
                    "configuration, run a query, load a file, show or serve the metrics.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the traceback of an error, and debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    common = _common()
    raw = argparse.RawDescriptionHelpFormatter

    check = commands.add_parser(
        "check", parents=[common], formatter_class=raw, epilog=CONFIG_HELP + "\n" + EPILOG,
        help="validate a configuration and print it, secrets masked",
        description=_wrapped("Validates a configuration (every problem at once, each with its path: "
                    "exit 2) and prints the effective configuration with secrets masked. "
                    "--connect then opens one connection to each endpoint (exit 1 if one fails)."))
    check.add_argument("config", nargs="?", metavar="CONFIG",
                       help="the TOML file (default: the environment)")
    check.add_argument("--env", action="store_true",
                       help="DB_POOL_<POOL>_<KEY> variables override the file")
    check.add_argument("--pool", action="append", metavar="POOL",
                       help="only this pool (repeatable)")
    check.add_argument("--format", choices=("toml", "json"), default="toml",
                       help="how to print the configuration (default: toml)")
    check.add_argument("--connect", action="store_true",
                       help="also connect to each endpoint and run SELECT 1")
    check.add_argument("--timeout", type=_seconds, default=5.0, metavar="SECONDS",
                       help="bound on each endpoint's connection and query (default: 5)")

    query = commands.add_parser(
        "query", parents=[common], formatter_class=raw, epilog=CONFIG_HELP + "\n" + EPILOG,
        help="run a query; print its rows or write them to a file",
        description=_wrapped("Runs one SQL statement that returns rows and prints them as a table "
                    "(Polars' format) or writes them as CSV, JSON, NDJSON or Parquet. On a "
                    "terminal, a long read shows its progress (rows and bytes) on stderr."))
    query.add_argument("pool", metavar="POOL", help="a pool name, or a database URL")
    query.add_argument("sql", metavar="SQL", help="the statement")
    _config_options(query)
    query.add_argument("-f", "--format", choices=FORMATS,
                       help="output format (default: from -o's extension, else table)")
    query.add_argument("-o", "--output", metavar="FILE",
                       help="write to FILE (whole or not at all) instead of stdout")
    query.add_argument("--max-rows", type=int, default=DEFAULT_TABLE_ROWS, metavar="N",
                       help=f"rows the table format shows (-1: all; default: "
                            f"{DEFAULT_TABLE_ROWS})")
    query.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                       help="deadline of the query (default: the pool's query_timeout)")
    query.add_argument("--no-progress", action="store_true",
                       help="no progress line, even on a terminal")

    load = commands.add_parser(
        "load", parents=[common], formatter_class=raw, epilog=CONFIG_HELP + "\n" + EPILOG,
        help="bulk-load a CSV or Parquet file into a table",
        description=_wrapped("Bulk-loads the rows of a CSV or Parquet file into a table through "
                    "write_frame (the engine's bulk path), all or nothing, and prints the "
                    "rows loaded. On a terminal, a long load shows its progress on stderr."))
    load.add_argument("pool", metavar="POOL", help="a pool name, or a database URL")
    load.add_argument("table", metavar="TABLE", help="the table (schema.table allowed)")
    load.add_argument("file", metavar="FILE", help="a .csv or .parquet file")
    _config_options(load)
    load.add_argument("--create", action="store_true",
                      help="create the table from the file's columns if it does not exist")
    load.add_argument("--mode", choices=("append", "fail", "replace"), default="append",
                      help="when the table exists: append to it (default), fail, or replace "
                           "it (drop and create); fail and replace imply --create")
    load.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                      help="deadline of each statement (default: the pool's query_timeout)")
    load.add_argument("--no-progress", action="store_true",
                      help="no progress line, even on a terminal")

    stats = commands.add_parser(
        "stats", parents=[common], formatter_class=raw, epilog=CONFIG_HELP + "\n" + EPILOG,
        help="open the pools and print their stats or metrics",
        description=_wrapped("Opens the configured pools and prints stats() as tables, stats() and "
                    "metrics() as JSON, or prometheus_text()."))
    stats.add_argument("pool", nargs="*", metavar="POOL", help="only these pools (default: all)")
    _config_options(stats)
    stats.add_argument("-f", "--format", choices=("table", "json", "prometheus"),
                       default="table", help="output format (default: table)")

    serve = commands.add_parser(
        "serve", parents=[common], formatter_class=raw, epilog=CONFIG_HELP + "\n" + EPILOG,
        help="serve the metrics, health checks and dashboard over HTTP",
        description=_wrapped("Opens the configured pools and serves / (the live dashboard), "
                    "/metrics (Prometheus), /healthz and /readyz until SIGINT or SIGTERM; "
                    "then closes the pools within --close-timeout and exits 0."))
    serve.add_argument("pool", nargs="*", metavar="POOL", help="only these pools (default: all)")
    _config_options(serve)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=9187,
                       help="port (default: 9187; 0 picks a free one)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a non-loopback --host (the pages show the pools' topology)")
    serve.add_argument("--read-only", action="append", metavar="POOL",
                       help="/readyz wants any reachable endpoint of this pool, not a primary "
                            "(repeatable)")
    serve.add_argument("--close-timeout", type=_seconds, default=CLOSE_TIMEOUT,
                       metavar="SECONDS", help=f"bound on closing the pools (default: "
                                               f"{CLOSE_TIMEOUT:g})")
    return parser


def _version() -> str:
    from . import __version__
    return __version__
