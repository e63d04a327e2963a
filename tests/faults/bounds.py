"""What the fault tests assert about time: a call fails with the expected
exception within a bound, and the time it took is reported (``pytest -s``
prints lines "fault: ...", the figures docs/timeouts.md quotes)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable

import pytest

#: The slack the rules allow past a deadline (docs/timeouts.md).
SLACK = 1.0


def report(name: str, seconds: float) -> None:
    print(f"fault: {name}: {seconds:.2f} s")


async def fails_within(
    bound: float, expected: type[BaseException], call: Awaitable[Any]
) -> tuple[BaseException, float]:
    """Awaits `call`, which must raise `expected` within `bound` seconds;
    returns the exception and the time it took."""
    start = time.monotonic()
    with pytest.raises(expected) as info:
        await asyncio.wait_for(call, bound + 10)  # the test itself never hangs
    took = time.monotonic() - start
    assert took <= bound, f"{expected.__name__} after {took:.2f} s, bound {bound} s"
    return info.value, took
