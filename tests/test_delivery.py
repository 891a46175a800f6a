"""Delivery over SMTP against a real server in the test (aiosmtpd): the digest reaches
every subscriber once and parses back, and a server that can be told, per recipient and
per attempt, to answer 421/451, 550, drop the connection or stall.

Every case ends with the right delivery states and no duplicate at the server.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from digest.app import delivering, inspecting, make_app, publishing, subscribing
from digest.config import Settings
from digest.errors import ConfigError, DeliveryError
from digest.state.models import Delivery, Subscriber
from tests.support.delivery import PAPERS, addresses, small_settings, states, subscribe
from tests.support.dumps import write_dump
from tests.support.net import free_port
from tests.support.smtp import FaultyServer, running_smtp


@pytest.fixture
def server() -> Iterator[tuple[Controller, FaultyServer]]:
    with running_smtp(FaultyServer()) as running:
        yield running


def test_every_subscriber_gets_exactly_one_copy(
    tmp_path: Path, database_url: str, server: tuple[Controller, FaultyServer]
) -> None:
    controller, handler = server
    app = make_app(small_settings(tmp_path, database_url, controller.port, connections=3))
    subscribe(app, *addresses(12))
    seen: list[tuple[int, int]] = []
    report = publishing.send(
        app, progress=lambda stage, done, total, what: seen.append((done, total))
    )
    assert report.delivery.sent == 12 and report.delivery.failed == 0
    assert handler.accepted == Counter({a: 1 for a in addresses(12)})
    assert set(states(app).values()) == {"sent"}
    assert 1 < len(handler.peers) <= 3  # parallel, and each connection reused
    assert seen[-1] == (12, 12)
    assert publishing.send(app).delivery.sent == 0  # nothing twice
    assert sum(handler.accepted.values()) == 12


def test_temporary_failures_are_retried_until_accepted(
    tmp_path: Path, database_url: str, server: tuple[Controller, FaultyServer]
) -> None:
    controller, handler = server
    app = make_app(small_settings(tmp_path, database_url, controller.port))
    subscribe(app, *addresses(5))
    handler.script = {
        "reader0@example.org": ["451", "451"],
        "reader1@example.org": ["421"],
        "reader2@example.org": ["drop"],
    }
    report = publishing.send(app)
    assert report.delivery.sent == 5, report.delivery
    assert handler.accepted == Counter({a: 1 for a in addresses(5)})
    with app.session() as s:
        attempts = {a: n for a, n in s.execute(select(Delivery.address, Delivery.attempts))}
    assert attempts["reader0@example.org"] == 3 and attempts["reader4@example.org"] == 1
    assert set(states(app).values()) == {"sent"}


def test_a_server_that_stops_answering_is_timed_out_and_retried(
    tmp_path: Path, server: tuple[Controller, FaultyServer]
) -> None:
    """The one test where a short SMTP timeout is the point. The server never answers
    the stalled RCPT (it waits until the client hangs up), so any timeout ends it; 5 s
    keeps a busy machine's ordinary replies well inside the limit."""
    controller, handler = server
    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    app = make_app(small_settings(tmp_path, url, controller.port, smtp_timeout=5.0))
    subscribe(app, "slow@example.org", "fine@example.org")
    handler.script = {"slow@example.org": ["stall"]}
    report = publishing.send(app)
    assert (report.delivery.sent, report.delivery.failed) == (2, 0), report.delivery
    assert handler.stalled == 1
    assert handler.accepted == Counter({"slow@example.org": 1, "fine@example.org": 1})
    with app.session() as s:
        row = s.scalar(select(Delivery).where(Delivery.address == "slow@example.org"))
        assert row.status == "sent" and row.attempts == 2


