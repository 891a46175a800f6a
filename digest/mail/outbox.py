"""The delivery outbox in the state: one row per (digest, subscriber), created with the
digest and before anything is sent, then claimed, and finished only after the server
answered. pending -> sending -> sent | failed | pending again (temporary failure);
skipped when the subscriber chose none of the digest's themes or left."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from digest.mail import subscribers
from digest.mail.message import Letter
from digest.mail.variants import Personaliser, Selection, only, selection, variant_key
from digest.render.renderer import DigestView
from digest.state.models import Delivery, Digest, DigestVariant, Subscriber, UTCDateTime, utcnow
from digest.state.states import DeliveryStatus, SubscriberStatus


def add_variant(
    session: Session, digest_id: int, key: str, sections: Sequence[str], letter: Letter
) -> int:
    variant = DigestVariant(
        digest_id=digest_id,
        key=key,
        sections=list(sections),
        subject=letter.subject,
        html=letter.html,
        text=letter.text,
    )
    session.add(variant)
    session.flush()
    return variant.id


def add_deliveries(
    session: Session, rows: Sequence[Mapping[str, object]], now: datetime | None = None
) -> None:
    """Bulk insert of delivery rows (digest_id, subscriber_id, variant_id, address,
    status, message_id, last_error), created ``now``."""
    now = now or utcnow()
    for i in range(0, len(rows), 1000):
        chunk = [{"created_at": now, "attempts": 0, **r} for r in rows[i : i + 1000]]
        session.execute(insert(Delivery), chunk)


def selections(session: Session, view: DigestView, *, with_all: bool) -> set[Selection]:
    """The distinct section selections the active subscribers make of this digest."""
    slugs = [s.slug for s in view.sections]
    found = {selection(themes, slugs) for _, _, themes in subscribers.active(session)}
    if with_all:
        found.add(None)
    found.discard(())
    return found


def create_deliveries(
    session: Session,
    digest_id: int,
    view: DigestView,
    personaliser: Personaliser,
    letters: dict[str, Letter],
    new_message_id: Callable[[], str],
) -> tuple[int, int]:
    """One row per active subscriber, in the caller's transaction: pending with its
    variant, or skipped when none of their themes is in the digest. Returns
    (pending, skipped). ``letters`` holds variants already rendered, by key."""
    slugs = [s.slug for s in view.sections]
    variant_ids: dict[str, int] = {}
    rows: list[dict[str, object]] = []
    for sid, address, themes in subscribers.active(session):
        row: dict[str, object] = {"digest_id": digest_id, "subscriber_id": sid, "address": address}
        chosen = selection(themes, slugs)
        if chosen == ():
            rows.append(
                row | {"status": DeliveryStatus.SKIPPED, "message_id": "", "last_error": "no theme"}
            )
            continue
        key = variant_key(chosen)
        if key not in variant_ids:
            letter = letters.get(key) or personaliser.letter(
                only(view, chosen, personaliser.subject)
            )
            variant_ids[key] = add_variant(session, digest_id, key, chosen or (), letter)
        row |= {"status": DeliveryStatus.PENDING, "variant_id": variant_ids[key]}
        rows.append(row | {"message_id": new_message_id()})
    add_deliveries(session, rows, view.published_at)
    skipped = sum(1 for r in rows if r["status"] == DeliveryStatus.SKIPPED)
    return len(rows) - skipped, skipped


@dataclass(frozen=True)
class Job:
    """A delivery to attempt, with what building its message needs."""

    id: int
    variant_id: int
    subscriber_id: int
    address: str
    name: str
    token: str
    message_id: str
    attempts: int
    created_at: datetime
    bounce_count: int


def due_jobs(session: Session, now: datetime) -> list[Job]:
    """Pending deliveries whose next attempt is due, oldest digest first."""
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.variant_id,
            Delivery.subscriber_id,
            Subscriber.address,
            Subscriber.name,
            Subscriber.token,
            Delivery.message_id,
            Delivery.attempts,
            Delivery.created_at,
            Subscriber.bounce_count,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.variant_id.is_not(None),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        )
        .order_by(Delivery.digest_id, Delivery.id)
    )
    return [Job(**row._mapping) for row in rows]


def waiting_count(session: Session, now: datetime) -> int:
    """Pending deliveries whose next attempt is later than now."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at > now)
        )
        or 0
    )


