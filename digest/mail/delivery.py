"""Delivering the outbox: pending rows are claimed one by one and sent over a few
reused SMTP connections in parallel (one per worker thread), optionally rate-limited.

Crash safety: a row is marked sent only after the server accepted the message, in its
own transaction, before that worker sends anything else; a row found 'sending' at start
belonged to a process that died (the caller holds the publish lock) and goes back to
pending. Temporary failures are retried with exponential backoff within the run, up to
``max_attempts``; what is left waits, pending, for a later run. Permanent failures (5xx)
fail the row and count towards the subscriber's bounces.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from digest.config import EmailSection, Settings
from digest.errors import ConfigError, DeliveryError
from digest.mail import outbox
from digest.mail.message import (
    PLACEHOLDER,
    DkimSigner,
    Envelope,
    Letter,
    MessageTemplate,
    PermanentFailure,
    TransientFailure,
    Transport,
    list_id,
    new_message_id,
    sender_domain,
)
from digest.mail.outbox import Job
from digest.mail.ratelimit import RateLimiter, RetryQueue

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int, str], None]  # (stage, done, total, what)
MAX_RETRY_DELAY = 3600.0  # a later run waits at most this long after a temporary failure
MAX_ERRORS = 20  # error lines kept in a report
TEST_TOKEN = "test-send-this-link-unsubscribes-nobody"

T = TypeVar("T")


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0  # temporary failures, left pending for a later run
    skipped: int = 0  # no chosen theme in the digest, or no longer subscribed
    waiting: int = 0  # pending rows not yet due (backoff from an earlier run)
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """How hard and how fast to try; from the [email] settings."""

    connections: int = 1
    rate_limit: float = 0.0
    max_attempts: int = 4
    retry_seconds: float = 1.0
    give_up: timedelta = timedelta(hours=72)
    bounce_threshold: int = 3

    @classmethod
    def of(cls, e: EmailSection, *, parallel: bool = True) -> Policy:
        for key, value, low in (
            ("connections", e.connections, 1),
            ("max_attempts", e.max_attempts, 1),
            ("bounce_threshold", e.bounce_threshold, 1),
            ("rate_limit", e.rate_limit, 0),
            ("retry_seconds", e.retry_seconds, 0),
            ("give_up_hours", e.give_up_hours, 0),
        ):
            if value < low:
                raise ConfigError(f"email.{key} = {value} must be at least {low}")
        return cls(
            connections=e.connections if parallel else 1,
            rate_limit=e.rate_limit,
            max_attempts=e.max_attempts,
            retry_seconds=e.retry_seconds,
            give_up=timedelta(hours=e.give_up_hours),
            bounce_threshold=e.bounce_threshold,
        )


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Mailing:
    """What every message of the list carries, and who sends it."""

    envelope: Envelope
    envelope_from: str  # MAIL FROM
    signer: DkimSigner | None = None


def deliver(
    engine: Engine,
    transports: Callable[[], Transport],
    mailing: Mailing,
    policy: Policy,
    *,
    clock: Callable[[], datetime],
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Send every due pending delivery. The caller holds the publish lock. When `stop`
    is set, the messages in flight finish and the rest stay pending for the next run."""
    with Session(engine) as s:
        released = outbox.release_stale(s)
        skipped = outbox.skip_inactive(s)
        s.commit()
        now = clock()
        jobs = outbox.due_jobs(s, now)
        waiting = outbox.waiting_count(s, now)
        letters = outbox.letters(s, {j.variant_id for j in jobs})
    if released:
        log.warning(
            "%d deliveries were in flight when an earlier run stopped: sending them again "
            "(a copy the server had accepted just before would arrive twice)",
            released,
        )
    if not jobs:
        return DeliveryReport(skipped=skipped, waiting=waiting)
    templates = {
        vid: MessageTemplate(letter, mailing.envelope, when, mailing.signer)
        for vid, (letter, when) in letters.items()
    }
    sender = Sender(engine, transports, templates, policy, mailing.envelope_from, clock, progress)
    sender.stop = stop or threading.Event()
    report = sender.run(jobs)
    log.info(
        "delivery: %d sent, %d failed, %d deferred, %d skipped",
        report.sent,
        report.failed,
        report.deferred,
        report.skipped + skipped,
    )
    return replace(report, skipped=report.skipped + skipped, waiting=waiting)


