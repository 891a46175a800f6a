"""Delivering: the outbox sent as one worker (mail/engine.py), a one-off test letter,
and the mail that comes back (bounces, unsubscribe requests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from digest.mail import delivery
from digest.mail import engine as delivery_engine
from digest.mail.delivery import DeliveryReport, Policy, Progress

if TYPE_CHECKING:
    from digest.app.wiring import App
    from digest.mail.bounces import Outcome
    from digest.mail.inbox import Inbox
    from digest.mail.notices import Notice
    from digest.render.viewmodel import DigestView


def deliver_pending(
    app: App,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    *,
    abort: threading.Event | None = None,
    drain: bool = False,
    forever: bool = False,
) -> DeliveryReport:
    """Send due pending deliveries of every digest as one worker (mail/engine.py): one
    row each, claimed in batches, marked sent only after the server accepted it. Any
    number of workers may run at once. `drain`: also wait for rows other workers hold
    until the outbox is empty; `forever`: keep polling (`digest worker`). Setting
    `stop` ends it early, `abort` at once; the rest stays pending."""
    return delivery_engine.deliver(
        app.database.writer,
        app.transport,
        app.mailing(),
        Policy.of(app.settings.email, parallel=app.parallel()),
        clock=app.clock,
        progress=progress,
        stop=stop,
        abort=abort,
        drain=drain,
        forever=forever,
        poll=app.settings.schedule.poll_seconds,
    )


def send_test(app: App, view: DigestView, to: str) -> DeliveryReport:
    """The letter of `view` to `to` alone (`digest send --to`)."""
    from digest.app.letters import personaliser

    letter = personaliser(app).letter(view)
    delivery.send_test(app.transport(), app.mailing(), letter, view.published_at, to)
    return DeliveryReport(sent=1)


def process_replies(
    app: App, inbox: Inbox, recipients: Sequence[str] = ()
) -> Iterator[tuple[str, Outcome]]:
    """Read each unprocessed message of ``inbox`` (mail/bounces.py): apply a hard
    bounce or an unsubscribe request, each in its own transaction, then mark the
    message processed; yields (message name, outcome). ``recipients``: the envelope
    recipients an MTA gave with a piped message. Idempotent."""
    from digest.mail import bounces
    from digest.mail.message import sender_domain

    domain = sender_domain(app.settings.email.sender)
    for name, data in inbox.messages():
        reply = bounces.read_reply(data, recipients)
        with app.database.tx() as session:
            outcome = bounces.apply_reply(session, reply, domain)
        inbox.done(name)
        yield name, outcome


def send_notice(app: App, notice: Notice) -> None:
    """A one-off notice, built (and DKIM-signed when a key is configured) by
    mail/notices.py and sent at once; DeliveryError when it cannot be delivered."""
    from digest.mail import notices

    mailing = app.mailing()
    sender = app.settings.email.sender
    data = notices.build(notice, sender=sender, when=app.clock(), signer=mailing.signer)
    notices.send(app.transport(), data, notice.to, envelope_from=mailing.envelope_from)


def alert_admin(app: App, subject: str, body: str) -> str:
    """Mail schedule.admin_email a plain notice (the daemon's stale-source alert);
    returns the address, or "" when none is configured."""
    from digest.mail.notices import Notice

    admin = app.settings.schedule.admin_email
    if admin:
        send_notice(app, Notice(admin, subject, body + "\n"))
    return admin
