"""The outbox repository: delivery rows and the rendered variants they point to. One row
per (digest, subscriber), created with the digest and before anything is sent; what a
run counts (due, waiting, unfinished, by status) and what a delivery report finds. The
claims on the rows, their leases and how a row is finished are in claims.py:
pending -> sending -> sent | failed | pending again (temporary failure); skipped when the
subscriber chose none of the digest's themes or left. (Convention: state/handles.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Integer, Table, Text, func, insert, literal, or_, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from digest.state.handles import Tx
from digest.state.models import Delivery, Digest, DigestVariant, Subscriber, UTCDateTime
from digest.state.states import DeliveryStatus, SubscriberStatus

_D = cast(Table, Delivery.__table__)
_S = cast(Table, Subscriber.__table__)


def add_variant(
    tx: Tx, digest_id: int, key: str, sections: Sequence[str], subject: str, html: str, text: str
) -> int:
    """A rendered variant of the digest (its letter): its id."""
    row = tx.execute(
        insert(DigestVariant)
        .values(
            digest_id=digest_id,
            key=key,
            sections=list(sections),
            subject=subject,
            html=html,
            text=text,
        )
        .returning(DigestVariant.id)
    )
    return int(row.scalar_one())


def theme_choices(tx: Tx) -> list[tuple[str, tuple[str, ...]]]:
    """The distinct theme lists of the active subscribers, as stored (JSON text) and as
    read: a handful, however long the list is."""
    stored = cast(Table, Subscriber.__table__).c.themes
    as_text = stored.cast(Text)
    rows = tx.execute(
        select(as_text).where(Subscriber.status == SubscriberStatus.ACTIVE).distinct()
    )
    return [(raw, tuple(json.loads(raw) or ())) for (raw,) in rows if raw is not None]


class RandomHex(FunctionElement[str]):
    """32 random lowercase hex digits, made by the database for each row."""

    type = Text()
    inherit_cache = True


@compiles(RandomHex)
def _random_hex(element: RandomHex, compiler: Any, **kw: Any) -> str:
    return "lower(hex(randomblob(16)))"  # SQLite


@compiles(RandomHex, "postgresql")
def _random_hex_pg(element: RandomHex, compiler: Any, **kw: Any) -> str:
    return "replace(CAST(gen_random_uuid() AS TEXT), '-', '')"  # PostgreSQL 13+


def insert_for_themes(
    tx: Tx,
    digest_id: int,
    themes: str,
    status: str,
    variant_id: int | None,
    error: str | None,
    prefix: str,
    domain: str,
    now: datetime,
) -> int:
    """One row per active subscriber whose stored theme list is `themes`, made in the
    database (INSERT … SELECT), never loading the subscribers; a pending row's Message-ID
    is `prefix` + 128 random bits made by the database + `domain`. Returns the count."""
    message_id = (
        literal(prefix) + RandomHex() + literal(domain)
        if status == DeliveryStatus.PENDING
        else literal("")
    )
    rows = select(
        literal(digest_id),
        _S.c.id,
        literal(variant_id, Integer),
        _S.c.address,
        literal(status),
        literal(0),
        literal(error, Text),
        message_id,
        literal(now, UTCDateTime()),
    ).where(_S.c.status == SubscriberStatus.ACTIVE, _S.c.themes.cast(Text) == themes)
    columns = [
        "digest_id",
        "subscriber_id",
        "variant_id",
        "address",
        "status",
        "attempts",
        "last_error",
        "message_id",
        "created_at",
    ]
    return _count(tx.execute(insert(_D).from_select(columns, rows)))


def waiting_count(tx: Tx, now: datetime) -> int:
    """Pending deliveries whose next attempt is later than now."""
    return int(
        tx.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at > now)
        )
        or 0
    )


@dataclass(frozen=True)
class StoredLetter:
    """A rendered variant as stored, with its digest's publication time."""

    subject: str
    html: str
    text: str
    published_at: datetime


def letters(tx: Tx, variant_ids: Iterable[int]) -> dict[int, StoredLetter]:
    """The rendered variants by id, with their digest's publication time."""
    rows = tx.execute(
        select(
            DigestVariant.id,
            DigestVariant.subject,
            DigestVariant.html,
            DigestVariant.text,
            Digest.published_at,
        )
        .join(Digest, Digest.id == DigestVariant.digest_id)
        .where(DigestVariant.id.in_(list(variant_ids)))
    )
    return {vid: StoredLetter(subject, html, text, when) for vid, subject, html, text, when in rows}


def unfinished(tx: Tx, now: datetime) -> int:
    """Rows a worker holds ('sending'), or pending, due, to an active subscriber: what a
    draining worker waits for."""
    due = (
        select(func.count())
        .select_from(_D)
        .join(_S, _S.c.id == _D.c.subscriber_id)
        .where(
            _D.c.variant_id.is_not(None),
            or_(
                _D.c.status == DeliveryStatus.SENDING,
                (_D.c.status == DeliveryStatus.PENDING)
                & (_S.c.status == SubscriberStatus.ACTIVE)
                & or_(_D.c.next_attempt_at.is_(None), _D.c.next_attempt_at <= now),
            ),
        )
    )
    return int(tx.scalar(due) or 0)


def pending_count(tx: Tx) -> int:
    """Rows not finished: pending (due or not) or being sent."""
    return int(
        tx.scalar(
            select(func.count())
            .select_from(_D)
            .where(
                _D.c.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
                _D.c.variant_id.is_not(None),
            )
        )
        or 0
    )


def skip_inactive(tx: Tx) -> int:
    """Pending deliveries to subscribers no longer active are skipped."""
    skipped = 0
    for status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        gone = select(Subscriber.id).where(
            Subscriber.id == Delivery.subscriber_id, Subscriber.status == status
        )
        result = tx.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.PENDING, gone.exists())
            .values(status=DeliveryStatus.SKIPPED, last_error=f"subscriber {status}")
        )
        skipped += _count(result)
    return skipped


def skip_pending(tx: Tx, subscriber_id: int, error: str) -> None:
    """The subscriber's pending deliveries are skipped (they left, or bounced)."""
    tx.execute(
        update(_D)
        .where(_D.c.subscriber_id == subscriber_id, _D.c.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.SKIPPED, last_error=error)
    )


@dataclass(frozen=True)
class DeliveryRef:
    """A delivery row, as a delivery report names it."""

    id: int
    subscriber_id: int
    status: str


def by_message_id(tx: Tx, message_id: str) -> DeliveryRef | None:
    found = tx.execute(
        select(_D.c.id, _D.c.subscriber_id, _D.c.status).where(_D.c.message_id == message_id)
    ).first()
    return None if found is None else DeliveryRef(found[0], found[1], str(found[2]))


def fail(tx: Tx, delivery_id: int, error: str) -> None:
    """The delivery failed after all (a delivery report came back)."""
    tx.execute(
        update(_D)
        .where(_D.c.id == delivery_id)
        .values(status=DeliveryStatus.FAILED, last_error=error)
    )


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
