"""Waiting for an event instead of sleeping: poll a condition until it holds, with a
deadline that only a hang reaches (the CI machine is busy and has 2 cores)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

HANG = 120.0  # seconds: long enough that only a hang reaches it


def wait_for(
    condition: Callable[[], T],
    what: str | Callable[[], str],
    timeout: float = HANG,
    interval: float = 0.05,
) -> T:
    """Call `condition` until it returns something true, and return that; after
    `timeout` seconds, fail naming `what` (a string, or a function giving one, e.g. a
    log to show)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"gave up after {timeout:g} s waiting for {described}")
        time.sleep(interval)
