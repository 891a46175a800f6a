"""One-off notices (the confirmation of a signup, the admin's stale-source alert) are
built by one builder and DKIM-signed when a key is configured: dkimpy verifies what the
transport received, and any change to the message breaks the signature."""

from __future__ import annotations

import base64
import mailbox
import subprocess
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.app import App, delivering, make_app, subscribing
from digest.config import DigestSection, EmailSection, ScheduleSection, Settings

dkim = pytest.importorskip("dkim")


def signed_app(tmp_path: Path) -> tuple[App, bytes]:
    """An app that writes its mail to a Maildir, with a fresh DKIM key; and the DNS
    record of that key."""
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    settings = Settings(
        digest=DigestSection(
            dumps_dir=str(tmp_path / "dumps"),
            state_dir=str(tmp_path / "state"),
            base_url="https://news.example.org",
        ),
        email=EmailSection(
            transport="maildir",
            sender="News <news@example.org>",
            dkim_key_file=str(key),
            dkim_selector="s1",
            recipients=[],
        ),
        schedule=ScheduleSection(admin_email="admin@example.org"),
        base_dir=tmp_path,
        source="test",
    )
    return make_app(settings), b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def received(app: App) -> list[bytes]:
    """The raw messages the transport took, as written."""
    box = mailbox.Maildir(app.settings.outbox_dir, create=False)
    return [box.get_bytes(key).replace(b"\n", b"\r\n") for key in box.iterkeys()]


def verified(raw: bytes, record: bytes) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s1._domainkey.example.org."
        return record

    return bool(dkim.verify(raw, dnsfunc=dns))


def parsed(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_the_stale_source_alert_is_dkim_signed(tmp_path: Path) -> None:
    app, record = signed_app(tmp_path)
    assert (
        delivering.alert_admin(app, "digest: no new dumps", "no new dump for 3 days")
        == "admin@example.org"
    )
    [raw] = received(app)
    msg = parsed(raw)
    assert msg["To"] == "admin@example.org" and msg["Subject"] == "digest: no new dumps"
    assert msg["Date"] and msg["Message-ID"] and msg["Auto-Submitted"] == "auto-generated"
    assert "List-Id" not in msg  # the admin's alert is not mail of the list
    assert verified(raw, record)
    assert not verified(raw.replace(b"3 days", b"9 days"), record)


def test_a_signup_confirmation_is_dkim_signed_and_names_the_list(tmp_path: Path) -> None:
    app, record = signed_app(tmp_path)
    assert (
        subscribing.request_subscription(app, "ada@example.org", [], "192.0.2.1").outcome == "send"
    )
    [raw] = received(app)
    msg = parsed(raw)
    assert msg["To"] == "ada@example.org" and msg["Subject"].startswith("Confirm your subscription")
    assert msg["List-Id"] == "Papers digest <papers-digest.example.org>"
    assert verified(raw, record)
    tampered = raw.replace(b"subscribe/confirm/", b"subscribe/confirm/x", 1)
    assert tampered != raw and not verified(tampered, record)
