"""Transports: where a built message goes. A Maildir folder (the default: any mail
client can open what was "sent") or an SMTP server over one reused connection."""

from __future__ import annotations

import contextlib
import logging
import mailbox
import smtplib
import socket
import ssl
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from types import TracebackType
from typing import Protocol

from digest.errors import ConfigError, DeliveryError

log = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """The server refused this message for good (5xx)."""


class TransientFailure(Exception):
    """Try again later (4xx, dropped connection, timeout)."""


class ConnectionTrouble(TransientFailure):
    """The connection timed out or was lost: counts towards the circuit breaker, since
    a stalled server shows up across messages, not in one."""


class SenderRefused(Exception):
    """The server refused the envelope sender (its answer to MAIL FROM, 4xx or 5xx):
    the relay or the sender's domain is at fault, not the recipient."""


class _MailRefused(smtplib.SMTPResponseException):
    """A refused MAIL FROM, told apart from a refused RCPT or DATA."""


class Transport(Protocol):
    name: str

    def __enter__(self) -> Transport: ...
    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def send(self, msg: EmailMessage | bytes, to: str, *, sender: str = "") -> None: ...


def abort(transport: Transport) -> None:
    """Cut a transport's connection from another thread (a second Ctrl-C): whatever it
    was waiting for fails at once."""
    cut = getattr(transport, "abort", None)
    if cut is not None:
        cut()


def handed(transport: Transport) -> bool:
    """Whether the message being sent was handed over whole (the server may have
    accepted it even if its reply never comes)."""
    return bool(getattr(transport, "handed", False))


def _wire(msg: EmailMessage | bytes, sender: str) -> tuple[bytes, str]:
    """The message's bytes and the envelope sender (the From address unless given)."""
    if isinstance(msg, bytes):
        return msg, sender
    return msg.as_bytes(policy=policy.SMTP), sender or parseaddr(str(msg["From"]))[1]