def test_permanent_failure_is_recorded_and_bounces_after_the_threshold(
    tmp_path: Path, server: tuple[Controller, FaultyServer]
) -> None:
    controller, handler = server
    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    app = make_app(small_settings(tmp_path, url, controller.port, bounce_threshold=2))
    subscribe(app, "gone@example.org", "fine@example.org")
    handler.script = {"gone@example.org": ["550", "550"]}
    report = publishing.send(app)
    assert (report.delivery.sent, report.delivery.failed) == (1, 1)
    assert report.delivery.errors == ("gone@example.org: 550 5.1.1 no such user",)
    with app.session() as s:
        row = s.scalar(select(Delivery).where(Delivery.address == "gone@example.org"))
        assert row.status == "failed" and row.last_error == "550 5.1.1 no such user"
        assert row.attempts == 1  # a 5xx is never retried
    write_dump(app.settings.dumps_dir / "b.txt", [("Another MoE paper", "Experts. " * 12)])
    publishing.send(app)  # second refusal in a row: bounced
    [gone] = [s for s in subscribing.book(app).list() if s.address == "gone@example.org"]
    assert gone.status == "bounced" and gone.bounce_count == 2
    write_dump(app.settings.dumps_dir / "c.txt", [("Third MoE paper", "Experts. " * 12)])
    third = publishing.send(app)
    assert third.delivery.sent == 1  # a bounced subscriber is no longer mailed
    assert handler.accepted["gone@example.org"] == 0
    assert handler.accepted["fine@example.org"] == 3


def test_leftover_temporary_failure_waits_for_a_later_run(
    tmp_path: Path, server: tuple[Controller, FaultyServer]
) -> None:
    controller, handler = server
    now = [datetime(2026, 11, 27, 8, 0, tzinfo=UTC)]
    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    settings = small_settings(tmp_path, url, controller.port, give_up_hours=24.0)
    app = make_app(settings, clock=lambda: now[0])
    subscribe(app, "busy@example.org", "fine@example.org")
    handler.script = {"busy@example.org": ["451"] * 4}
    report = publishing.send(app)
    assert (report.delivery.sent, report.delivery.deferred) == (1, 1)
    with app.session() as s:
        row = s.scalar(select(Delivery).where(Delivery.address == "busy@example.org"))
        assert row.status == "pending" and row.attempts == 3
        assert row.last_error == "451 4.7.1 greylisted" and row.next_attempt_at > now[0]
    assert publishing.send(app).delivery.waiting == 1  # not due yet: not tried
    assert handler.accepted["busy@example.org"] == 0
    now[0] += timedelta(minutes=5)
    again = publishing.send(app)  # one more 451, then accepted
    assert again.delivery.sent == 1
    assert handler.accepted == Counter({"busy@example.org": 1, "fine@example.org": 1})


def test_temporary_failure_past_the_give_up_time_fails(
    tmp_path: Path, server: tuple[Controller, FaultyServer]
) -> None:
    controller, handler = server
    now = [datetime(2026, 11, 27, 8, 0, tzinfo=UTC)]
    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    app = make_app(
        small_settings(tmp_path, url, controller.port, give_up_hours=1.0), clock=lambda: now[0]
    )
    subscribe(app, "busy@example.org")
    handler.script = {"busy@example.org": ["451"] * 10}
    publishing.send(app)
    now[0] += timedelta(hours=2)
    report = publishing.send(app)
    assert report.delivery.failed == 1
    assert states(app) == {"busy@example.org": "failed"}
    with app.session() as s:
        error = s.scalar(select(Delivery.last_error))
    assert error.startswith("gave up after 4 attempts: 451")


def test_unreachable_server_fails_the_run_and_keeps_every_row_pending(
    tmp_path: Path, database_url: str, server: tuple[Controller, FaultyServer]
) -> None:
    controller, handler = server
    dead = free_port()
    app = make_app(small_settings(tmp_path, database_url, dead))
    subscribe(app, *addresses(4))
    with pytest.raises(DeliveryError, match=f"cannot reach SMTP server 127.0.0.1:{dead}"):
        publishing.send(app)
    assert set(states(app).values()) == {"pending"}
    with app.session() as s:
        assert set(s.scalars(select(Delivery.next_attempt_at))) == {None}
    live = make_app(small_settings(tmp_path, database_url, controller.port))
    assert publishing.send(live).delivery.sent == 4
    assert handler.accepted == Counter({a: 1 for a in addresses(4)})


def test_rate_limit_spaces_the_messages(
    tmp_path: Path, server: tuple[Controller, FaultyServer]
) -> None:
    controller, handler = server
    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    app = make_app(small_settings(tmp_path, url, controller.port, rate_limit=20.0, connections=3))
    subscribe(app, *addresses(11))
    publishing.send(app)  # publish, render, and deliver
    with app.session() as s:
        s.execute(Delivery.__table__.update().values(status="pending"))
        s.commit()
    handler.accepted.clear()
    started = time.monotonic()
    assert delivering.deliver_pending(app).sent == 11
    # 11 messages at 20/s: the last starts at least 10 intervals after the first. A
    # lower bound: a busy machine only makes the run longer.
    assert time.monotonic() - started >= 10 / 20 - 0.05
    assert sum(handler.accepted.values()) == 11


