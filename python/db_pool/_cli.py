"""The `db-pool` command line (console script and ``python -m db_pool``):
check, query, load, stats and serve (docs/cli.md).

This module runs a command and turns what it raises into an exit code and
one line on stderr: 0 done, 1 the work failed, 2 usage or configuration
error, 130 interrupted. A traceback only with --debug. The commands live
in _cli_check.py, _cli_data.py and _cli_monitor.py; they run on the asyncio
API (one asyncio.run per command), whose cancellation stops a running
statement on the server when Ctrl-C comes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
import warnings
from typing import Any, Callable, Coroutine, Sequence, TextIO

from . import _cli_base as base
from ._cli_check import run_check
from ._cli_data import run_load, run_query
from ._cli_monitor import run_serve, run_stats
from ._cli_parser import build
from .errors import ConfigurationError, Error, PoolNotFound

COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "check": run_check,
    "query": run_query,
    "load": run_load,
    "stats": run_stats,
    "serve": run_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns its exit code (the console script exits with it)."""
    args = build().parse_args(argv)
    debug = bool(args.debug)
    _set_up_messages(debug)
    try:
        return asyncio.run(COMMANDS[args.command](args))
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            print(file=sys.stderr)  # past the ^C the terminal echoed
        base.error("interrupted")
        return base.EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return base.EXIT_BROKEN_PIPE
    except Exception as exc:  # noqa: BLE001 - every error becomes an exit code
        code = exit_code(exc)
        if debug:
            traceback.print_exc()
        report(exc)
        return code


def exit_code(exc: BaseException) -> int:
    """2 for what the user gave wrong, 1 for work that failed."""
    if isinstance(exc, (base.UsageError, ConfigurationError, PoolNotFound)):
        return base.EXIT_USAGE
    return base.EXIT_FAILURE


def report(exc: BaseException) -> None:
    """The error on stderr: one line, or one line per problem of an
    invalid configuration (each with its path)."""
    if isinstance(exc, ConfigurationError) and exc.problems:
        first = str(exc).splitlines()[0].rstrip(":")
        base.error(first)
        for problem in exc.problems:
            base.error(str(problem))
        return
    if isinstance(exc, base.UsageError):
        base.error(str(exc))
    elif isinstance(exc, Error):
        base.error(f"{type(exc).__name__}: {exc}")
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        base.error(f"{where}{exc.strerror or exc}")
    else:
        base.error(f"{type(exc).__name__}: {exc}")


def _set_up_messages(debug: bool) -> None:
    """The library's log records and warnings as ``db-pool:`` lines on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogLine())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    warnings.showwarning = _show_warning


class _LogLine(logging.Formatter):
    """``db-pool: warning: message`` (one line, as our own messages)."""

    def format(self, record: logging.LogRecord) -> str:
        text = base.one_line(record.getMessage())
        if record.exc_info and record.levelno <= logging.DEBUG:
            text += "\n" + self.formatException(record.exc_info)
        return f"{base.PROG}: {record.levelname.lower()}: {text}"


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    base.warn(str(message))


def _quiet_stdout() -> None:
    """After a closed pipe: stdout to /dev/null, so the flush at exit does
    not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass

