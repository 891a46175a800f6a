"""Building messages (the transports that carry them are in transport.py, re-exported
here).

A digest's e-mail is rendered (and its CSS inlined) once per variant; ``MessageTemplate``
turns that into the message's bytes once, leaving slots for what differs per subscriber
(To, Message-ID, List-Unsubscribe and the unsubscribe token in both bodies), so building
each subscriber's copy is a join of byte strings, not a MIME encoding.
"""

from __future__ import annotations

import binascii
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path

from digest.addresses import TOKEN_RE
from digest.errors import ConfigError
from digest.mail.transport import (
    MaildirTransport,
    PermanentFailure,
    SmtpTransport,
    TransientFailure,
    Transport,
    make_transport,
)
from digest.text import one_line
from digest.urls import slugify

__all__ = [
    "PLACEHOLDER",
    "DkimSigner",
    "Envelope",
    "Letter",
    "MaildirTransport",
    "MessageTemplate",
    "PermanentFailure",
    "SmtpTransport",
    "TransientFailure",
    "Transport",
    "encoded_size",
    "list_id",
    "make_transport",
    "new_message_id",
    "quoted_printable",
    "verp_address",
]

log = logging.getLogger(__name__)

# Stands for a subscriber's unsubscribe token in rendered variants; as long as a real one
# (secrets.token_urlsafe(32)), so a variant's size is its subscribers' size.
PLACEHOLDER = "UNSUBSCRIBExTOKENxPLACEHOLDERxxxxxxxxxxxxxx"
DKIM_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)


def sender_domain(sender: str) -> str:
    addr = parseaddr(sender)[1]
    return addr.rpartition("@")[2] or "localhost"


MESSAGE_ID_LEFT = re.compile(r"[0-9a-f]{32}")  # the random part of our Message-IDs


def new_message_id(sender: str) -> str:
    """A Message-ID that reveals nothing (no time, process, host or row id): 128 random
    bits, in lowercase hex so it survives an MTA that folds the case of a VERP address."""
    return f"<{secrets.token_hex(16)}@{sender_domain(sender)}>"


def verp_address(bounce_address: str, message_id: str) -> str:
    """The envelope sender of one message (email.bounce_address): ``local+ID@domain``,
    where ID is the random part of its Message-ID, so a bounce sent there names the
    message (and so the subscriber) without carrying their token."""
    local, at, domain = bounce_address.rpartition("@")
    left = message_id.strip("<>").partition("@")[0]
    if not at or not MESSAGE_ID_LEFT.fullmatch(left):
        return bounce_address
    return f"{local}+{left}@{domain}"


