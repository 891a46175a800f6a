"""The rate limit that every delivery worker, on every host, draws from together (a
bucket kept in the state)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from digest.state import ratebucket
from digest.state.handles import Tx

T = TypeVar("T")
MICRO = 1_000_000
BLOCK_SECONDS = 0.25  # a worker reserves the slots of about this long at once
HORIZON_SECONDS, HORIZON_SLOTS = 60, 1000  # see GlobalBucket.horizon


@dataclass(frozen=True)
class Block:
    """Slots reserved at once: ``count`` slots ``interval`` apart from ``start``, in
    microseconds since the epoch by the database's clock, which read ``db_now``."""

    start: int
    count: int
    interval: int
    db_now: int


class GlobalBucket:
    """``rate`` sends a second over all workers together, on any number of hosts: the
    next free slot lives in the state (table ``rate_buckets``), and a worker takes the
    next ``k`` slots (about BLOCK_SECONDS of the rate, at least one) in one atomic
    statement, ``next_slot = max(next_slot, db now) + k × interval``, under PostgreSQL's
    row lock or SQLite's write lock. No two slots handed out, by any worker, are closer
    than the interval. "Now" is the database's clock, so hosts whose clocks differ agree;
    each slot becomes a local monotonic deadline (local now + slot − db now), which can
    only make a send later, never earlier.

    The threads of a process share the block (one database round trip per block, not
    per message). A slot a thread reaches late is still used if it is late by less than
    a block's span, else dropped: sends never come before their slot, so the n-th send
    comes at least n-1 intervals after the first slot, and a window of W seconds holds at
    most rate × (W + span) + 1 sends even when workers lag. Slots of a worker that
    stops, or runs out of work, are simply lost: that only lowers the rate for the
    moment. A rate of 0 means no limit and touches no table. Should the database's
    clock step back by more than any worker could be ahead (``horizon``: a minute, or
    1,000 intervals), the bucket starts over from the new now rather than hold every
    worker back by the step.

    ``begin`` opens a write transaction (on SQLite one that takes the write lock up
    front: ``db.for_writes(engine).begin``, or the delivery worker's own)."""

    def __init__(
        self,
        begin: Callable[[], AbstractContextManager[Tx]],
        rate: float,
        *,
        name: str = "email",
        block_seconds: float = BLOCK_SECONDS,
    ) -> None:
        self._begin = begin
        self.name = name
        self.rate = rate
        # whole microseconds, rounded up: the rate is never exceeded by rounding
        self.interval = math.ceil(MICRO / rate) if rate > 0 else 0
        self.k = max(1, int(rate * block_seconds))
        self._late = self.k * self.interval / MICRO  # seconds a slot may be reached late
        # the furthest ahead of the database's now the next slot can legitimately be
        # (every worker holding a block ahead of it); beyond, the clock stepped back
        self.horizon = max(HORIZON_SECONDS * MICRO, HORIZON_SLOTS * self.interval)
        self._block: Block | None = None  # the slots this process holds
        self._used = 0  # how many of them were handed out (or dropped)
        self._local = 0.0  # time.monotonic() when the block came back
        self._lock = threading.Lock()
        self.reservations = 0  # blocks reserved (database round trips)
        self.dropped = 0  # slots reached too late to use

    def wait(self, stop: threading.Event | None = None) -> int | None:
        """Block until this thread's next slot comes (or `stop` is set); returns the
        slot (µs since the epoch, database clock), or None without a limit."""
        if not self.interval:
            return None
        with self._lock:
            while (slot := self._next_slot(time.monotonic())) is None:
                self._block, self._used = self.reserve(), 0
                self._local = time.monotonic()  # read after the database's clock: errs late
            deadline = self._deadline(slot)
        delay = deadline - time.monotonic()
        if delay > 0:
            if stop is None:
                time.sleep(delay)
            else:
                stop.wait(delay)
        return slot

    def reserve(self) -> Block:
        """Take the next block of k slots from the shared bucket: one statement."""
        if not self.interval:
            raise ValueError("a rate of 0 has no bucket")
        span = self.k * self.interval
        with self._begin() as tx:
            next_slot, db_now = ratebucket.reserve(tx, self.name, span, self.horizon)
        self.reservations += 1
        return Block(next_slot - span, self.k, self.interval, db_now)

    def _next_slot(self, now: float) -> int | None:
        """The next slot of the block held, skipping those too late to use."""
        b = self._block
        if b is None:
            return None
        if self._used < b.count and self._deadline(b.start + self._used * b.interval) < (
            now - self._late
        ):  # behind: jump to the first slot within reach
            behind = (now - self._late - self._local) * MICRO + b.db_now - b.start
            reach = min(b.count, max(self._used + 1, math.ceil(behind / b.interval)))
            self.dropped += reach - self._used
            self._used = reach
        if self._used >= b.count:
            return None
        self._used += 1
        return b.start + (self._used - 1) * b.interval

    def _deadline(self, slot: int) -> float:
        """A slot as a local monotonic time: local now + (slot - db now)."""
        assert self._block is not None
        return self._local + (slot - self._block.db_now) / MICRO
