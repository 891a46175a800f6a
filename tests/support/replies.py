"""Mail sent back to the list, as real MTAs write it (delivery status notifications in
Postfix's RFC 3464 layout; an unsubscribe request as a mail client writes it from the
List-Unsubscribe mailto link), and a real IMAP server (Debian's Dovecot) on loopback."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.support.net import free_port
from tests.support.waiting import HANG, wait_for

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def dsn(
    *,
    to: str,
    final_recipient: str,
    status: str = "5.1.1",
    action: str = "failed",
    original: EmailMessage | None = None,
    whole: bool = False,
    delivered_to: str = "",
) -> bytes:
    """A bounce as Postfix writes it: a human part, the delivery-status part, and the
    returned message's headers (``whole``: the message itself)."""
    diagnostic = f"smtp; 550 5.1.1 <{final_recipient}>: Recipient address rejected"
    boundary = "B0UND4RY.1733200000/mx.example.net"
    head = [
        f"Delivered-To: {delivered_to}" if delivered_to else "",
        "Return-Path: <>",
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)",
        "Subject: Undelivered Mail Returned to Sender",
        f"To: {to}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "Message-Id: <20261203100000.ABCDEF@mx.example.net>",
    ]
    parts = [
        "\r\n".join(h for h in head if h),
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients.",
        "",
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.net",
        "X-Postfix-Queue-ID: ABCDEF",
        "Arrival-Date: Thu,  3 Dec 2026 10:00:00 +0000 (UTC)",
        "",
        f"Final-Recipient: rfc822; {final_recipient}",
        f"Original-Recipient: rfc822;{final_recipient}",
        f"Action: {action}",
        f"Status: {status}",
        f"Diagnostic-Code: {diagnostic}",
        "",
    ]
    if original is not None:
        returned = original.as_bytes().decode("ascii", "replace").replace("\n", "\r\n")
        if not whole:
            returned = returned.partition("\r\n\r\n")[0] + "\r\n"
        kind = "message/rfc822" if whole else "text/rfc822-headers"
        parts += [
            f"--{boundary}",
            "Content-Description: Undelivered Message",
            f"Content-Type: {kind}",
            "",
            returned,
        ]
    parts += [f"--{boundary}--", ""]
    return "\r\n".join(parts).encode("ascii")


def auto_reply(to: str) -> bytes:
    return (
        f"From: ada@example.org\r\nTo: {to}\r\nSubject: Out of office\r\n"
        "Auto-Submitted: auto-replied\r\n\r\nI am away until Monday.\r\n"
    ).encode()


def unsubscribe_request(list_unsubscribe: str, sender: str) -> bytes:
    """What a mail client sends when the reader picks the mailto: of List-Unsubscribe."""
    mailto = next(p.strip(" <>") for p in list_unsubscribe.split(",") if "mailto:" in p)
    address, _, query = mailto.removeprefix("mailto:").partition("?")
    subject = unquote(query.removeprefix("subject="))
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, address, subject
    msg.set_content("This message was sent to unsubscribe.\n")
    return bytes(msg)


def add_to_maildir(folder: Path, name: str, data: bytes) -> Path:
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "tmp" / name).write_bytes(data)
    return (folder / "tmp" / name).rename(folder / "new" / name)


@dataclass(frozen=True)
class Imap:
    port: int
    user: str
    password: str


@contextmanager
def running_dovecot() -> Iterator[Imap]:
    """Debian's Dovecot serving IMAP on a loopback port, one static user, its mail in a
    temporary folder. `make test` installs dovecot-imapd (.ci/system-deps.sh); without it
    the test fails rather than skip: a skipped test would pass for one that ran."""
    if not Path(DOVECOT).exists():
        pytest.fail("dovecot-imapd is not installed: run `make test` (or apt-get install it)")
    if os.getuid() == 0:  # Dovecot serves no mail as root
        user, group = "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    else:
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    base = Path(tempfile.mkdtemp(prefix="digest-imap-"))
    base.chmod(0o755)
    for sub in ("run", "state", "home"):
        (base / sub).mkdir()
    shutil.chown(base / "home", user, group)
    port = free_port()
    conf = base / "dovecot.conf"
    conf.write_text(
        f"""base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain
disable_plaintext_auth = no
default_internal_user = {user}
default_login_user = {user}
default_internal_group = {group}
first_valid_uid = 0
passdb {{
  driver = static
  args = password=s3cret
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={base}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
    )
    server = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _listening(port) or server.poll() is not None, "Dovecot to listen")
        assert server.poll() is None, (base / "dovecot.log").read_text(errors="replace")
        yield Imap(port, "bounces", "s3cret")
    finally:
        server.terminate()
        server.wait(timeout=HANG)
        shutil.rmtree(base, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
