"""Delivering the outbox, what a run is: its policy (how hard and how fast), the list's
mailing (envelope, DKIM, VERP), how it is asked to stop, its report, and the factory
that makes them from the settings; the engine that runs it is engine.py (sender
threads), its bookkeeping outcomes.py. A worker claims due pending deliveries in batches
(FOR UPDATE SKIP LOCKED on PostgreSQL, a conditional update on SQLite) and sends them
over a few reused SMTP connections in parallel (one per sender thread), within one rate
limit that all workers draw from together (a bucket in the state:
ratelimit.GlobalBucket). Any number of workers, on any number of machines, can run at
once.

Crash safety: a row is marked sent only after the server accepted the message, in its
own transaction, before that thread sends anything else. A worker holds its claimed rows
under a lease that its heartbeat renews; rows of a worker that died go back to pending
once its lease ran out (at once when it ran on this host and its process is gone), so a
crash re-sends at most the message each connection had in flight.

Pauses and clock skew: leases are written and compared by the database's clock only.
Each worker run claims under a random token; marking a row names it, so nothing a worker
no longer holds is changed. A worker knows its lease lasts ``lease`` seconds (its own
monotonic clock) from the moment it began the last renewal that committed in time; a
sender thread sends only while that holds, and a heartbeat that comes too late, or a row
found taken when marking it sent, ends the run (``forever``: the worker lets go of what
it held and starts over as a new worker). A worker paused past its lease (a VM or GC
pause, SIGSTOP, a long lock wait) thus sends at most the message each connection had in
flight when it stopped.

Stopping: ``stop`` (a first Ctrl-C or SIGTERM, the run's deadline, or the circuit
breaker) takes no new message; those in flight finish; every claimed row not yet sent
goes back to pending. ``abort`` (a second Ctrl-C) cuts the connections at once: rows
whose message was never handed to the server go back to pending, and only a message
handed over whole but not yet answered stays 'sending' until its lease runs out.

Temporary failures are retried with exponential backoff within the run, up to
``max_attempts``; what is left waits, pending, for a later run. Permanent failures (5xx)
of a recipient fail the row and count towards the subscriber's bounces. A refusal of the
envelope sender (MAIL FROM) or of the session is nobody's bounce: the run stops with the
server's answer and the rows stay pending. So does a run whose permanent failures come
``breaker`` in a row with the same answer (a relay refusing everyone): those rows stay
pending too."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr

from digest.config import EmailSection, Settings
from digest.errors import DeliveryError
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
from digest.text import one_line

Progress = Callable[[str, int, int, str], None]  # (stage, done, total, what)
MAX_RETRY_DELAY = 3600.0  # a later run waits at most this long after a temporary failure
MAX_ERRORS = 20  # error lines kept in a report
TEST_TOKEN = "test-send-this-link-unsubscribes-nobody"


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
