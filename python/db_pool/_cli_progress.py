"""The progress line of long reads and loads: rows and bytes so far, time,
rate (and a bar when the total is known), redrawn in place on stderr.

It shows only when stderr is a terminal (a pipe or a file never gets
carriage returns) and only once the work has run for SHOW_AFTER seconds,
so quick commands print nothing; it is erased when the work ends.
"""

from __future__ import annotations

import shutil
import sys
import time
from types import TracebackType
from typing import TextIO

#: A read or load shorter than this shows no progress (seconds).
SHOW_AFTER = 0.5
#: Least time between two redraws (seconds).
REDRAW_EVERY = 0.1
_BAR_WIDTH = 20


def human_bytes(n: float) -> str:
    """1536 -> "1.5 KiB"."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # not reached


class Progress:
    """Counts rows and bytes; draws ``label: ...`` on a terminal.

    >>> with Progress("query") as bar:
    ...     for batch in batches:
    ...         bar.add(batch.height, batch.estimated_size())
    """

    def __init__(self, label: str, *, total_rows: int | None = None,
                 stream: TextIO | None = None, enabled: bool | None = None,
                 show_after: float = SHOW_AFTER) -> None:
        self.label = label
        self.total_rows = total_rows
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.show_after = show_after
        self.rows = 0
        self.bytes = 0.0
        self.started = time.monotonic()
        self.shown = False
        self._drawn_at = 0.0

    def add(self, rows: int, nbytes: float) -> None:
        """Counts one batch and redraws if it is time to."""
        self.rows += rows
        self.bytes += nbytes
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < self.show_after:
            return
        if self.shown and now - self._drawn_at < REDRAW_EVERY:
            return
        self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The progress as one line of text."""
        elapsed = max((time.monotonic() if now is None else now) - self.started, 1e-9)
        parts: list[str] = []
        if self.total_rows:
            done = min(self.rows / self.total_rows, 1.0)
            filled = int(done * _BAR_WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done:4.0%}")
            parts.append(f"{self.rows:,}/{self.total_rows:,} rows")
        else:
            parts.append(f"{self.rows:,} rows")
        parts += [human_bytes(self.bytes), f"{elapsed:.1f} s", f"{self.rows / elapsed:,.0f} rows/s"]
        return f"{self.label}: " + "  ".join(parts)

    def _draw(self, now: float) -> None:
        width = shutil.get_terminal_size((80, 24)).columns
        text = self.line(now)[: max(width - 1, 10)]
        try:
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()
        except OSError:  # the terminal went away: the work goes on without it
            self.enabled = False
            return
        self.shown = True
        self._drawn_at = now

    def finish(self) -> None:
        """Erases the line, if one was drawn."""
        if self.shown:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except OSError:
                pass
            self.shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.finish()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
