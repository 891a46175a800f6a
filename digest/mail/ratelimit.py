"""Pacing work across threads: a queue whose items can come back after a delay, and a
rate limit shared by every worker."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class RetryQueue(Generic[T]):
    """Items to work on, some only after a delay. ``get`` blocks until one is due and
    returns None once nothing is queued and nothing is being worked on (a worked-on
    item may come back with ``later``, which must be called before ``done``).

    ``refill``, when given, is asked for more items whenever none is due; once it
    returns none, it is not asked again."""

    def __init__(self, items: Iterable[T], refill: Callable[[], list[T]] | None = None) -> None:
        self._seq = itertools.count()
        self._heap = [(0.0, next(self._seq), item) for item in items]  # already a heap
        self._busy = 0
        self._closed = False
        self._cond = threading.Condition()
        self._refill = refill

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


class RateLimiter:
    """A token bucket of one token, refilled ``rate`` times a second, shared by the
    threads of a process; a rate of 0 means no limit. Several processes share a rate by
    each taking its part (``set_rate``, from the count of live workers)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def set_rate(self, rate: float) -> None:
        with self._lock:
            interval = 1.0 / rate if rate > 0 else 0.0
            if interval != self.interval:  # the next slot follows the new pace
                self._next = min(self._next, time.monotonic() + interval)
                self.interval = interval

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)
