"""The delivery engine: one worker's run over the outbox (delivery.py says how a run
behaves). A few sender threads, one SMTP connection each, share a queue fed by batch
claims; a heartbeat thread renews the worker's lease; the answers are recorded by
outcomes.py."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from digest.errors import DeliveryError
from digest.mail import outbox
from digest.mail.delivery import Abort, DeliveryReport, Mailing, Policy, Progress, Stops
from digest.mail.lease import Lease
from digest.mail.message import MessageTemplate, PermanentFailure, TransientFailure, Transport
from digest.mail.outcomes import Item, Outcomes
from digest.mail.personal_letters import Personal
from digest.mail.ratelimit import GlobalBucket
from digest.mail.retryqueue import RetryQueue
from digest.mail.transport import ConnectionTrouble, SenderRefused, abort, handed
from digest.state import claims, workers
from digest.state import outbox as rows
from digest.state.claims import Job
from digest.state.handles import Database, Tx, dialect, end_if_paused

log = logging.getLogger(__name__)

ABORT_GRACE = 2.0  # seconds the sender threads get to notice their connection was cut


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
    stops = Stops.of(stop, abort)
    run = DeliveryEngine(engine, transports, mailing, policy, clock, progress, stops)
    report = run.run(drain=drain, forever=forever, poll=poll)
    log.info(
        "delivery: %d sent, %d failed, %d deferred, %d skipped",
        report.sent,
        report.failed,
        report.deferred,
        report.skipped,
    )
    return report


class DeliveryEngine:
    """One worker: sender threads with one SMTP connection each, sharing a queue fed by
    batch claims, a retry schedule, a rate limit and the circuit breakers."""

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
        self.personal = Personal(engine, mailing.envelope)  # readers who watch or mute
        self.policy, self.clock = policy, clock
        self.stop, self.abort = stops.soon, stops.now
        sqlite = dialect(engine) == "sqlite"  # one writer at a time: no busy waits
        self._write: contextlib.AbstractContextManager[object] = (
            threading.Lock() if sqlite else contextlib.nullcontext()
        )
        self.limiter = GlobalBucket(self._tx, policy.rate_limit)
        self.outcomes = Outcomes(self._tx, policy, clock, progress, self._halt_run, self.stop)
        self._lock = threading.Lock()
        self.lost: DeliveryError | None = None  # a sender thread could not reach the server
        self.crash: BaseException | None = None  # a bug: re-raised after the threads stop
        self.stopped = ""  # why the run stops early
        self.templates: dict[int, MessageTemplate] = {}
        self.inflight: dict[int, Transport] = {}  # delivery id -> its connection
        self.open: list[Transport] = []
        self.lease = Lease(self._tx, policy.lease, self.outcomes.snapshot)
        self.deadline = time.monotonic() + policy.max_run if policy.max_run else None

    # the run ---------------------------------------------------------------

    def run(
        self, *, drain: bool = False, forever: bool = False, poll: float = 1.0
    ) -> DeliveryReport:
        skipped, waiting = self._start()
        if isinstance(self.abort, Abort):
            self.abort.armed = True
        self.lease.beat()
        handed_over: set[int] = set()
        try:
            while True:
                handed_over = self._pass()
                if self.stop.is_set() or self.abort.is_set() or self.crash or self.lost:
                    break
                if self.lease.lapsed.is_set() and not forever:
                    self._halt_run(
                        f"stopped: this worker's lease on its deliveries ran out (no renewal "
                        f"for email.lease_seconds = {self.policy.lease:g}: the process was "
                        "paused or stalled); other workers take them over"
                    )
                    break
                if self.lease.lapsed.is_set():
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
            self.lease.end()
            left = self._finish(handed_over)
            if isinstance(self.abort, Abort):
                self.abort.armed = False
        return self._report(skipped, waiting, left)

    def _report(self, skipped: int, waiting: int, left: int) -> DeliveryReport:
        if self.crash is not None:
            raise self.crash
        if self.lost is not None and left:
            raise self.lost
        if self.lost is not None:
            log.warning("one SMTP connection failed; the others delivered: %s", self.lost)
        c = self.outcomes.snapshot()
        stopped = self.stopped
        if stopped and left:
            stopped += f"; {left} message(s) left pending for the next run"
        return DeliveryReport(
            c["sent"],
            c["failed"],
            c["deferred"],
            c["skipped"] + skipped,
            waiting,
            self.outcomes.error_lines(),
            stopped,
            self.abort.is_set(),
        )

    def _start(self) -> tuple[int, int]:
        """Register, take back what dead workers held, skip rows of readers who left."""
        now, began = self.clock(), time.monotonic()
        with self._tx() as conn:
            released = workers.reap(conn, self.policy.lease)
            worker_id = workers.register(conn)
            skipped = rows.skip_inactive(conn)
            waiting = rows.waiting_count(conn, now)
            self.outcomes.total = rows.pending_count(conn)
        self.lease.taken(worker_id, began)
        if released:
            log.warning(
                "%d deliveries were in flight when an earlier run stopped: sending them "
                "again (a copy the server had accepted just before would arrive twice)",
                released,
            )
        return skipped, waiting

    def _rejoin(self, handed_over: set[int]) -> int:
        """The lease ran out (the process was paused or stalled): let go of what is
        still held, and start over as a new worker, under a new claim token."""
        log.warning(
            "this worker's lease on its deliveries ran out (no renewal for "
            "email.lease_seconds = %g: the process was paused or stalled); other workers "
            "take them over; starting over as a new worker",
            self.policy.lease,
        )
        self.lease.end()
        self._finish(handed_over)
        self.lease.renewed()
        skipped = self._start()[0]
        self.lease.beat()
        return skipped

    def _finish(self, handed_over: set[int]) -> int:
        """Rows still claimed go back to pending, but for a message handed over whole
        whose answer never came (an abort): it stays 'sending' until its lease ends."""
        self.outcomes.settle()
        with self._tx() as conn:
            left = claims.release_held(conn, self.lease.worker_id, self.lease.token, handed_over)
            workers.unregister(conn, self.lease.worker_id)
        return left

    def _pass(self) -> set[int]:
        """Claim and send until nothing due is left to claim (or a stop); returns the
        rows handed to a server whose answer never came (only when aborted)."""
        queue: RetryQueue[Item] = RetryQueue(self._claim)
        threads = [
            threading.Thread(target=self._sender, args=(queue,), name=f"sender-{i}", daemon=True)
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
        return self.stop.is_set() or self.abort.is_set() or self.lease.lapsed.is_set()

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

    def _claim(self) -> list[Item]:
        if self._stopping():
            return []
        with self._tx() as conn:
            jobs = claims.claim_batch(
                conn, self.lease.worker_id, self.clock(), self.policy.batch, self.lease.token
            )
        return [(job, 0) for job in jobs]

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Tx]:
        with self._write, self.engine.begin() as conn:
            # a worker stopped inside one of these must not hold its rows' locks longer
            # than its lease could: the server ends the session (state/handles.py)
            end_if_paused(conn, max(30.0, 2 * self.policy.lease))
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

    # one sender thread -------------------------------------------------------

    def _sender(self, queue: RetryQueue[Item]) -> None:
        transport: Transport | None = None
        marks = claims.SentMarks(self.engine)
        try:
            while not self._stopping() and (item := queue.get()) is not None:
                try:
                    if transport is None:
                        transport = self._open(queue, item)
                        if transport is None:
                            return
                    self._attempt(transport, marks, queue, *item)
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
            marks.close()
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
        self.outcomes.trouble()

    def _fail_run(self, exc: BaseException, queue: RetryQueue[Item]) -> None:
        with self._lock:
            self.crash = self.crash or exc
        queue.close()

    def _attempt(
        self,
        transport: Transport,
        marks: claims.SentMarks,
        queue: RetryQueue[Item],
        job: Job,
        tries: int,
    ) -> None:
        self.limiter.wait(self.stop)
        if tries:  # a retry in this run: the row went back to pending, claim it again
            with self._tx() as tx:
                if not claims.claim(tx, job.id, self.lease.worker_id, self.lease.token):
                    self.outcomes.tally("skipped", job.address)
                    return
        if self._stopping():
            return  # claimed, never handed over: released when the run ends
        with self._lock:
            self.inflight[job.id] = transport
        sender = self.mailing.return_path(job.message_id)
        try:
            data = self.personal.message(self._template(job.variant_id), job)
            if not self.lease.holding(time.monotonic()):
                return  # the row may be another worker's by now: not sent from here
            transport.send(data, job.address, sender=sender)
        except SenderRefused as exc:  # not this reader's bounce: the row stays pending
            self._halt_run(
                f"stopped: the SMTP server refused the sender <{sender}> (MAIL FROM): {exc}"
            )
        except PermanentFailure as exc:
            self.outcomes.refused(job, str(exc))
        except TransientFailure as exc:
            if self.abort.is_set():
                return
            if isinstance(exc, ConnectionTrouble):
                self.outcomes.trouble()
            else:
                self.outcomes.settled()
            self.outcomes.transient(queue, job, tries + 1, str(exc))
        except BaseException:
            if not self.abort.is_set():
                with self._tx() as tx:  # not sent: pending again, for this run or the next
                    claims.mark_pending(tx, job, None, None)
            raise
        else:
            self.outcomes.settled()
            self._sent(marks, job)
        finally:
            with self._lock:
                self.inflight.pop(job.id, None)

    def _sent(self, marks: claims.SentMarks, job: Job) -> None:
        """Marked sent before this sender thread sends anything else: the duplicate
        window stays one message a connection."""
        with self._write:
            mine = marks.sent(job, self.clock())
        self.outcomes.tally("sent", job.address)
        if not mine:
            log.warning("%s: the row was taken over by another worker", job.address)
            self.lease.lost()
