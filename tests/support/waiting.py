"""Waiting for an event instead of sleeping: poll a condition until it holds, with a
deadline that only a hang reaches (the CI machine is busy and has 2 cores)."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
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


class Hung(AssertionError):
    """The work under `hang_deadline` ran past a deadline only a hang reaches."""


@contextlib.contextmanager
def hang_deadline(what: str, timeout: float = HANG) -> Iterator[None]:
    """Fail (``Hung``) if the block is still running after `timeout` seconds: a SIGALRM
    timer in the main thread, which also interrupts a long regular-expression match (the
    `re` engine checks for signals). Not a speed bound: only a hang reaches it."""

    def expired(signum: int, frame: object) -> None:
        raise Hung(f"gave up after {timeout:g} s waiting for {what}")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
