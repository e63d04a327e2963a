"""The kernel's view of a client socket (/proc/net/tcp, IPv4): the
keepalive timer the drivers set on their connections (docs/timeouts.md,
"Dead peers without a timeout")."""

from __future__ import annotations

import os


def keepalive_seconds(local_port: int) -> float | None:
    """Seconds until the next keepalive probe of the established connection
    whose local end is on ``local_port``; None when it has no keepalive
    timer running (or no such connection)."""
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)  # the header
        for line in f:
            fields = line.split()
            local, state, timer = fields[1], fields[3], fields[5]
            if state != "01" or int(local.split(":")[1], 16) != local_port:
                continue
            kind, when = timer.split(":")
            return int(when, 16) / os.sysconf("SC_CLK_TCK") if kind == "02" else None
    return None
