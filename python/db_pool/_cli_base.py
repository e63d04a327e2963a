"""What every `db-pool` command shares: the exit codes, the error a command
raises for a usage problem, and the one-line messages on stderr.

Messages never carry a secret: they are built from our own exceptions,
whose texts never hold a password or a URL, and from the user's arguments
only where those cannot be one (file names, pool names, formats).
"""

from __future__ import annotations

import sys
from typing import TextIO

#: The work was done.
EXIT_OK = 0
#: The work failed: a database error, an endpoint that cannot be reached, a
#: file that cannot be written.
EXIT_FAILURE = 1
#: The command was wrong: bad arguments, an invalid configuration, an
#: unknown pool, an input file that is missing or of an unknown kind.
EXIT_USAGE = 2
#: Interrupted (Ctrl-C), as a shell reports a process killed by SIGINT.
EXIT_INTERRUPTED = 130
#: The reader of our output went away (``db-pool query ... | head``).
EXIT_BROKEN_PIPE = 141

PROG = "db-pool"


class UsageError(Exception):
    """The command cannot run as given (exit 2); the message says why."""


def one_line(text: str) -> str:
    """A message on one line: its lines joined with "; " (a server's DETAIL
    and HINT come on lines of their own)."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def error(message: str, stream: TextIO | None = None) -> None:
    """``db-pool: error: message`` on stderr (one line)."""
    out = sys.stderr if stream is None else stream
    print(f"{PROG}: error: {one_line(message)}", file=out, flush=True)


def warn(message: str) -> None:
    """``db-pool: warning: message`` on stderr (one line)."""
    print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr, flush=True)


def info(message: str) -> None:
    """A line for the person at the terminal (stderr: stdout is for data)."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)
