"""A relay that refuses the sender or the session is not a bounce of every reader: the
run stops with one line saying what the relay said, the rows stay pending, and nobody
is marked bounced. Only a refusal of one recipient counts as that recipient's bounce,
and a run whose refusals all come back alike stops early. Real SMTP servers in the
test process (aiosmtpd), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.app import App, delivering, make_app, publishing
from digest.errors import DeliveryError
from digest.state.models import Subscriber
from tests.support.delivery import addresses, small_settings, states, subscribe
from tests.support.dumps import write_dump
from tests.support.smtp import FaultyServer, running_smtp

SENDER_REFUSED = "550 5.7.1 sender domain example.org is not allowed"


class RefusingRelay(FaultyServer):
    """A relay that can refuse the envelope sender (``mail``: its answer to MAIL FROM)
    or the session (``session``: its answer to EHLO and HELO), besides what
    FaultyServer's script does per recipient; ``fixed()`` makes it take mail again."""

    def __init__(self) -> None:
        super().__init__()
        self.mail: str | None = None
        self.session: str | None = None
        self.refused = 0  # MAIL FROM commands refused

    def fixed(self) -> None:
        self.mail = self.session = None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        if self.session:
            return [self.session]
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):  # type: ignore[no-untyped-def]
        if self.session:
            return self.session
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        if self.mail:
            self.refused += 1
            return self.mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


def subscribers(app: App) -> dict[str, tuple[str, int]]:
    with app.session() as s:
        rows = s.execute(select(Subscriber.address, Subscriber.status, Subscriber.bounce_count))
        return {a: (status, n) for a, status, n in rows}


def new_issue(app: App, n: int) -> None:
    write_dump(app.settings.dumps_dir / f"issue{n}.txt", [(f"MoE paper {n}", "Experts. " * 12)])


@pytest.mark.parametrize(
    "answer",
    [SENDER_REFUSED, "554 5.7.1 account suspended", "421 4.7.0 too many sessions from you"],
)
def test_a_refused_sender_leaves_every_row_pending_and_nobody_bounced(
    tmp_path: Path, database_url: str, answer: str
) -> None:
    with running_smtp(RefusingRelay()) as (controller, relay):
        settings = small_settings(tmp_path, database_url, controller.port, bounce_threshold=3)
        app = make_app(settings)
        readers = addresses(6)
        subscribe(app, *readers)
        relay.mail = answer
        for issue in range(3):  # three issues while the relay refuses the sender
            if issue:
                new_issue(app, issue)
            report = publishing.send(app)
            assert report.issue == issue + 1
            d = report.delivery
            assert (d.sent, d.failed) == (0, 0), d
            assert "\n" not in d.stopped
            assert d.stopped.startswith("stopped: the SMTP server refused the sender"), d
            assert answer in d.stopped, d.stopped
            assert f"{6 * (issue + 1)} message(s) left pending" in d.stopped, d.stopped
            assert relay.refused >= 1
        assert set(states(app).values()) == {"pending"}
        assert subscribers(app) == {a: ("active", 0) for a in readers}
        relay.fixed()  # the relay takes the sender again: every issue reaches everyone
        report = delivering.deliver_pending(make_app(settings))
        assert (report.sent, report.failed, report.stopped) == (18, 0, "")
        assert relay.accepted == Counter({a: 3 for a in readers})


@pytest.mark.parametrize("answer", ["421 4.3.2 service shutting down", "554 5.7.1 no service"])
def test_a_refused_session_leaves_every_row_pending_and_nobody_bounced(
    tmp_path: Path, database_url: str, answer: str
) -> None:
    with running_smtp(RefusingRelay()) as (controller, relay):
        settings = small_settings(tmp_path, database_url, controller.port)
        app = make_app(settings)
        readers = addresses(4)
        subscribe(app, *readers)
        relay.session = answer
        with pytest.raises(DeliveryError) as raised:
            publishing.send(app)
        line = str(raised.value)
        assert "\n" not in line
        assert f"SMTP server 127.0.0.1:{controller.port} refused the session: {answer};" in line
        assert set(states(app).values()) == {"pending"}
        assert subscribers(app) == {a: ("active", 0) for a in readers}
        relay.fixed()
        assert delivering.deliver_pending(make_app(settings)).sent == 4
        assert relay.accepted == Counter({a: 1 for a in readers})


def test_a_refused_recipient_bounces_that_recipient_only(tmp_path: Path, database_url: str) -> None:
    with running_smtp(RefusingRelay()) as (controller, relay):
        app = make_app(small_settings(tmp_path, database_url, controller.port, bounce_threshold=2))
        readers = addresses(5)
        subscribe(app, *readers)
        gone = readers[2]
        relay.script = {gone: ["550", "550"]}
        first = publishing.send(app).delivery
        assert (first.sent, first.failed, first.stopped) == (4, 1, "")
        assert first.errors == (f"{gone}: 550 5.1.1 no such user",)
        new_issue(app, 1)
        second = publishing.send(app).delivery
        assert (second.sent, second.failed, second.stopped) == (4, 1, "")
        expected = {a: ("active", 0) for a in readers} | {gone: ("bounced", 2)}
        assert subscribers(app) == expected
        assert relay.accepted == Counter({a: 2 for a in readers if a != gone})


def test_refusals_all_alike_stop_the_run_early_and_bounce_nobody(
    tmp_path: Path, database_url: str
) -> None:
    """A relay refusing every recipient alike (here: relaying denied, the address in
    each answer) is the relay's fault: after email.breaker_failures of them in a row the
    run stops, and those rows stay pending, counted as nobody's bounce."""

    class DenyingRelay(RefusingRelay):
        deny = True

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
            if self.deny:
                return f"554 5.7.1 <{address}>: Relay access denied"
            return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    with running_smtp(DenyingRelay()) as (controller, relay):
        settings = small_settings(
            tmp_path, database_url, controller.port, breaker_failures=5, bounce_threshold=1
        )
        app = make_app(settings)
        readers = addresses(12)
        subscribe(app, *readers)
        d = publishing.send(app).delivery
        assert (d.sent, d.failed) == (0, 0), d
        assert "\n" not in d.stopped
        assert "refused 5 messages in a row with the same answer" in d.stopped, d.stopped
        assert "Relay access denied" in d.stopped, d.stopped
        assert "12 message(s) left pending" in d.stopped, d.stopped
        assert set(states(app).values()) == {"pending"}
        assert subscribers(app) == {a: ("active", 0) for a in readers}
        relay.deny = False
        assert delivering.deliver_pending(make_app(settings)).sent == 12
        assert relay.accepted == Counter({a: 1 for a in readers})


def test_different_refusals_are_each_their_recipients_bounce(
    tmp_path: Path, database_url: str
) -> None:
    """Refusals in a row that differ are no relay-wide fault: the breaker keeps out of
    it and each counts for its recipient."""

    class Answers(RefusingRelay):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
            number = int(address.split("@")[0].removeprefix("reader"))
            return f"550 5.1.{number} mailbox {number} unavailable"

    with running_smtp(Answers()) as (controller, _):
        settings = small_settings(
            tmp_path, database_url, controller.port, breaker_failures=2, bounce_threshold=1
        )
        app = make_app(settings)
        readers = addresses(6)
        subscribe(app, *readers)
        d = publishing.send(app).delivery
        assert (d.sent, d.failed, d.stopped) == (0, 6, ""), d
        assert subscribers(app) == {a: ("bounced", 1) for a in readers}