def test_themes_choose_sections_and_none_means_no_message(
    tmp_path: Path, server: tuple[Controller, FaultyServer]
) -> None:
    controller, handler = server
    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    app = make_app(small_settings(tmp_path, url, controller.port))
    subscribe(app, "all@example.org")
    subscribe(app, "moe@example.org", "moe2@example.org", themes="Mixture of experts")
    subscribe(app, "music@example.org", themes="music-and-audio")
    subscribe(app, "nothing@example.org", themes="Medicine and health")  # an area not in it
    report = publishing.send(app)
    assert report.delivery.sent == 4
    assert states(app)["nothing@example.org"] == "skipped"
    assert handler.accepted["nothing@example.org"] == 0
    by_to = {m["To"]: m for m in handler.messages}
    moe = by_to["moe@example.org"].get_body(("plain",)).get_content()
    assert "Sparse mixture of experts" in moe and "Music generation" not in moe
    assert by_to["moe@example.org"]["Subject"] == "#1 · 2 papers: Mixture of experts"
    music = by_to["music@example.org"].get_body(("html",)).get_content()
    assert "Music generation with diffusion" in music and "Routing in MoE" not in music
    every = by_to["all@example.org"].get_body(("plain",)).get_content()
    assert all(title in every for title, _ in PAPERS)


def test_headers_links_and_dkim(tmp_path: Path, server: tuple[Controller, FaultyServer]) -> None:
    dkim = pytest.importorskip("dkim")
    import subprocess

    controller, handler = server
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    settings = small_settings(
        tmp_path,
        url,
        controller.port,
        sender="News <news@example.org>",
        dkim_key_file=str(key),
        dkim_selector="s1",
        unsubscribe_mailto="leave@example.org",
    )
    app = make_app(settings)
    subscribe(app, "ada@example.org", "grace@example.org")
    publishing.send(app)
    with app.session() as s:
        tokens = {a: t for a, t in s.execute(select(Subscriber.address, Subscriber.token))}
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s1._domainkey.example.org."
        return record

    assert len(handler.messages) == 2
    assert len({m["Message-ID"] for m in handler.messages}) == 2
    for msg, raw in zip(handler.messages, handler.raw, strict=True):
        token = tokens[msg["To"]]
        link = f"https://news.example.org/unsubscribe/{token}"
        unsub = " ".join(msg["List-Unsubscribe"].split())
        assert unsub == f"<mailto:leave@example.org?subject=unsubscribe%20{token}>, <{link}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["List-Id"] == "Papers digest <papers-digest.example.org>"
        assert link in msg.get_body(("plain",)).get_content()
        assert f'href="{link}"' in msg.get_body(("html",)).get_content()
        assert dkim.verify(raw, dnsfunc=dns)
        tampered = raw.replace(token.encode(), b"x" * len(token), 1)
        assert not dkim.verify(tampered, dnsfunc=dns)


def test_message_template_round_trips_any_text() -> None:
    """The per-subscriber splice of the token into quoted-printable text decodes to
    exactly the text with the token in place, whatever surrounds the placeholder."""
    from digest.mail.message import PLACEHOLDER, Envelope, Letter, MessageTemplate

    envelope = Envelope(
        "A <a@example.org>", "L <l.example.org>", f"https://x/u/{PLACEHOLDER}", "a@x"
    )
    token = "T" * 20 + "-_" + "9" * 21
    for pad in range(0, 160, 7):
        body = "é" * pad + " =\t" + PLACEHOLDER + " \n" + "x" * (75 - pad % 76) + PLACEHOLDER
        letter = Letter("Subject é", "<p>" + body + "</p>", body + "\nend ")
        template = MessageTemplate(letter, envelope, datetime(2026, 1, 1, tzinfo=UTC))
        raw = template.render("r@example.org", "<id@x>", token)
        head, _, body_part = raw.partition(b"\r\n\r\n")
        assert max(len(line) for line in head.split(b"\r\n")) < 998
        assert max(len(line) for line in body_part.split(b"\r\n")) <= 76, pad
        msg = message_from_bytes(raw, policy=policy.default)
        filled = body.replace(PLACEHOLDER, token)
        plain = msg.get_body(("plain",)).get_payload(decode=True).decode()
        assert plain.replace("\r\n", "\n") == filled + "\nend "
        html = msg.get_body(("html",)).get_payload(decode=True).decode()
        assert html.replace("\r\n", "\n") == "<p>" + filled + "</p>"


