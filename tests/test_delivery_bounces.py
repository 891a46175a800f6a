"""Mail sent back to the list, read by `digest bounces` from a Maildir, a real IMAP
server (Dovecot) and a pipe from the MTA: hard bounces mark their subscriber bounced,
unsubscribe requests by mail unsubscribe, the rest changes nothing, and running it
again changes nothing either. On SQLite and PostgreSQL, with the digest really sent
over SMTP (aiosmtpd) from a VERP address."""

from __future__ import annotations

import imaplib
import logging
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from digest.app import App, make_app, publishing
from digest.config import load_settings
from digest.mail.bounces import read_reply
from digest.program import main
from digest.state.models import Delivery, Subscriber
from tests.support.replies import (
    add_to_maildir,
    auto_reply,
    dsn,
    running_dovecot,
    unsubscribe_request,
)
from tests.support.smtp import Recorder


@dataclass
class Sent:
    """A digest sent to ada and grace; what each received, and the settings file."""

    app: App
    config: Path
    mail: dict[str, EmailMessage]
    sender: dict[str, str]  # MAIL FROM of each one's message

    def run(self, *args: str, stdin: bytes | None = None) -> Result:
        return CliRunner().invoke(main, ["-c", str(self.config), "bounces", *args], input=stdin)

    def status(self, address: str) -> str:
        with self.app.session() as s:
            return str(s.scalar(select(Subscriber.status).where(Subscriber.key == address)))


@pytest.fixture
def sent(tmp_path: Path, dumps_dir: Path, database_url: str, smtp_server) -> Sent:
    controller, recorder = smtp_server
    assert isinstance(recorder, Recorder)
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "{dumps_dir}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'database_url = "{database_url}"\n\n'
        f'[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {controller.port}\n'
        'recipients = ["ada@example.org", "grace@example.org"]\n'
        'bounce_address = "bounces@lists.example.org"\n'
    )
    app = make_app(load_settings(str(config)))
    assert publishing.send(app).delivery.sent == 2
    mail = {rcpts[0]: msg for rcpts, msg in recorder.messages}
    senders = {
        rcpts[0]: s for (rcpts, _), s in zip(recorder.messages, recorder.senders, strict=True)
    }
    return Sent(app, config, mail, senders)


def test_each_message_is_sent_from_its_own_verp_address(sent: Sent) -> None:
    for address, msg in sent.mail.items():
        left = msg["Message-ID"].strip("<>").partition("@")[0]
        assert sent.sender[address] == f"bounces+{left}@lists.example.org"


def test_a_hard_bounce_in_a_maildir_marks_its_subscriber_bounced_once(
    sent: Sent, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="digest")
    box = tmp_path / "replies"
    bounce = dsn(
        to=sent.sender["ada@example.org"],
        delivered_to=sent.sender["ada@example.org"],
        final_recipient="ada@example.org",
    )
    add_to_maildir(box, "1.bounce", bounce)
    add_to_maildir(box, "2.away", auto_reply("digest@localhost"))
    result = sent.run("--maildir", str(box))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "new/1.bounce: hard bounce (5.1.1): ada@example.org marked bounced",
        "new/2.away: not a delivery report or an unsubscribe request: ignored",
    ]
    assert sent.status("ada@example.org") == "bounced"
    assert sent.status("grace@example.org") == "active"
    with sent.app.session() as s:
        ada = s.scalar(select(Delivery).where(Delivery.address == "ada@example.org"))
    assert ada is not None and ada.status == "failed" and ada.last_error == "bounced later: 5.1.1"
    # processed messages are kept, marked seen; a second run reads nothing
    assert sorted(p.name for p in (box / "cur").iterdir()) == ["1.bounce:2,S", "2.away:2,S"]
    assert sent.run("--maildir", str(box)).stdout == "no new messages\n"
    # the same report delivered twice changes nothing
    add_to_maildir(box, "3.again", bounce)
    again = sent.run("--maildir", str(box)).stdout
    assert again == "new/3.again: hard bounce (5.1.1): ada@example.org already bounced\n"
    token = re.search(r"/unsubscribe/([\w-]+)", sent.mail["ada@example.org"]["List-Unsubscribe"])
    assert token and token.group(1) not in caplog.text + result.output + again


def test_a_bounce_is_found_by_the_returned_message_id_or_token_without_verp(
    sent: Sent, tmp_path: Path
) -> None:
    box = tmp_path / "replies"
    ada, grace = sent.mail["ada@example.org"], sent.mail["grace@example.org"]
    add_to_maildir(box, "1", dsn(to="digest@localhost", final_recipient="x@y", original=ada))
    del grace["Message-ID"]  # only the List-Unsubscribe header is left to go by
    whole = dsn(to="digest@localhost", final_recipient="x@y", original=grace, whole=True)
    add_to_maildir(box, "2", whole)
    lines = sent.run("--maildir", str(box)).stdout.splitlines()
    assert lines == [
        "new/1: hard bounce (5.1.1): ada@example.org marked bounced",
        "new/2: hard bounce (5.1.1): grace@example.org marked bounced",
    ]


