"""The states a stored row can be in, one StrEnum per table. The values are the strings
stored in the status columns (so no migration was needed to introduce them); compare and
assign members, never bare strings."""

from __future__ import annotations

from enum import StrEnum

from digest.ingest.ledger import DumpStatus  # a dump's states are ingest's words

__all__ = [
    "UNSUBSCRIBED_ERROR",
    "DeliveryStatus",
    "DigestStatus",
    "DumpStatus",
    "SubscriberStatus",
]

# the last_error of a delivery skipped because its reader unsubscribed
UNSUBSCRIBED_ERROR = "subscriber unsubscribed"


class DigestStatus(StrEnum):
    """A digest is stored once published (feeds and web copy follow from the state)."""

    PUBLISHED = "published"


class DeliveryStatus(StrEnum):
    """One (digest, subscriber) message: PENDING until a worker claims it (SENDING), then
    SENT once the server accepted it, FAILED for good (5xx, or too old), or SKIPPED (the
    subscriber left, or chose no section of this digest)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class SubscriberStatus(StrEnum):
    """ACTIVE receives digests; UNSUBSCRIBED asked to stop; BOUNCED after repeated
    permanent failures."""

    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