class MaildirTransport:
    """Delivers into a Maildir folder: any mail client can open what was "sent"."""

    name = "maildir"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.box: mailbox.Maildir | None = None

    def __enter__(self) -> MaildirTransport:
        try:
            for sub in ("tmp", "new", "cur"):  # all three before use: two senders (web
                # requests at once) may both find the folder new
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            self.box = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            raise DeliveryError(f"{self.path}: cannot open the Maildir outbox: {exc}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.box = None

    def send(self, msg: EmailMessage | bytes, to: str, *, sender: str = "") -> None:
        assert self.box is not None, "use the transport as a context manager"
        data = _wire(msg, sender)[0].replace(b"\r\n", b"\n")
        try:
            self.box.add(data)
        except OSError as exc:
            raise TransientFailure(f"{self.path}: {exc}") from exc


class SmtpTransport:
    """One reused SMTP connection; a connection the server dropped while idle is
    reopened once, before anything of the message was sent."""

    name = "smtp"

    def __init__(
        self, host: str, port: int, security: str, user: str, password: str, timeout: float
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.user, self.password, self.timeout = user, password, timeout
        self.conn: smtplib.SMTP | None = None
        self.used = False  # has the current connection carried a message?
        self.handed = False  # the current message's final "." was written

    def __enter__(self) -> SmtpTransport:
        self._connection()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                self.conn.close()
            self.conn = None

    def _connection(self) -> smtplib.SMTP:
        if self.conn is None:
            self.conn, self.used = self._connect(), False
        return self.conn

    def abort(self) -> None:
        conn = self.conn
        sock = getattr(conn, "sock", None) if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _drop(self) -> None:
        if self.conn is not None:
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
            conn.ehlo_or_helo_if_needed()
        except (smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:
            raise DeliveryError(
                f"SMTP server {where} refused the session: "
                f"{_answer(exc.smtp_code, exc.smtp_error)}",
                hint="the relay's own log says why it turns this host away",
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP server {where} refused the login for {self.user!r}: {exc.smtp_code}",
                hint="check email.smtp_user and $DIGEST_EMAIL_SMTP_PASSWORD",
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(
                f"SMTP server {where} does not offer STARTTLS",
                hint='set email.smtp_security = "none" for a server that takes plain SMTP '
                '(a local relay), or "ssl" for one that expects TLS from the start (port 465)',
            ) from None
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"TLS with SMTP server {where} failed: {_tls_reason(exc)}",
                hint=(
                    "the server does not speak TLS from the start: set email.smtp_security = "
                    '"starttls" (port 587) or "none"'
                    if self.security == "ssl" and "WRONG_VERSION_NUMBER" in str(exc)
                    else "check the server's certificate and email.smtp_host"
                ),
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"cannot reach SMTP server {where}: {exc or type(exc).__name__}",
                hint="check email.smtp_host and email.smtp_port, and that the server is running"
                + (
                    "; a server that expects TLS from the start (port 465) needs "
                    'email.smtp_security = "ssl"'
                    if self.security != "ssl"
                    and isinstance(exc, (TimeoutError, smtplib.SMTPServerDisconnected))
                    else ""
                ),
            ) from None
        return conn

    def send(self, msg: EmailMessage | bytes, to: str, *, sender: str = "") -> None:
        """Raises PermanentFailure (5xx), TransientFailure (4xx), ConnectionTrouble
        (connection lost, timeout), or DeliveryError when the server cannot be reached.
        Where the server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in one
        write and their three replies are read after it: one round trip, not three."""
        self.handed = False
        data, sender = _wire(msg, sender)
        for attempt in range(2):
            conn, reused = self._connection(), self.used
            try:
                if conn.has_extn("pipelining"):
                    self._pipelined(conn, sender, to)
                else:
                    _expect(conn.mail(sender), (250,), _MailRefused)
                    _expect(conn.rcpt(to), (250, 251))
                    _expect(conn.docmd("data"), (354,))
                break
            except _MailRefused as exc:
                self._after_refusal(exc.smtp_code)
                raise SenderRefused(_answer(exc.smtp_code, exc.smtp_error)) from None
            except smtplib.SMTPResponseException as exc:
                self._after_refusal(exc.smtp_code)
                raise _failure(exc.smtp_code, exc.smtp_error) from None
            except (OSError, smtplib.SMTPServerDisconnected) as exc:
                self._drop()
                if not reused or attempt:  # an idle connection the server closed: once more
                    raise ConnectionTrouble(f"connection lost: {_why(exc)}") from None
        try:
            conn.send(_dot_stuffed(data) + b".\r\n")
            self.handed = True
            _expect(conn.getreply(), (250,))
        except smtplib.SMTPResponseException as exc:
            self._after_refusal(exc.smtp_code)
            raise _failure(exc.smtp_code, exc.smtp_error) from None
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            raise ConnectionTrouble(f"connection lost: {_why(exc)}") from None
        self.used = True

    def _pipelined(self, conn: smtplib.SMTP, sender: str, to: str) -> None:
        """MAIL FROM, RCPT TO and DATA in one write; the replies read in order. A refused
        MAIL or RCPT makes the server refuse DATA too (503/554), so nothing is sent."""
        conn.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{to}>\r\nDATA\r\n")
        replies = [conn.getreply() for _ in range(3)]
        mail, rcpt, data = replies
        _expect(mail, (250,), _MailRefused)
        if data[0] == 354 and rcpt[0] not in (250, 251):  # never: a server must refuse DATA
            conn.send(b".\r\n")  # end the (empty) message it is waiting for
            conn.getreply()
        _expect(rcpt, (250, 251))
        _expect(data, (354,))

    def _after_refusal(self, code: int) -> None:
        if code == 421 or self.conn is None:  # 421: the server is closing the connection
            self._drop()
            return
        try:
            self.conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


def _tls_reason(exc: ssl.SSLError) -> str:
    """What went wrong in words, not OpenSSL's code and source line."""
    if "WRONG_VERSION_NUMBER" in str(exc):
        return "the server answered in plain text, not TLS"
    return str(exc.reason or exc).replace("_", " ").lower()


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _dot_stuffed(data: bytes) -> bytes:
    """The message as SMTP DATA wants it (RFC 5321 4.5.2: a line starting with "." gets
    one more), ending in CRLF; what smtplib does with a regex, without one."""
    stuffed = (b"." + data if data[:1] == b"." else data).replace(b"\n.", b"\n..")
    return stuffed if stuffed.endswith(b"\r\n") else stuffed + b"\r\n"


def _expect(
    reply: tuple[int, bytes],
    ok: tuple[int, ...],
    refused: type[smtplib.SMTPResponseException] = smtplib.SMTPResponseException,
) -> None:
    if reply[0] not in ok:
        raise refused(*reply)


def _answer(code: int, reply: bytes | str) -> str:
    """A server's answer as one printable line (a multi-line reply joined)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(f"{code} {text}".split())


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