def letters(session: Session, variant_ids: Iterable[int]) -> dict[int, tuple[Letter, datetime]]:
    """The rendered variants by id, with their digest's publication time."""
    rows = session.execute(
        select(DigestVariant, Digest.published_at)
        .join(Digest, Digest.id == DigestVariant.digest_id)
        .where(DigestVariant.id.in_(list(variant_ids)))
    )
    return {v.id: (Letter(v.subject, v.html, v.text), when) for v, when in rows}


def release_stale(session: Session) -> int:
    """Deliveries left 'sending' by a process that died go back to pending. Call it only
    while holding the publish lock: then no other process can be sending."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.SENDING)
        .values(status=DeliveryStatus.PENDING)
    )
    return _count(result)


def skip_inactive(session: Connection | Session) -> int:
    """Pending deliveries to subscribers no longer active are skipped."""
    skipped = 0
    for status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        gone = select(Subscriber.id).where(
            Subscriber.id == Delivery.subscriber_id, Subscriber.status == status
        )
        result = session.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.PENDING, gone.exists())
            .values(status=DeliveryStatus.SKIPPED, last_error=f"subscriber {status}")
        )
        skipped += _count(result)
    return skipped


# The statements run once per message are built once (Core, bound parameters): only
# their parameters change, so SQLAlchemy reuses the compiled form.
_D = cast(Table, Delivery.__table__)
_S = cast(Table, Subscriber.__table__)
_NOW = bindparam("now", type_=UTCDateTime())
_CLAIM = (
    update(_D)
    .where(
        _D.c.id == bindparam("did"),
        _D.c.status == DeliveryStatus.PENDING,
        select(_S.c.id)
        .where(_S.c.id == _D.c.subscriber_id, _S.c.status == SubscriberStatus.ACTIVE)
        .exists(),
    )
    .values(status=DeliveryStatus.SENDING, claimed_at=_NOW, attempts=_D.c.attempts + 1)
)
_SENT = (
    update(_D)
    .where(_D.c.id == bindparam("did"))
    .values(status=DeliveryStatus.SENT, sent_at=_NOW, last_error=None, next_attempt_at=None)
)
_FINISH = (
    update(_D)
    .where(_D.c.id == bindparam("did"))
    .values(
        status=bindparam("status"),
        last_error=bindparam("error"),
        next_attempt_at=bindparam("at", type_=UTCDateTime()),
    )
)
_RESET_BOUNCES = update(_S).where(_S.c.id == bindparam("sid")).values(bounce_count=0)
_BOUNCE = update(_S).where(_S.c.id == bindparam("sid")).values(bounce_count=_S.c.bounce_count + 1)
_BOUNCED = (
    update(_S)
    .where(
        _S.c.id == bindparam("sid"),
        _S.c.status == SubscriberStatus.ACTIVE,
        _S.c.bounce_count >= bindparam("limit"),
    )
    .values(status=SubscriberStatus.BOUNCED)
)


def claim(db: Connection | Session, delivery_id: int, now: datetime) -> bool:
    """Conditional update: True when this process now owns the delivery (SQLite has no
    SKIP LOCKED; the row count says who won). The subscriber must still be active."""
    return _count(db.execute(_CLAIM, {"did": delivery_id, "now": now})) == 1


def mark_sent(db: Connection | Session, job: Job, now: datetime) -> None:
    db.execute(_SENT, {"did": job.id, "now": now})
    if job.bounce_count:
        db.execute(_RESET_BOUNCES, {"sid": job.subscriber_id})


def mark_pending(
    db: Connection | Session, delivery_id: int, error: str | None, at: datetime | None
) -> None:
    """Back to pending: retried when `at` comes (None: at once, by the next run)."""
    db.execute(
        _FINISH, {"did": delivery_id, "status": DeliveryStatus.PENDING, "error": error, "at": at}
    )


def mark_failed(db: Connection | Session, job: Job, error: str, *, bounce_after: int = 0) -> bool:
    """The delivery failed for good. With bounce_after, it counts as a bounce, and the
    subscriber becomes 'bounced' at that many in a row; True when that happened now."""
    db.execute(
        _FINISH, {"did": job.id, "status": DeliveryStatus.FAILED, "error": error, "at": None}
    )
    if not bounce_after:
        return False
    db.execute(_BOUNCE, {"sid": job.subscriber_id})
    return _count(db.execute(_BOUNCED, {"sid": job.subscriber_id, "limit": bounce_after})) == 1


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