class Sender:
    """Worker threads, one SMTP connection each, sharing a retry queue and a rate limit."""

    def __init__(
        self,
        engine: Engine,
        transports: Callable[[], Transport],
        templates: dict[int, MessageTemplate],
        policy: Policy,
        envelope_from: str,
        clock: Callable[[], datetime],
        progress: Progress | None,
    ) -> None:
        self.engine, self.transports, self.templates = engine, transports, templates
        self.policy, self.envelope_from, self.clock = policy, envelope_from, clock
        self.progress = progress
        self.limiter = RateLimiter(policy.rate_limit)
        sqlite = engine.dialect.name == "sqlite"  # one writer at a time: no busy waits
        self._write: contextlib.AbstractContextManager[object] = (
            threading.Lock() if sqlite else contextlib.nullcontext()
        )
        self._lock = threading.Lock()
        self.counts = {"sent": 0, "failed": 0, "deferred": 0, "skipped": 0}
        self.errors: list[str] = []
        self.lost: DeliveryError | None = None  # a worker could not reach the server
        self.crash: BaseException | None = None  # a bug: re-raised after the workers stop
        self.total = 0
        self.stop = threading.Event()  # set: take no new message; the rest stay pending

    def run(self, jobs: list[Job]) -> DeliveryReport:
        self.total = len(jobs)
        queue: RetryQueue[tuple[Job, int]] = RetryQueue((job, 0) for job in jobs)
        workers = [
            threading.Thread(target=self._worker, args=(queue,), name=f"deliver-{i}")
            for i in range(max(1, min(self.policy.connections, len(jobs))))
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        left = queue.close()
        if self.crash is not None:
            raise self.crash
        if self.lost is not None and left:
            raise self.lost
        if self.lost is not None:
            log.warning("one SMTP connection failed; the others delivered: %s", self.lost)
        c = self.counts
        return DeliveryReport(
            c["sent"], c["failed"], c["deferred"], c["skipped"], 0, tuple(self._error_lines())
        )

    def _error_lines(self) -> list[str]:
        lines = self.errors[:MAX_ERRORS]
        if len(self.errors) > MAX_ERRORS:
            lines.append(f"... and {len(self.errors) - MAX_ERRORS} more")
        return lines

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._write, self.engine.begin() as conn:
            yield conn

    def _worker(self, queue: RetryQueue[tuple[Job, int]]) -> None:
        try:
            transport = self.transports()
            transport.__enter__()
        except DeliveryError as exc:
            self._lose(exc)
            return
        except BaseException as exc:
            self._fail_run(exc, queue)
            return
        try:
            self._work(transport, queue)
        finally:
            with contextlib.suppress(Exception):
                transport.__exit__(None, None, None)

    def _work(self, transport: Transport, queue: RetryQueue[tuple[Job, int]]) -> None:
        while not self.stop.is_set() and (item := queue.get()) is not None:
            try:
                self._attempt(transport, queue, *item)
            except DeliveryError as exc:  # the server is gone: let the others carry on
                queue.later(item, 0.0)
                self._lose(exc)
                return
            except BaseException as exc:
                self._fail_run(exc, queue)
                return
            finally:
                queue.done()

    def _lose(self, exc: DeliveryError) -> None:
        with self._lock:
            self.lost = self.lost or exc

    def _fail_run(self, exc: BaseException, queue: RetryQueue[tuple[Job, int]]) -> None:
        with self._lock:
            self.crash = self.crash or exc
        queue.close()

    def _attempt(
        self, transport: Transport, queue: RetryQueue[tuple[Job, int]], job: Job, tries: int
    ) -> None:
        self.limiter.wait()
        with self._tx() as s:
            if not outbox.claim(s, job.id, self.clock()):
                outbox.skip_inactive(s)
                self._tally("skipped", job.address)
                return
        try:
            template = self.templates[job.variant_id]
            data = template.render(job.address, job.message_id, job.token, job.name)
            transport.send(data, job.address, sender=self.envelope_from)
        except PermanentFailure as exc:
            self._failed(job, str(exc))
        except TransientFailure as exc:
            self._transient(queue, job, tries + 1, str(exc))
        except BaseException:
            with self._tx() as s:  # not sent: pending again, for this run or the next
                outbox.mark_pending(s, job.id, None, None)
            raise
        else:
            with self._tx() as s:
                outbox.mark_sent(s, job, self.clock())
            self._tally("sent", job.address)

    def _failed(self, job: Job, error: str) -> None:
        threshold = self.policy.bounce_threshold
        with self._tx() as s:
            bounced = outbox.mark_failed(s, job, error, bounce_after=threshold)
        log.info("%s: refused: %s", job.address, error)
        if bounced:
            log.warning("%s refused %d messages in a row: marked bounced", job.address, threshold)
        self._tally("failed", job.address, error)

    def _transient(
        self, queue: RetryQueue[tuple[Job, int]], job: Job, tries: int, error: str
    ) -> None:
        now, p = self.clock(), self.policy
        if now - job.created_at >= p.give_up:
            with self._tx() as s:
                error = f"gave up after {job.attempts + tries} attempts: {error}"
                outbox.mark_failed(s, job, error)
            self._tally("failed", job.address, error)
        elif tries < p.max_attempts:
            delay = backoff(p.retry_seconds, tries)
            with self._tx() as s:
                outbox.mark_pending(s, job.id, error, now + timedelta(seconds=delay))
            queue.later((job, tries), delay)
        else:
            delay = backoff(p.retry_seconds, job.attempts + tries)
            with self._tx() as s:
                outbox.mark_pending(s, job.id, error, now + timedelta(seconds=delay))
            self._tally("deferred", job.address, error)

    def _tally(self, outcome: str, address: str, error: str | None = None) -> None:
        with self._lock:
            self.counts[outcome] += 1
            if error:
                self.errors.append(f"{address}: {error}")
            done = sum(self.counts.values())
            if self.progress:
                self.progress("Delivering", done, self.total, address)


def backoff(base: float, attempts: int) -> float:
    """Seconds to wait after the n-th failed attempt: base, 2 base, 4 base, … (capped)."""
    return float(min(MAX_RETRY_DELAY, base * 2 ** min(max(attempts - 1, 0), 30)))


# --------------------------------------------------------------------------- set-up


def mailing_of(settings: Settings) -> Mailing:
    """The list's envelope from the settings (the DKIM key file is read here, once)."""
    e = settings.email
    address = parseaddr(e.sender)[1]
    signer = None
    if e.dkim_key_file:
        domain = e.dkim_domain or sender_domain(e.sender)
        signer = DkimSigner(e.dkim_selector, domain, settings.path(e.dkim_key_file))
    envelope = Envelope(
        sender=e.sender,
        list_id=list_id(settings.digest.title, e.sender, e.list_id),
        unsubscribe_url=f"{settings.base_url}/unsubscribe/{PLACEHOLDER}",
        unsubscribe_mailto=e.unsubscribe_mailto or address,
    )
    return Mailing(envelope, address, signer)


def send_test(
    transport: Transport, mailing: Mailing, letter: Letter, when: datetime, to: str
) -> None:
    """One copy of a letter to ``to`` (``digest send --to``): its unsubscribe links carry
    a token that belongs to nobody."""
    letter = replace(letter, subject="[test] " + letter.subject)
    template = MessageTemplate(letter, mailing.envelope, when, mailing.signer)
    data = template.render(to, new_message_id(mailing.envelope.sender), TEST_TOKEN)
    with transport:
        try:
            transport.send(data, to, sender=mailing.envelope_from)
        except (PermanentFailure, TransientFailure) as exc:
            raise DeliveryError(f"{to}: not delivered: {exc}") from None
