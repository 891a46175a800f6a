"""A queue of work whose items can come back after a delay (a retry within the run), fed
by a refill (the delivery engine's batch claims)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class RetryQueue(Generic[T]):
    """Items to work on, some only after a delay. ``get`` blocks until one is due and
    returns None once nothing is queued and nothing is being worked on (a worked-on
    item may come back with ``later``, which must be called before ``done``).

    ``refill`` is asked for more items whenever none is due; once it returns none, it is
    not asked again."""

    def __init__(self, refill: Callable[[], list[T]]) -> None:
        self._seq = itertools.count()
        self._heap: list[tuple[float, int, T]] = []
        self._busy = 0
        self._closed = False
        self._cond = threading.Condition()
        self._refill: Callable[[], list[T]] | None = refill

    def get(self) -> T | None:
        with self._cond:
            while not self._closed:
                due = self._heap and self._heap[0][0] <= time.monotonic()
                if not due and self._refill is not None:
                    more = self._refill()
                    if not more:
                        self._refill = None
                    for item in more:
                        heapq.heappush(self._heap, (0.0, next(self._seq), item))
                    continue
                if self._heap:
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        self._busy += 1
                        return heapq.heappop(self._heap)[2]
                    self._cond.wait(wait)
                elif self._busy == 0:
                    return None
                else:
                    self._cond.wait()
            return None

    def later(self, item: T, delay: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), item))
            self._cond.notify()

    def done(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def close(self) -> list[T]:
        """Stop handing out items; returns those never handed out."""
        with self._cond:
            self._closed = True
            left = [item for _, _, item in self._heap]
            self._heap.clear()
            self._cond.notify_all()
            return left
