"""The one builder of every one-off notice: the confirmation and the welcome of a new
subscriber, the stale-source alert to the admin, anything not an issue of the list.

A notice is built here and nowhere else: headers encoded by the email package (no CR/LF
or raw non-ASCII reaches a header), a Date, a Message-ID on the sender's domain,
Auto-Submitted, List-Id where the notice belongs to the list, the text part (and an HTML
alternative when given), then signed with DKIM when a key is configured
(email.dkim_key_file). `send` hands it to a transport and reports a failure as one
DeliveryError line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from digest.errors import DeliveryError
from digest.mail.message import (
    DkimSigner,
    PermanentFailure,
    TransientFailure,
    Transport,
    new_message_id,
)


@dataclass(frozen=True)
class Notice:
    """What a one-off message says, to whom."""

    to: str
    subject: str
    text: str
    html: str = ""  # an HTML alternative, when there is one
    list_id: str = ""  # the List-Id of the list the notice is about (none for the admin's)


def notice_message(notice: Notice, *, sender: str, when: datetime) -> EmailMessage:
    """The notice as a message, unsigned: text then HTML."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["Subject"] = notice.subject
    msg["From"] = sender
    msg["To"] = notice.to
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = new_message_id(sender)
    msg["Auto-Submitted"] = "auto-generated"
    if notice.list_id:
        msg["List-Id"] = notice.list_id
    msg.set_content(notice.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if notice.html:
        msg.add_alternative(notice.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


def build(
    notice: Notice, *, sender: str, when: datetime, signer: DkimSigner | None = None
) -> bytes:
    """The notice as the bytes that go out: DKIM-signed when `signer` is given."""
    data = notice_message(notice, sender=sender, when=when).as_bytes()
    return signer.sign(data) + data if signer is not None else data


def send(transport: Transport, data: bytes, to: str, *, envelope_from: str) -> None:
    """Hand a built notice to `transport`; DeliveryError naming `to` when it cannot."""
    try:
        with transport:
            transport.send(data, to, sender=envelope_from)
    except (PermanentFailure, TransientFailure, OSError) as exc:
        raise DeliveryError(f"{to}: not delivered: {exc}") from None
