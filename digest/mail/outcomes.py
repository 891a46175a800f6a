"""The outcome bookkeeping of a delivery run: what each answer of the server does to its
row (sent, failed and counted as a bounce, pending again for a retry in this run or a
later one), the counts and error lines of the report, and the two circuit breakers
(timeouts or lost connections in a row; alike permanent refusals in a row, held back so
that a relay refusing everyone is nobody's bounce)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from digest.mail.delivery import MAX_ERRORS, Policy, Progress, _shape, backoff
from digest.mail.retryqueue import RetryQueue
from digest.state import claims
from digest.state.claims import Job
from digest.state.handles import Tx
from digest.text import one_line

log = logging.getLogger(__name__)

Item = tuple[Job, int]  # a job and how often this run tried it (0: claimed, not yet tried)
Begin = Callable[[], contextlib.AbstractContextManager[Tx]]


class Outcomes:
    """The answers of one run, recorded: shared by its sender threads (under a lock)."""

    def __init__(
        self,
        begin: Begin,
        policy: Policy,
        clock: Callable[[], datetime],
        progress: Progress | None,
        halt: Callable[[str], None],
        stop: threading.Event,
    ) -> None:
        self._begin, self.policy, self.clock, self.progress = begin, policy, clock, progress
        self._halt, self._stop = halt, stop
        self._lock = threading.Lock()
        self.counts = {"sent": 0, "failed": 0, "deferred": 0, "skipped": 0}
        self.errors: list[str] = []
        self.total = 0  # rows to deliver, for the progress line
        self.in_a_row = 0  # timeouts and lost connections since the last success
        self.streak: list[tuple[Job, str]] = []  # alike 5xx in a row, not yet recorded
        self.alike = False  # the breaker for alike 5xx tripped: refusals stay pending

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def error_lines(self) -> tuple[str, ...]:
        lines = self.errors[:MAX_ERRORS]
        if len(self.errors) > MAX_ERRORS:
            lines.append(f"... and {len(self.errors) - MAX_ERRORS} more")
        return tuple(lines)

    def trouble(self) -> None:
        """A timeout or a lost connection: enough of them in a row, across connections,
        and the server is stalled — stop the run rather than wait out every message."""
        with self._lock:
            self.in_a_row += 1
            tripped = self.policy.breaker and self.in_a_row >= self.policy.breaker
        if tripped:
            self._halt(
                f"stopped: the SMTP server timed out or dropped the connection "
                f"{self.in_a_row} times in a row (email.breaker_failures = "
                f"{self.policy.breaker})"
            )

    def settled(self) -> None:
        """An answer that was not a refusal: the breakers start over."""
        with self._lock:
            self.in_a_row = 0
            if not self.streak:
                return
        self.settle()

    def settle(self) -> None:
        """The refusals held back were each their recipient's: recorded as such."""
        with self._lock:
            streak, self.streak = self.streak, []
        for job, error in streak:
            self.failed(job, error)

    def refused(self, job: Job, error: str) -> None:
        """A permanent refusal. It is held back while those before it in a row had the
        same answer: `breaker` of them, and the run stops with their rows pending (a
        relay refusing everyone is not every reader's bounce)."""
        breaker, shape = self.policy.breaker, _shape(error, job.address)
        with self._lock:
            self.in_a_row = 0
            if self.alike:
                return  # the run is stopping: left 'sending', released, pending
            earlier: list[tuple[Job, str]] = []
            if self.streak and _shape(self.streak[0][1], self.streak[0][0].address) != shape:
                earlier, self.streak = self.streak, []
            self.streak.append((job, error))
            tripped = self.alike = bool(breaker) and len(self.streak) >= breaker
            if tripped:
                self.streak = []  # left 'sending': released, pending, when the run ends
            elif not breaker:
                earlier, self.streak = earlier + self.streak, []
        for held, why in earlier:
            self.failed(held, why)
        if tripped:
            self._halt(
                f"stopped: the SMTP server refused {breaker} messages in a row with the same "
                f"answer ({one_line(error)}); not counted as bounces "
                f"(email.breaker_failures = {breaker})"
            )

    def failed(self, job: Job, error: str) -> None:
        threshold = self.policy.bounce_threshold
        with self._begin() as tx:
            bounced = claims.mark_failed(tx, job, error, bounce_after=threshold)
        log.info("%s: refused: %s", job.address, error)
        if bounced:
            log.warning("%s refused %d messages in a row: marked bounced", job.address, threshold)
        self.tally("failed", job.address, error)

    def transient(self, queue: RetryQueue[Item], job: Job, tries: int, error: str) -> None:
        """A temporary failure: retried in this run after a backoff, or left pending for
        a later run, or failed for good once the message is too old."""
        now, p = self.clock(), self.policy
        if now - job.created_at >= p.give_up:
            with self._begin() as tx:
                error = f"gave up after {job.attempts + tries} attempts: {error}"
                claims.mark_failed(tx, job, error)
            self.tally("failed", job.address, error)
        elif tries < p.max_attempts and not self._stop.is_set():
            delay = backoff(p.retry_seconds, tries)
            with self._begin() as tx:
                claims.mark_pending(tx, job, error, now + timedelta(seconds=delay))
            queue.later((job, tries), delay)
        else:
            delay = backoff(p.retry_seconds, job.attempts + tries)
            with self._begin() as tx:
                claims.mark_pending(tx, job, error, now + timedelta(seconds=delay))
            self.tally("deferred", job.address, error)

    def tally(self, outcome: str, address: str, error: str | None = None, n: int = 1) -> None:
        with self._lock:
            self.counts[outcome] += n
            if error:
                self.errors.append(f"{address}: {error}")
            done = sum(self.counts.values())
            if self.progress:
                self.progress("Delivering", done, max(self.total, done), address)
