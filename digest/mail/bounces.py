"""Mail that readers and servers send back: unsubscribe requests to the List-Unsubscribe
``mailto:`` address, and delivery status notifications (RFC 3464 bounces).

``read_reply`` tells what one message is (pure: no state). A DSN (multipart/report with
a message/delivery-status part) is a *hard bounce* when a recipient's Action is
``failed`` with a 5.x.x Status, and is ignored when it is temporary (4.x.x, or
``delayed``). The message it is about is found by a secret it carries, never by an
address a stranger could write: the VERP tag of the address it was sent to (email.bounce_address,
tagged ``local+ID@domain``, ID being the random part of the digest's Message-ID), the original
Message-ID in the returned headers, or the unsubscribe token in the returned
List-Unsubscribe. An unsubscribe request is a message whose Subject is
``unsubscribe TOKEN``, what the List-Unsubscribe mailto link writes.

``apply_reply`` applies it in the caller's transaction, idempotently: a second copy of
the same message changes nothing. A hard bounce marks the subscriber bounced (and the
message failed); an unsubscribe request unsubscribes them; someone who unsubscribed
stays so. Tokens are never logged or printed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser

from digest.mail.message import MESSAGE_ID_LEFT, TOKEN_RE
from digest.mail.subscribers import by_token, unsubscribe
from digest.state import outbox
from digest.state import subscribers as stored
from digest.state.handles import Tx
from digest.state.outbox import DeliveryRef
from digest.state.states import DeliveryStatus, SubscriberStatus
from digest.state.subscribers import SubscriberRow

log = logging.getLogger(__name__)

__all__ = ["Outcome", "Reply", "apply_reply", "read_reply"]

ADDRESS_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
VERP_TAG = re.compile(r"\+([0-9a-fA-F]{32})@")
STATUS = re.compile(r"([245])\.\d{1,3}\.\d{1,3}")
UNSUBSCRIBE_SUBJECT = re.compile(
    r"^\s*(?:re:\s*)?unsubscribe\s+(" + TOKEN_RE.pattern + r")\s*$", re.IGNORECASE
)
TOKEN_IN_LINK = re.compile(r"(?:/unsubscribe/|unsubscribe%20)(" + TOKEN_RE.pattern + r")")


@dataclass(frozen=True)
class Reply:
    """What one message sent back is. ``kind``: "hard-bounce", "soft-bounce",
    "unsubscribe" or "other"."""

    kind: str
    status: str = ""  # the DSN status of a bounce (5.1.1)
    message_ids: tuple[str, ...] = ()  # digest messages it names (VERP tag, Message-ID)
    tokens: tuple[str, ...] = ()  # unsubscribe tokens it carries
    why: str = ""  # for "other": why it was not acted on

    def __repr__(self) -> str:  # never show a token
        return f"Reply({self.kind!r}, status={self.status!r}, ids={len(self.message_ids)})"


@dataclass(frozen=True)
class Outcome:
    """What applying a reply did, as one line (an address, never a token)."""

    action: str  # "bounced" | "unsubscribed" | "already" | "ignored" | "unknown"
    line: str


def read_reply(data: bytes, recipients: Iterable[str] = ()) -> Reply:
    """Classify one message (its bytes as received). ``recipients``: the envelope
    recipient(s) the MTA gave, when it was piped (they may carry the VERP tag)."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(data)
    except Exception as exc:  # the email package fails in many ways on hostile input
        return Reply("other", why=f"not a readable message ({type(exc).__name__})")
    report = _delivery_status(msg)
    if report is not None:
        verp = _verp_ids(msg, recipients)
        original = _returned_headers(msg)
        ids = verp + _message_ids(original)
        tokens = _tokens(original)
        action, status = report
        if action == "failed" and status.startswith("5"):
            return Reply("hard-bounce", status, ids, tokens)
        return Reply("soft-bounce", status or action, ids, tokens)
    subject = _header(msg, "Subject")
    match = UNSUBSCRIBE_SUBJECT.match(subject)
    if match:
        return Reply("unsubscribe", tokens=(match.group(1),))
    if subject.strip().lower().startswith("unsubscribe"):
        return Reply("other", why="an unsubscribe request without a valid token")
    return Reply("other", why="not a delivery report or an unsubscribe request")


