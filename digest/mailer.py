"""Building messages and handing them to a transport (a Maildir outbox or SMTP)."""

from __future__ import annotations

import logging
import mailbox
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from types import TracebackType
from typing import Protocol

from .errors import ConfigError, DeliveryError
from .render import slugify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    sender: str
    to: str
    subject: str
    html: str
    text: str
    message_id: str
    date: datetime
    list_id: str


def sender_domain(sender: str) -> str:
    addr = parseaddr(sender)[1]
    return addr.rpartition("@")[2] or "localhost"


def new_message_id(sender: str) -> str:
    return make_msgid(domain=sender_domain(sender))


def list_id(title: str, sender: str, configured: str = "") -> str:
    if configured:
        return configured
    return f"{title} <{slugify(title)}.{sender_domain(sender)}>"


def build_message(out: Outgoing) -> EmailMessage:
    """multipart/alternative: text/plain first, then text/html."""
    msg = EmailMessage()
    msg["Subject"] = out.subject
    msg["From"] = out.sender
    msg["To"] = out.to
    msg["Date"] = format_datetime(out.date)
    msg["Message-ID"] = out.message_id
    msg["List-Id"] = out.list_id
    msg["MIME-Version"] = "1.0"
    msg.set_content(out.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(out.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


class PermanentFailure(Exception):
    """The server refused this message for good (5xx)."""


class TransientFailure(Exception):
    """Try again later (4xx, dropped connection, timeout)."""


class Transport(Protocol):
    name: str

    def __enter__(self) -> Transport: ...
    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def send(self, msg: EmailMessage, to: str) -> None: ...


class MaildirTransport:
    """Delivers into a Maildir folder: any mail client can open what was "sent"."""

    name = "maildir"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.box: mailbox.Maildir | None = None

    def __enter__(self) -> MaildirTransport:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.box = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            raise DeliveryError(f"{self.path}: cannot open the Maildir outbox: {exc}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.box = None

    def send(self, msg: EmailMessage, to: str) -> None:
        assert self.box is not None, "use the transport as a context manager"
        try:
            self.box.add(mailbox.MaildirMessage(msg))
        except OSError as exc:
            raise TransientFailure(f"{self.path}: {exc}") from exc


class SmtpTransport:
    """One reused SMTP connection; reconnects once if the server dropped it."""

    name = "smtp"

    def __init__(
        self, host: str, port: int, security: str, user: str, password: str, timeout: float
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.user, self.password, self.timeout = user, password, timeout
        self.conn: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        self.conn = self._connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                self.conn.close()
            self.conn = None

    def _connect(self) -> smtplib.SMTP:
        where = f"{self.host}:{self.port}"
        try:
            if self.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if self.user:
                conn.login(self.user, self.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP server {where} refused the login for {self.user!r}: {exc.smtp_code}",
                hint="check email.smtp_user and $DIGEST_EMAIL_SMTP_PASSWORD",
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"cannot reach SMTP server {where}: {exc or type(exc).__name__}",
                hint="undelivered messages stay pending for the next run",
            ) from None
        return conn

    def send(self, msg: EmailMessage, to: str) -> None:
        if self.conn is None:
            self.conn = self._connect()
        try:
            refused = self.conn.send_message(msg, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(to, (550, b"refused"))
            raise _failure(code, reply) from None
        except smtplib.SMTPResponseException as exc:
            raise _failure(exc.smtp_code, exc.smtp_error) from None
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self.conn.close()
            self.conn = None
            raise TransientFailure(f"connection lost: {exc}") from None
        if refused:
            code, reply = refused[to]
            raise _failure(code, reply)


def _failure(code: int, reply: bytes | str) -> Exception:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    message = f"{code} {text}".strip()
    return PermanentFailure(message) if 500 <= code < 600 else TransientFailure(message)


def make_transport(
    kind: str,
    *,
    outbox: Path,
    host: str = "localhost",
    port: int = 25,
    security: str = "none",
    user: str = "",
    password: str = "",
    timeout: float = 30.0,
) -> Transport:
    if kind == "maildir":
        return MaildirTransport(outbox)
    if kind == "smtp":
        return SmtpTransport(host, port, security, user, password, timeout)
    raise ConfigError(f"email.transport = {kind!r} is not one of maildir, smtp")
