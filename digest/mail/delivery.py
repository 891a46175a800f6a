"""Delivering the outbox: a worker claims due pending deliveries in batches (FOR UPDATE
SKIP LOCKED on PostgreSQL, a conditional update on SQLite) and sends them over a few
reused SMTP connections in parallel (one per thread), within one rate limit that all
workers draw from together (a bucket in the state: ratelimit.GlobalBucket). Any number
of workers, on any number of machines, can run at once.

Crash safety: a row is marked sent only after the server accepted the message, in its
own transaction, before that thread sends anything else. A worker holds its claimed
rows under a lease that its heartbeat renews; rows of a worker that died go back to
pending once its lease ran out (at once when it ran on this host and its process is
gone), so a crash re-sends at most the message each connection had in flight.

Pauses and clock skew: leases are written and compared by the database's clock only.
Each worker run claims under a random token; marking a row names it, so nothing a
worker no longer holds is changed. A worker knows its lease lasts ``lease`` seconds
(its own monotonic clock) from the moment it began the last renewal that committed in
time; a thread sends only while that holds, and a heartbeat that comes too late, or a
row found taken when marking it sent, ends the run (``forever``: the worker lets go of
what it held and starts over as a new worker). A worker paused past its lease (a VM or
GC pause, SIGSTOP, a long lock wait) thus sends at most the message each connection had
in flight when it stopped.

Stopping: ``stop`` (a first Ctrl-C or SIGTERM, the run's deadline, or the circuit
breaker) takes no new message; those in flight finish; every claimed row not yet sent
goes back to pending. ``abort`` (a second Ctrl-C) cuts the connections at once: rows
whose message was never handed to the server go back to pending, and only a message
handed over whole but not yet answered stays 'sending' until its lease runs out.

Temporary failures are retried with exponential backoff within the run, up to
``max_attempts``; what is left waits, pending, for a later run. Permanent failures (5xx)
of a recipient fail the row and count towards the subscriber's bounces. A refusal of
the envelope sender (MAIL FROM) or of the session is nobody's bounce: the run stops
with the server's answer and the rows stay pending. So does a run whose permanent
failures come ``breaker`` in a row with the same answer (a relay refusing everyone):
those rows stay pending too.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import TypeVar

from digest.config import EmailSection, Settings
from digest.errors import DeliveryError
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
    verp_address,
)
from digest.mail.personal_letters import Personal
from digest.mail.ratelimit import GlobalBucket, RetryQueue
from digest.mail.transport import ConnectionTrouble, SenderRefused, abort, handed
from digest.state import outbox as rows
from digest.state import workers
from digest.state.handles import Database, Tx, dialect
from digest.state.outbox import Job
from digest.text import one_line

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int, str], None]  # (stage, done, total, what)
MAX_RETRY_DELAY = 3600.0  # a later run waits at most this long after a temporary failure
MAX_ERRORS = 20  # error lines kept in a report
TEST_TOKEN = "test-send-this-link-unsubscribes-nobody"
ABORT_GRACE = 2.0  # seconds the threads get to notice their connection was cut

T = TypeVar("T")
Item = tuple[Job, int]  # a job and how often this run tried it (0: claimed, not yet tried)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0  # temporary failures, left pending for a later run
    skipped: int = 0  # no chosen theme in the digest, or no longer subscribed
    waiting: int = 0  # pending rows not yet due (backoff from an earlier run)
    errors: tuple[str, ...] = ()
    stopped: str = ""  # why the run stopped early, in one line; "" when it finished
    aborted: bool = False  # stopped at once (a second signal)


@dataclass(frozen=True)
class Policy:
    """How hard and how fast to try; from the [email] settings."""

    connections: int = 1
    rate_limit: float = 0.0
    max_attempts: int = 4
    retry_seconds: float = 1.0
    give_up: timedelta = timedelta(hours=72)
    bounce_threshold: int = 3
    lease: float = 60.0  # seconds a dead worker's rows stay held
    batch: int = 50  # rows claimed at a time
    max_run: float = 0.0  # seconds a run may last; 0: no limit
    breaker: int = 0  # timeouts/lost connections, or alike 5xx, in a row that stop the run

    @classmethod
    def of(cls, e: EmailSection, *, parallel: bool = True) -> Policy:
        # every value was checked against its declared range when the settings were loaded
        return cls(
            connections=e.connections if parallel else 1,
            rate_limit=e.rate_limit,
            max_attempts=e.max_attempts,
            retry_seconds=e.retry_seconds,
            give_up=timedelta(hours=e.give_up_hours),
            bounce_threshold=e.bounce_threshold,
            lease=e.lease_seconds,
            batch=e.claim_batch,
            max_run=e.max_run_minutes * 60,
            breaker=e.breaker_failures,
        )


@dataclass(frozen=True)
class Mailing:
    """What every message of the list carries, and who sends it."""

    envelope: Envelope
    envelope_from: str  # MAIL FROM
    signer: DkimSigner | None = None
    bounce_address: str = ""  # email.bounce_address: tagged with each message's id (VERP)

    def return_path(self, message_id: str) -> str:
        """The MAIL FROM of one digest message."""
        if not self.bounce_address:
            return self.envelope_from
        return verp_address(self.bounce_address, message_id)


class Abort(threading.Event):
    """A stop-now event that knows whether a delivery run is listening for it (else the
    one who set it must interrupt the work itself)."""

    armed = False


@dataclass(frozen=True)
class Stops:
    """How a run is asked to end: ``soon`` (finish what is in flight) or ``now``."""

    soon: threading.Event
    now: threading.Event

    @classmethod
    def of(cls, soon: threading.Event | None = None, now: threading.Event | None = None) -> Stops:
        return cls(soon or threading.Event(), now or threading.Event())


def deliver(
    engine: Database,
    transports: Callable[[], Transport],
    mailing: Mailing,
    policy: Policy,
    *,
    clock: Callable[[], datetime],
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    abort: threading.Event | None = None,
    drain: bool = False,
    forever: bool = False,
    poll: float = 1.0,
) -> DeliveryReport:
    """Send due pending deliveries as one worker, until none is left to claim. With
    `drain`, also wait for rows other workers hold (taking back a dead one's after its
    lease) until the outbox is empty; with `forever`, keep polling for new rows."""
    sender = Sender(engine, transports, mailing, policy, clock, progress, Stops.of(stop, abort))
    report = sender.run(drain=drain, forever=forever, poll=poll)
    log.info(
        "delivery: %d sent, %d failed, %d deferred, %d skipped",
        report.sent,
        report.failed,
        report.deferred,
        report.skipped,
    )
    return report


class Sender:
    """One worker: threads with one SMTP connection each, sharing a queue fed by batch
    claims, a retry schedule, a rate limit and a circuit breaker."""

    def __init__(
        self,
        engine: Database,
        transports: Callable[[], Transport],
        mailing: Mailing,
        policy: Policy,
        clock: Callable[[], datetime],
        progress: Progress | None,
        stops: Stops,
    ) -> None:
        self.engine, self.transports, self.mailing = engine, transports, mailing
        self.policy, self.clock, self.progress = policy, clock, progress
        self.stop, self.abort = stops.soon, stops.now
        sqlite = dialect(engine) == "sqlite"  # one writer at a time: no busy waits
        self._write: contextlib.AbstractContextManager[object] = (
            threading.Lock() if sqlite else contextlib.nullcontext()
        )
        self.limiter = GlobalBucket(self._tx, policy.rate_limit)
        self._lock = threading.Lock()
        self.counts = {"sent": 0, "failed": 0, "deferred": 0, "skipped": 0}
        self.errors: list[str] = []
        self.lost: DeliveryError | None = None  # a thread could not reach the server
        self.crash: BaseException | None = None  # a bug: re-raised after the threads stop
        self.total = 0
        self.worker_id = 0
        self.stopped = ""  # why the run stops early
        self.in_a_row = 0  # timeouts and lost connections since the last success
        self.templates: dict[int, MessageTemplate] = {}
        self.personal = Personal(engine, mailing.envelope)  # readers who watch or mute
        self.inflight: dict[int, Transport] = {}  # delivery id -> its connection
        self.open: list[Transport] = []
        self.token = secrets.token_hex(16)  # this run's claim token (the fence)
        self.lease_until = 0.0  # time.monotonic() until which the rows held are ours
        self.streak: list[tuple[Job, str]] = []  # alike 5xx in a row, not yet recorded
        self.alike = False  # the breaker for alike 5xx tripped: refusals stay pending
        self.lapsed = threading.Event()  # the lease ran out: send nothing more
        self._halt = threading.Event()  # the heartbeat's end
        self._beat: threading.Thread | None = None
        self.deadline = time.monotonic() + policy.max_run if policy.max_run else None

    # the run ---------------------------------------------------------------

    def run(
        self, *, drain: bool = False, forever: bool = False, poll: float = 1.0
    ) -> DeliveryReport:
        skipped, waiting = self._start()
        if isinstance(self.abort, Abort):
            self.abort.armed = True
        self._beating()
        handed_over: set[int] = set()
        try:
            while True:
                handed_over = self._pass()
                if self.stop.is_set() or self.abort.is_set() or self.crash or self.lost:
                    break
                if self.lapsed.is_set() and not forever:
                    self._halt_run(
                        f"stopped: this worker's lease on its deliveries ran out (no renewal "
                        f"for email.lease_seconds = {self.policy.lease:g}: the process was "
                        "paused or stalled); other workers take them over"
                    )
                    break
                if self.lapsed.is_set():
                    skipped += self._rejoin(handed_over)
                    continue
                if not forever and not (drain and self._others_hold_rows()):
                    break
                self._sleep(poll)
                if self.stop.is_set() or self.abort.is_set():
                    break
                with self._tx() as conn:
                    skipped += rows.skip_inactive(conn)
        finally:
            self._halt.set()
            left = self._finish(handed_over)
            if isinstance(self.abort, Abort):
                self.abort.armed = False
        if self.crash is not None:
            raise self.crash
        if self.lost is not None and left:
            raise self.lost
        if self.lost is not None:
            log.warning("one SMTP connection failed; the others delivered: %s", self.lost)
        c = self.counts
        stopped = self.stopped
        if stopped and left:
            stopped += f"; {left} message(s) left pending for the next run"
        return DeliveryReport(
            c["sent"],
            c["failed"],
            c["deferred"],
            c["skipped"] + skipped,
            waiting,
            tuple(self._error_lines()),
            stopped,
            self.abort.is_set(),
        )

    def _start(self) -> tuple[int, int]:
        """Register, take back what dead workers held, skip rows of readers who left."""
        now, began = self.clock(), time.monotonic()
        with self._tx() as conn:
            released = workers.reap(conn, self.policy.lease)
            self.worker_id = workers.register(conn)
            skipped = rows.skip_inactive(conn)
            waiting = rows.waiting_count(conn, now)
            self.total = rows.pending_count(conn)
        self.lease_until = began + self.policy.lease
        self.lapsed.clear()
        if released:
            log.warning(
                "%d deliveries were in flight when an earlier run stopped: sending them "
                "again (a copy the server had accepted just before would arrive twice)",
                released,
            )
        return skipped, waiting

    def _beating(self) -> None:
        self._halt.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        self._beat.start()

    def _rejoin(self, handed_over: set[int]) -> int:
        """The lease ran out (the process was paused or stalled): let go of what is
        still held, and start over as a new worker, under a new claim token."""
        log.warning(
            "this worker's lease on its deliveries ran out (no renewal for "
            "email.lease_seconds = %g: the process was paused or stalled); other workers "
            "take them over; starting over as a new worker",
            self.policy.lease,
        )
        self._halt.set()
        if self._beat is not None:
            self._beat.join()
        self._finish(handed_over)
        self.token = secrets.token_hex(16)
        skipped = self._start()[0]
        self._beating()
        return skipped

    def _finish(self, handed_over: set[int]) -> int:
        """Rows still claimed go back to pending, but for a message handed over whole
        whose answer never came (an abort): it stays 'sending' until its lease ends."""
        self._settle()
        with self._tx() as conn:
            left = rows.release_held(conn, self.worker_id, self.token, handed_over)
            workers.unregister(conn, self.worker_id)
        return left

    def _pass(self) -> set[int]:
        """Claim and send until nothing due is left to claim (or a stop); returns the
        rows handed to a server whose answer never came (only when aborted)."""
        queue: RetryQueue[Item] = RetryQueue([], refill=self._claim)
        threads = [
            threading.Thread(target=self._worker, args=(queue,), name=f"deliver-{i}", daemon=True)
            for i in range(max(1, self.policy.connections))
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            alive = [t for t in threads if t.is_alive()]
            if alive:
                alive[0].join(0.1)
            if self.deadline is not None and time.monotonic() > self.deadline:
                self._halt_run(
                    f"stopped after email.max_run_minutes = {self.policy.max_run / 60:g}"
                )
            if self.abort.is_set():
                return self._cut(queue, threads)
            if self._stopping():
                queue.close()
        queue.close()
        return set()

    def _cut(self, queue: RetryQueue[Item], threads: list[threading.Thread]) -> set[int]:
        """Stop now: cut every connection; what was handed over whole stays held."""
        self.stopped = self.stopped or "stopped at once (second interrupt)"
        queue.close()
        with self._lock:
            held = {jid for jid, t in self.inflight.items() if handed(t)}
            for conn in self.open:
                abort(conn)
        end = time.monotonic() + ABORT_GRACE
        for t in threads:
            t.join(max(0.0, end - time.monotonic()))
        return held

    def _stopping(self) -> bool:
        """Take no new message: asked to stop, or the lease ran out."""
        return self.stop.is_set() or self.abort.is_set() or self.lapsed.is_set()

    def _halt_run(self, why: str) -> None:
        with self._lock:
            self.stopped = self.stopped or why
        self.stop.set()

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (self.stop.is_set() or self.abort.is_set()):
            self.stop.wait(min(0.1, end - time.monotonic()))

    def _others_hold_rows(self) -> bool:
        with self._tx() as conn:
            workers.reap(conn, self.policy.lease)
            return rows.unfinished(conn, self.clock()) > 0

    def _heartbeat(self) -> None:
        """Renew the lease every quarter of it. A renewal counts only when it began and
        committed while the lease still held (by this host's monotonic clock, which a
        pause does not stop): after that, rows may have gone to other workers."""
        every = max(0.2, self.policy.lease / 4)
        while not self._halt.wait(every):
            began = time.monotonic()
            if not self._holding(began):
                return
            try:
                with self._lock:
                    counts = dict(self.counts)
                with self._tx() as conn:
                    workers.beat(conn, self.worker_id, self.token, counts)
                    released = workers.reap(conn, self.policy.lease)
                if not self._holding(time.monotonic()):
                    return
                self.lease_until = began + self.policy.lease
                if released:
                    log.warning(
                        "%d deliveries held by a worker that stopped go back to pending",
                        released,
                    )
            except Exception as exc:  # the next beat tries again; the lease is long
                log.warning("worker heartbeat failed: %s", exc)

    def _claim(self) -> list[Item]:
        if self._stopping():
            return []
        with self._tx() as conn:
            jobs = rows.claim_batch(
                conn, self.worker_id, self.clock(), self.policy.batch, self.token
            )
        return [(job, 0) for job in jobs]

    def _error_lines(self) -> list[str]:
        lines = self.errors[:MAX_ERRORS]
        if len(self.errors) > MAX_ERRORS:
            lines.append(f"... and {len(self.errors) - MAX_ERRORS} more")
        return lines

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Tx]:
        with self._write, self.engine.begin() as conn:
            yield conn

    def _template(self, variant_id: int) -> MessageTemplate:
        with self._lock:
            if variant_id in self.templates:
                return self.templates[variant_id]
        with self.engine.connect() as conn:
            letter, when = outbox.letters(conn, {variant_id})[variant_id]
        m = self.mailing
        template = MessageTemplate(letter, m.envelope, when, m.signer)
        with self._lock:
            return self.templates.setdefault(variant_id, template)

    # one thread --------------------------------------------------------------

    def _worker(self, queue: RetryQueue[Item]) -> None:
        transport: Transport | None = None
        try:
            while not self._stopping() and (item := queue.get()) is not None:
                try:
                    if transport is None:
                        transport = self._open(queue, item)
                        if transport is None:
                            return
                    self._attempt(transport, queue, *item)
                except DeliveryError as exc:  # the server is gone: let the others carry on
                    queue.later(item, 0.0)
                    self._lose(exc)
                    return
                finally:
                    queue.done()
        except BaseException as exc:
            if not self.abort.is_set():
                self._fail_run(exc, queue)
        finally:
            if transport is not None:
                with contextlib.suppress(Exception):
                    transport.__exit__(None, None, None)

    def _open(self, queue: RetryQueue[Item], item: Item) -> Transport | None:
        transport = self.transports()
        try:
            transport.__enter__()
        except DeliveryError as exc:
            queue.later(item, 0.0)
            self._lose(exc)
            return None
        with self._lock:
            self.open.append(transport)
        return transport

    def _lose(self, exc: DeliveryError) -> None:
        with self._lock:
            self.lost = self.lost or exc
        self._trouble()

    def _trouble(self) -> None:
        """A timeout or a lost connection: enough of them in a row, across connections,
        and the server is stalled — stop the run rather than wait out every message."""
        with self._lock:
            self.in_a_row += 1
            tripped = self.policy.breaker and self.in_a_row >= self.policy.breaker
        if tripped:
            self._halt_run(
                f"stopped: the SMTP server timed out or dropped the connection "
                f"{self.in_a_row} times in a row (email.breaker_failures = "
                f"{self.policy.breaker})"
            )

    def _holding(self, now: float) -> bool:
        """Whether this worker's lease still holds; when not, nothing more is sent."""
        if now < self.lease_until:
            return True
        self.lapsed.set()
        return False

    def _fail_run(self, exc: BaseException, queue: RetryQueue[Item]) -> None:
        with self._lock:
            self.crash = self.crash or exc
        queue.close()

    def _attempt(self, transport: Transport, queue: RetryQueue[Item], job: Job, tries: int) -> None:
        self.limiter.wait(self.stop)
        if tries:  # a retry in this run: the row went back to pending, claim it again
            with self._tx() as s:
                if not rows.claim(s, job.id, self.worker_id, self.token):
                    self._tally("skipped", job.address)
                    return
        if self._stopping():
            return  # claimed, never handed over: released when the run ends
        with self._lock:
            self.inflight[job.id] = transport
        sender = self.mailing.return_path(job.message_id)
        try:
            data = self.personal.message(self._template(job.variant_id), job)
            if not self._holding(time.monotonic()):
                return  # the row may be another worker's by now: not sent from here
            transport.send(data, job.address, sender=sender)
        except SenderRefused as exc:  # not this reader's bounce: the row stays pending
            self._halt_run(
                f"stopped: the SMTP server refused the sender <{sender}> (MAIL FROM): {exc}"
            )
        except PermanentFailure as exc:
            self._refused(job, str(exc))
        except TransientFailure as exc:
            if self.abort.is_set():
                return
            if isinstance(exc, ConnectionTrouble):
                self._trouble()
            else:
                self._settled()
            self._transient(queue, job, tries + 1, str(exc))
        except BaseException:
            if not self.abort.is_set():
                with self._tx() as s:  # not sent: pending again, for this run or the next
                    rows.mark_pending(s, job, None, None)
            raise
        else:
            self._settled()
            with self._tx() as s:
                mine = rows.mark_sent(s, job, self.clock())
            self._tally("sent", job.address)
            if not mine:
                log.warning("%s: the row was taken over by another worker", job.address)
                self.lease_until = 0.0
                self._holding(time.monotonic())
        finally:
            with self._lock:
                self.inflight.pop(job.id, None)

    def _settled(self) -> None:
        """An answer that was not a refusal: the breakers start over."""
        with self._lock:
            self.in_a_row = 0
            if not self.streak:
                return
        self._settle()

    def _settle(self) -> None:
        """The refusals held back were each their recipient's: recorded as such."""
        with self._lock:
            streak, self.streak = self.streak, []
        for job, error in streak:
            self._failed(job, error)

    def _refused(self, job: Job, error: str) -> None:
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
            self._failed(held, why)
        if tripped:
            self._halt_run(
                f"stopped: the SMTP server refused {breaker} messages in a row with the same "
                f"answer ({one_line(error)}); not counted as bounces "
                f"(email.breaker_failures = {breaker})"
            )

    def _failed(self, job: Job, error: str) -> None:
        threshold = self.policy.bounce_threshold
        with self._tx() as s:
            bounced = rows.mark_failed(s, job, error, bounce_after=threshold)
        log.info("%s: refused: %s", job.address, error)
        if bounced:
            log.warning("%s refused %d messages in a row: marked bounced", job.address, threshold)
        self._tally("failed", job.address, error)

    def _transient(self, queue: RetryQueue[Item], job: Job, tries: int, error: str) -> None:
        now, p = self.clock(), self.policy
        if now - job.created_at >= p.give_up:
            with self._tx() as s:
                error = f"gave up after {job.attempts + tries} attempts: {error}"
                rows.mark_failed(s, job, error)
            self._tally("failed", job.address, error)
        elif tries < p.max_attempts and not self.stop.is_set():
            delay = backoff(p.retry_seconds, tries)
            with self._tx() as s:
                rows.mark_pending(s, job, error, now + timedelta(seconds=delay))
            queue.later((job, tries), delay)
        else:
            delay = backoff(p.retry_seconds, job.attempts + tries)
            with self._tx() as s:
                rows.mark_pending(s, job, error, now + timedelta(seconds=delay))
            self._tally("deferred", job.address, error)

    def _tally(self, outcome: str, address: str, error: str | None = None) -> None:
        with self._lock:
            self.counts[outcome] += 1
            if error:
                self.errors.append(f"{address}: {error}")
            done = sum(self.counts.values())
            if self.progress:
                self.progress("Delivering", done, max(self.total, done), address)


def _shape(error: str, address: str) -> str:
    """An answer with its recipient's address taken out: what alike refusals share."""
    return _ADDRESSES.sub("", one_line(error).replace(address, "")).lower()


_ADDRESSES = re.compile(r"<[^<>\s]*>|\S+@\S+")


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
    return Mailing(envelope, address, signer, bounce_address=e.bounce_address)


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