def _header(msg: Message, name: str) -> str:
    try:
        return str(msg.get(name, "") or "")
    except Exception:  # a malformed header the parser deferred
        return ""


def _delivery_status(msg: Message) -> tuple[str, str] | None:
    """(action, status) of a DSN, the most severe recipient first; None when the
    message is no DSN."""
    if msg.get_content_type() != "multipart/report":
        return None
    found: list[tuple[str, str]] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks:
            if not isinstance(block, Message):
                continue
            action = _header(block, "Action").strip().lower()
            match = STATUS.search(_header(block, "Status"))
            if action:
                found.append((action, match.group() if match else ""))
    if not found:
        return None
    hard = [f for f in found if f[0] == "failed" and f[1].startswith("5")]
    return (hard or found)[0]


def _verp_ids(msg: Message, recipients: Iterable[str]) -> tuple[str, ...]:
    seen: list[str] = []
    values = [*recipients, *(_header(msg, h) for h in ADDRESS_HEADERS)]
    for value in values:
        for tag in VERP_TAG.findall(value):
            if tag.lower() not in seen:
                seen.append(tag.lower())
    return tuple(seen)


def _returned_headers(msg: Message) -> Message | None:
    """The headers of the message that bounced, as the report returns them."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return HeaderParser(policy=policy.default).parsestr(raw.decode("utf-8", "replace"))
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
    return None


def _message_ids(original: Message | None) -> tuple[str, ...]:
    if original is None:
        return ()
    left = _header(original, "Message-ID").strip().strip("<>").partition("@")[0].lower()
    return (left,) if MESSAGE_ID_LEFT.fullmatch(left) else ()


def _tokens(original: Message | None) -> tuple[str, ...]:
    if original is None:
        return ()
    return tuple(dict.fromkeys(TOKEN_IN_LINK.findall(_header(original, "List-Unsubscribe"))))


# --------------------------------------------------------------------------- applying


def apply_reply(tx: Tx, reply: Reply, domain: str) -> Outcome:
    """Apply ``reply`` in the caller's transaction (begun as a write). ``domain``: the
    domain of the list's Message-IDs (the From address's)."""
    if reply.kind == "unsubscribe":
        done = unsubscribe(tx, reply.tokens[0])
        if done is None:
            return Outcome("unknown", "unsubscribe request: no subscriber has this token")
        if done.already:
            return Outcome("already", f"unsubscribe request: {done.address} already unsubscribed")
        return Outcome("unsubscribed", f"unsubscribe request: {done.address} unsubscribed")
    if reply.kind == "soft-bounce":
        return Outcome("ignored", f"temporary delivery failure ({reply.status}): ignored")
    if reply.kind == "other":
        return Outcome("ignored", f"{reply.why}: ignored")
    delivery, sub = _bounced(tx, reply, domain)
    if sub is None:
        return Outcome("unknown", f"hard bounce ({reply.status}) of no message of this list")
    if delivery is not None and delivery.status != DeliveryStatus.FAILED:
        outbox.fail(tx, delivery.id, f"bounced later: {reply.status}")
    if sub.status != SubscriberStatus.ACTIVE:
        line = f"hard bounce ({reply.status}): {sub.address} already {sub.status}"
        return Outcome("already", line)
    stored.change(tx, [(sub.id, {"status": SubscriberStatus.BOUNCED})])
    outbox.skip_pending(tx, sub.id, "subscriber bounced")
    log.info("subscriber #%d marked bounced by a delivery report (%s)", sub.id, reply.status)
    return Outcome("bounced", f"hard bounce ({reply.status}): {sub.address} marked bounced")


def _bounced(tx: Tx, reply: Reply, domain: str) -> tuple[DeliveryRef | None, SubscriberRow | None]:
    """The delivery and subscriber a hard bounce names, by its secrets only."""
    for left in reply.message_ids:
        delivery = outbox.by_message_id(tx, f"<{left}@{domain}>")
        if delivery is not None:
            return delivery, stored.by_id(tx, delivery.subscriber_id)
    for token in reply.tokens:
        sub = by_token(tx, token)
        if sub is not None:
            return None, sub
    return None, None