def test_temporary_failures_and_reports_without_a_secret_change_nothing(
    sent: Sent, tmp_path: Path
) -> None:
    box = tmp_path / "replies"
    verp = sent.sender["ada@example.org"]
    delayed = dsn(to=verp, final_recipient="ada@example.org", action="delayed", status="4.4.1")
    add_to_maildir(box, "1", delayed)
    soft = dsn(to=verp, final_recipient="ada@example.org", status="4.2.2")
    add_to_maildir(box, "2", soft)
    # anyone can write a report naming an address: it takes a secret to act on it
    forged = dsn(to="digest@localhost", final_recipient="grace@example.org")
    add_to_maildir(box, "3", forged)
    forged_verp = dsn(
        to="bounces+" + "0" * 32 + "@lists.example.org", final_recipient="grace@example.org"
    )
    add_to_maildir(box, "4", forged_verp)
    assert sent.run("--maildir", str(box)).stdout.splitlines() == [
        "new/1: temporary delivery failure (4.4.1): ignored",
        "new/2: temporary delivery failure (4.2.2): ignored",
        "new/3: hard bounce (5.1.1) of no message of this list",
        "new/4: hard bounce (5.1.1) of no message of this list",
    ]
    assert sent.status("ada@example.org") == sent.status("grace@example.org") == "active"


def test_an_unsubscribe_request_by_mail_piped_from_the_mta(
    sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="digest")
    header = sent.mail["grace@example.org"]["List-Unsubscribe"]
    request = unsubscribe_request(header, "grace@example.org")
    result = sent.run("--recipient", "digest@localhost", "-", stdin=request)
    assert (result.exit_code, result.stdout) == (
        0,
        "stdin: unsubscribe request: grace@example.org unsubscribed\n",
    )
    assert sent.status("grace@example.org") == "unsubscribed"
    assert sent.status("ada@example.org") == "active"
    again = sent.run("-", stdin=request)
    assert again.stdout == "stdin: unsubscribe request: grace@example.org already unsubscribed\n"
    token = re.search(r"/unsubscribe/([\w-]+)", header)
    assert token and token.group(1) not in caplog.text + result.output
    # a message that is not ours is no failure for the MTA
    other = sent.run("-", stdin=auto_reply("digest@localhost"))
    assert other.exit_code == 0 and other.stdout.endswith(": ignored\n")


def test_a_piped_message_that_cannot_be_applied_is_left_to_the_mta(sent: Sent) -> None:
    request = unsubscribe_request(sent.mail["ada@example.org"]["List-Unsubscribe"], "ada@x.org")
    unreachable = 'database_url = "postgresql+psycopg://digest@127.0.0.1:1/gone"'
    sent.config.write_text(re.sub(r'database_url = "[^"]*"', unreachable, sent.config.read_text()))
    result = sent.run("-", stdin=request)
    assert result.exit_code == 75, result.output  # EX_TEMPFAIL: the MTA tries again later


def test_bounces_read_from_a_real_imap_server(sent: Sent) -> None:
    bounce = dsn(to=sent.sender["grace@example.org"], final_recipient="grace@example.org")
    with running_dovecot() as imap:
        conn = imaplib.IMAP4("127.0.0.1", imap.port)
        conn.login(imap.user, imap.password)
        assert conn.append("INBOX", None, None, bounce)[0] == "OK"
        assert conn.append("INBOX", None, None, auto_reply("digest@localhost"))[0] == "OK"
        url = f"imap://{imap.user}@127.0.0.1:{imap.port}/INBOX"
        runner = CliRunner(env={"DIGEST_IMAP_PASSWORD": imap.password})
        args = ["-c", str(sent.config), "bounces", "--imap", url]
        result = runner.invoke(main, args)
        assert result.stdout.splitlines() == [
            "INBOX/1: hard bounce (5.1.1): grace@example.org marked bounced",
            "INBOX/2: not a delivery report or an unsubscribe request: ignored",
        ]
        assert sent.status("grace@example.org") == "bounced"
        assert runner.invoke(main, args).stdout == "no new messages\n"
        conn.select("INBOX")
        assert conn.uid("SEARCH", "SEEN")[1] == [b"1 2"]  # kept, marked seen
        conn.logout()
        wrong = CliRunner(env={"DIGEST_IMAP_PASSWORD": "wrong"}).invoke(main, args)
        assert wrong.exit_code == 1 and "--imap imap://bounces@127.0.0.1" in wrong.output
        assert "wrong" not in wrong.output


@given(st.binary(max_size=2000))
def test_any_bytes_are_classified_without_failing(data: bytes) -> None:
    assert read_reply(data).kind in ("hard-bounce", "soft-bounce", "unsubscribe", "other")