def list_id(title: str, sender: str, configured: str = "") -> str:
    if configured:
        return configured
    return f"{title} <{slugify(title)}.{sender_domain(sender)}>"


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Letter:
    """One rendered variant of a digest: the token appears as PLACEHOLDER."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Envelope:
    """What every message of a list shares."""

    sender: str  # the From header
    list_id: str
    unsubscribe_url: str  # https link containing PLACEHOLDER
    unsubscribe_mailto: str  # an address; the token goes in the subject


class MessageTemplate:
    """A variant's message as bytes with slots for what differs per subscriber."""

    def __init__(
        self, letter: Letter, envelope: Envelope, date: datetime, signer: DkimSigner | None = None
    ) -> None:
        boundary = "=_" + secrets.token_hex(12)  # "=_" never occurs in quoted-printable
        self._head = _shared_headers(letter.subject, envelope, date, boundary)
        url_head, _, url_tail = envelope.unsubscribe_url.partition(PLACEHOLDER)
        mailto = f"mailto:{envelope.unsubscribe_mailto}?subject=unsubscribe%20"
        self._unsub = (
            f"List-Unsubscribe: <{mailto}".encode(),
            f">,\r\n <{url_head}".encode(),
            f"{url_tail}>\r\n".encode(),
        )
        part = '--{b}\r\nContent-Type: text/{t}; charset="utf-8"\r\n' + (
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        self._text_head = part.format(b=boundary, t="plain").encode()
        self._html_head = ("\r\n" + part.format(b=boundary, t="html")).encode()
        self._end = f"\r\n--{boundary}--\r\n".encode()
        self._text = _qp_parts(letter.text)
        self._html = _qp_parts(letter.html)
        self.signer = signer

    def render(self, to: str, message_id: str, token: str, name: str = "") -> bytes:
        """The complete message for one subscriber (DKIM-signed when a signer is set)."""
        tok = self._token(token)
        slot = b"=\r\n" + tok + b"=\r\n"
        return self._assemble(
            to, message_id, tok, name, slot.join(self._text), slot.join(self._html)
        )

    @staticmethod
    def _token(token: str) -> bytes:
        if not TOKEN_RE.fullmatch(token):
            raise ValueError("malformed unsubscribe token")
        return token.encode("ascii")

    def _assemble(
        self, to: str, message_id: str, tok: bytes, name: str, text: bytes, html: bytes
    ) -> bytes:
        """The headers around the two encoded parts, signed when a signer is set."""
        u1, u2, u3 = self._unsub
        msg = b"".join(
            (
                to_header(to, name),
                b"Message-ID: " + message_id.encode("ascii") + b"\r\n",
                u1 + tok + u2 + tok + u3,
                self._head,
                self._text_head,
                text,
                self._html_head,
                html,
                self._end,
            )
        )
        return self.signer.sign(msg) + msg if self.signer else msg


SHOWN_NAME = 200  # characters of a display name put in the To header


def to_header(address: str, name: str = "") -> bytes:
    """The To header line: the address, with the name (if any) as a display name that
    cannot end the header, add one, or change the address: control characters and line
    breaks become spaces; an ASCII name is a quoted string when it needs one
    (``formataddr``), any other is RFC 2047 encoded words (``Header``, base64/Q). The
    line is built here rather than refolded by the email package, whose folding of a
    long display name drops its quotes."""
    if any(c in address for c in '\r\n\0<>" ') or not address.isascii():
        raise ValueError(f"malformed recipient address {address!r}")
    shown = header_text(name)[:SHOWN_NAME]  # "=?" would start an encoded word, even quoted
    if not shown:
        return f"To: {address}\r\n".encode("ascii")
    if shown.isascii():  # one line: under 998 characters with any valid address
        return f"To: {formataddr((shown, address))}\r\n".encode("ascii")
    words = Header(shown, "utf-8", header_name="To").encode(linesep="\r\n")
    return f"To: {words}\r\n <{address}>\r\n".encode("ascii")


def header_text(text: str) -> str:
    """Header text from outside: on one line, with "=?" (which would start an encoded
    word that readers decode into other text) split."""
    return one_line(text).replace("=?", "= ?")


def _shared_headers(subject: str, envelope: Envelope, date: datetime, boundary: str) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    # dump text reaches the subject (theme names): "=?" would start an encoded word
    # that readers decode into other text, so it is split
    msg["Subject"] = header_text(subject)
    msg["From"] = envelope.sender
    msg["Date"] = format_datetime(date)
    msg["List-Id"] = envelope.list_id
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    return msg.as_bytes().partition(b"\r\n\r\n")[0] + b"\r\n\r\n"


def encoded_size(html: str) -> int:
    """Bytes of an HTML part as it travels (quoted-printable): what clipping counts."""
    return len(quoted_printable(html))


def _qp_parts(text: str) -> list[bytes]:
    """``text`` quoted-printable encoded, cut where PLACEHOLDER was: joining the parts
    with ``=\\r\\n<token>=\\r\\n`` (soft line breaks around it) encodes the text with
    the token in its place."""
    return [quoted_printable(part) for part in text.split(PLACEHOLDER)]


def quoted_printable(part: str) -> bytes:
    """``part`` quoted-printable encoded (CRLF line ends, lines within 76 with their
    soft break): pieces encoded apart and joined with soft line breaks are the whole's."""
    encoded = binascii.b2a_qp(part.replace("\r\n", "\n").encode("utf-8"), istext=True)
    head, newline, tail = encoded.rpartition(b"\n")
    if len(tail) >= 76:  # a soft break will follow: keep the line within 76 with its "="
        cut = 75 - (2 if tail[73:74] == b"=" else 1 if tail[74:75] == b"=" else 0)
        tail = tail[:cut] + b"=\n" + tail[cut:]
    return (head + newline + tail).replace(b"\n", b"\r\n")


class DkimSigner:
    """Signs each message with an RSA key read from a file (dkimpy)."""

    def __init__(self, selector: str, domain: str, key_file: Path) -> None:
        self.selector, self.domain = selector.encode(), domain.encode()
        where = "email.dkim_key_file"
        try:
            self.key = key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {key_file}: {exc.strerror}") from None
        try:
            self.sign(b"From: a@b\r\nSubject: key check\r\n\r\nok\r\n")
        except Exception as exc:  # dkimpy raises several kinds for a bad key
            raise ConfigError(
                f"{where}: {key_file} is not a usable private key: {type(exc).__name__}",
                hint="give a PEM RSA private key",
            ) from None

    def sign(self, message: bytes) -> bytes:
        import dkim  # dkimpy: imported only when signing is configured

        present = [h for h in DKIM_HEADERS if h + b":" in message]
        signature: bytes = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=present,
        )
        return signature
