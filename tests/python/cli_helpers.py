"""What the command-line tests share: running the real installed console
script (the venv's ``db-pool``) in a subprocess with a timeout and an
environment cleared of db-pool variables, reading a line with a deadline,
and running it with stderr on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, Mapping

#: The console script `make install` puts beside the interpreter.
DB_POOL = Path(sys.executable).parent / "db-pool"


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without DB_POOL_* and DATABASE_URL (so the
    caller's own settings cannot leak in), plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DB_POOL_") and k != "DATABASE_URL"}
    env.update(extra or {})
    return env


def _sigint_as_usual() -> None:
    """In the child: SIGINT back to its default. A shell starts background
    jobs with SIGINT ignored, the child inherits that, and Python leaves an
    ignored SIGINT ignored; the tests send it on purpose."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run(*args: str | Path, env: Mapping[str, str] | None = None, timeout: float = 60.0,
        cwd: Path | None = None, stdin: Any = subprocess.DEVNULL
        ) -> subprocess.CompletedProcess[str]:
    """``db-pool ARGS`` to the end (bounded by ``timeout``), output captured."""
    assert DB_POOL.exists(), f"{DB_POOL} is missing: run make install"
    return subprocess.run([str(DB_POOL), *map(str, args)], env=clean_env(env), cwd=cwd,
                          stdin=stdin, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_sigint_as_usual)


def start(*args: str | Path, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[str]:
    """``db-pool ARGS`` started, stdout and stderr piped."""
    return subprocess.Popen([str(DB_POOL), *map(str, args)], env=clean_env(env), cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_usual)


def read_line(stream: IO[str], timeout: float) -> str:
    """One line of a pipe, or AssertionError after ``timeout`` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no line within {timeout} s"
    return stream.readline()


def run_with_terminal_stderr(*args: str | Path, env: Mapping[str, str] | None = None,
                             timeout: float = 60.0, cwd: Path | None = None
                             ) -> tuple[int, str, bytes, float]:
    """``db-pool ARGS`` with stderr on a pseudo-terminal (stdout a pipe):
    (exit code, stdout, what reached the terminal, seconds it ran)."""
    master, slave = pty.openpty()
    started = time.monotonic()
    proc = subprocess.Popen([str(DB_POOL), *map(str, args)], env=clean_env(env), cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            preexec_fn=_sigint_as_usual)
    os.close(slave)
    assert proc.stdout is not None
    out_fd = proc.stdout.fileno()
    seen, out = b"", b""
    open_fds = {master, out_fd}
    deadline = started + timeout
    try:
        while open_fds and time.monotonic() < deadline:  # both read, so neither fills up
            ready, _, _ = select.select(list(open_fds), [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    data = b""
                if not data:
                    open_fds.discard(fd)
                elif fd == master:
                    seen += data
                else:
                    out += data
            if not ready and proc.poll() is not None and out_fd not in open_fds:
                break
        if open_fds and time.monotonic() >= deadline:
            raise AssertionError(f"db-pool did not finish within {timeout} s")
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
    finally:
        os.close(master)
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    return code, out.decode(), seen, time.monotonic() - started