def test_a_row_is_claimed_once_and_only_an_expired_lease_is_taken_back(
    tmp_path: Path, database_url: str, server: tuple[Controller, FaultyServer]
) -> None:
    from digest.state import claims, workers
    from digest.state.dbclock import db_ago

    controller, handler = server
    settings = small_settings(tmp_path, database_url, controller.port, lease_seconds=30.0)
    app = make_app(settings)
    subscribe(app, "ada@example.org", "grace@example.org")
    publishing.publish(app)  # deliveries stay pending
    with app.session() as s:
        ada, grace = s.scalars(select(Delivery.id).order_by(Delivery.id))
    with app.database.engine.begin() as conn:
        live = workers.register(conn)  # a worker alive now (this very process)
        assert claims.claim(conn, ada, live, "live-token")
        assert claims.claim(conn, grace, live + 1000, "other-token")
        # that worker, on another machine, stopped 31 s ago: its lease ran out
        conn.execute(update(Delivery).where(Delivery.id == grace).values(claimed_at=db_ago(31)))
    with app.database.engine.begin() as conn:
        assert not claims.claim(conn, ada)  # the row count says who won
    report = delivering.deliver_pending(make_app(settings))
    # only the expired claim was taken back; the live worker's row is left alone
    assert report.sent == 1 and handler.accepted == Counter({"grace@example.org": 1})
    assert states(app) == {"ada@example.org": "sending", "grace@example.org": "sent"}
    with app.session() as s:
        row = s.get(Delivery, grace)
        assert row is not None and row.attempts == 2 and row.claimed_at is not None
    with app.database.engine.begin() as conn:  # the live worker lets go of it: pending again
        assert claims.release_held(conn, live, "not-its-token") == 0
        assert claims.release_held(conn, live, "live-token") == 1
        workers.unregister(conn, live)
    assert delivering.deliver_pending(make_app(settings)).sent == 1
    assert handler.accepted == Counter({"grace@example.org": 1, "ada@example.org": 1})


def test_bad_delivery_settings_fail_before_publishing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    (tmp_path / "bad.pem").write_text("not a key")
    for email, message in (
        ({"dkim_key_file": "bad.pem"}, "bad.pem is not a usable private key"),
        ({"dkim_key_file": "missing.pem"}, "email.dkim_key_file: cannot read"),
    ):
        app = make_app(small_settings(tmp_path, url, free_port(), **email))
        with pytest.raises(ConfigError, match=message):
            publishing.send(app)
        assert inspecting.status(app).last_issue is None


# --- the digest over a plain SMTP server -----------------------------------------------------


def smtp_settings(settings: Settings, port: int) -> Settings:
    email = replace(settings.email, transport="smtp", smtp_host="127.0.0.1", smtp_port=port)
    return replace(settings, email=email)


def test_digest_is_delivered_over_smtp_and_parses_back(settings: Settings, smtp_server) -> None:
    controller, recorder = smtp_server
    app = make_app(smtp_settings(settings, controller.port))
    report = publishing.send(app)
    assert report.delivery.sent == 2
    assert sorted(r for rcpts, _ in recorder.messages for r in rcpts) == [
        "ada@example.org",
        "grace@example.org",
    ]
    for rcpts, msg in recorder.messages:
        assert msg["To"] == rcpts[0]
        assert msg["From"] == "Papers digest <digest@localhost>"
        assert msg["List-Id"] == "Papers digest <papers-digest.localhost>"
        assert msg["Subject"] == report.prepared.view.subject
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        # the e-mail is over the clipping size: it lists the top of every section
        for section in report.prepared.view.sections:
            top = section.papers[0].title
            assert top.replace("&", "&amp;") in html and top[:40] in text.replace("\n", " ")
        assert "<" not in text.split("http")[0]  # the text part carries no markup
    # nothing is sent twice on the next run
    assert publishing.send(app).delivery.sent == 0
    assert len(recorder.messages) == 2


def test_send_to_one_address_over_smtp(settings: Settings, smtp_server) -> None:
    controller, recorder = smtp_server
    app = make_app(smtp_settings(settings, controller.port))
    publishing.send_to(app, "editor@example.org")
    assert [r for r, _ in recorder.messages] == [["editor@example.org"]]
    assert inspecting.status(app).papers_sent == 0
