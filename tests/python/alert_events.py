"""An on_alert callback for the alert tests (tests/python/test_alerts.py,
failover/test_replica_lag_alert.py) that keeps each event with the time it
arrived and waits, with a deadline, for the one a test expects."""

from __future__ import annotations

import threading
import time
from typing import Any


class Events:
    """An on_alert callback that keeps each event with its arrival time."""

    def __init__(self) -> None:
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.cv = threading.Condition()

    def __call__(self, event: dict[str, Any]) -> None:
        with self.cv:
            self.got.append((time.monotonic(), event))
            self.cv.notify_all()

    def wait(self, kind: str, rule: str | None = None, timeout: float = 10.0) -> float:
        """The arrival time of the first event of this kind (and rule)."""
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for t, e in self.got:
                    if e["kind"] == kind and (rule is None or e.get("rule") == rule):
                        return t
                left = end - time.monotonic()
                assert left > 0, f"no {kind} event for {rule} within {timeout} s: {self.got}"
                self.cv.wait(left)

    def kinds(self) -> list[tuple[str, Any]]:
        return [(e["kind"], e.get("rule")) for _, e in self.got]
