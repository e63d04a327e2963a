"""The kernel's view of a client socket (/proc/net/tcp, IPv4): the
keepalive timer the drivers set on their connections (docs/timeouts.md,
"Dead peers without a timeout")."""

from __future__ import annotations

import os


def _established() -> list[tuple[int, int, float | None]]:
    """(local port, remote port, seconds to the next keepalive probe or
    None) of every established IPv4 connection."""
    out = []
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)  # the header
        for line in f:
            fields = line.split()
            local, remote, state, timer = fields[1], fields[2], fields[3], fields[5]
            if state != "01":
                continue
            kind, when = timer.split(":")
            seconds = int(when, 16) / os.sysconf("SC_CLK_TCK") if kind == "02" else None
            out.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16), seconds))
    return out


def keepalive_seconds(local_port: int) -> float | None:
    """Seconds until the next keepalive probe of the established connection
    whose local end is on ``local_port``; None when it has no keepalive
    timer running (or no such connection)."""
    return next((s for local, _, s in _established() if local == local_port), None)


def keepalives_towards(server_port: int) -> list[float | None]:
    """keepalive_seconds of every established connection to ``server_port``
    (the client ends: for a port only the pool connects to)."""
    return [s for _, remote, s in _established() if remote == server_port]
