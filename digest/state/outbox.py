"""The outbox repository: delivery rows and the rendered variants they point to. One row
per (digest, subscriber), created with the digest and before anything is sent, then
claimed under a lease and a claim token, and finished only after the server answered.
pending -> sending -> sent | failed | pending again (temporary failure); skipped when the
subscriber chose none of the digest's themes or left. (Convention: state/handles.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from digest.state.handles import Tx, dialect
from digest.state.models import Delivery, Digest, DigestVariant, Subscriber, UTCDateTime
from digest.state.states import DeliveryStatus, SubscriberStatus


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
    claim: str | None = None  # the claim token it is held under (see claim_batch)
    watch: str = ""  # the reader's watched and muted phrases (mail/assembly.py)
    mute: str = ""


def due_jobs(tx: Tx, now: datetime) -> list[Job]:
    """Pending deliveries whose next attempt is due, oldest digest first."""
    rows = tx.execute(
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


def release_expired(tx: Tx, lease: float, dead: Sequence[int] = ()) -> int:
    """Deliveries left 'sending' whose lease ran out (claimed or renewed more than
    `lease` seconds ago by the database's clock: their worker's heartbeat stopped
    renewing them), or held by a worker known to be dead, go back to pending. A live
    worker's rows are never taken, whatever the clocks of the hosts say."""
    held = or_(_D.c.claimed_at.is_(None), _D.c.claimed_at < db_ago(lease))
    if dead:
        held = or_(held, _D.c.claimed_by.in_(list(dead)))
    result = tx.execute(
        update(_D)
        .where(_D.c.status == DeliveryStatus.SENDING, held)
        .values(status=DeliveryStatus.PENDING, claimed_by=None, claim_token=None)
    )
    return _count(result)


def renew(tx: Tx, worker_id: int, token: str) -> None:
    """The worker is alive: the lease on every row it still holds starts again (now by
    the database's clock)."""
    tx.execute(
        update(_D)
        .where(_held_by(worker_id, token), _D.c.status == DeliveryStatus.SENDING)
        .values(claimed_at=db_now())
    )


def release_held(tx: Tx, worker_id: int, token: str, keep: Iterable[int] = ()) -> int:
    """The worker stops: its claimed rows that were never handed to the server go back to
    pending (`keep`: rows whose message the server may have accepted; they stay
    'sending' until their lease runs out). Rows taken over by another worker while
    this one was paused are not its own any more and are left alone."""
    stmt = update(_D).where(_held_by(worker_id, token), _D.c.status == DeliveryStatus.SENDING)
    kept = list(keep)
    if kept:
        stmt = stmt.where(_D.c.id.not_in(kept))
    # their claim counted an attempt that never happened
    values = {
        "status": DeliveryStatus.PENDING,
        "claimed_by": None,
        "claim_token": None,
        "attempts": _D.c.attempts - 1,
    }
    return _count(tx.execute(stmt.values(values)))


def claim_batch(tx: Tx, worker_id: int, now: datetime, limit: int, token: str) -> list[Job]:
    """Claim up to `limit` due pending deliveries for this worker, oldest digest first,
    under the worker run's `token` (the fence: finishing a row names it), leased from
    the database's clock. PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED, so workers never
    wait on each other's rows; SQLite: the same conditional UPDATE runs under its
    single writer lock. (`now`, this host's clock, only says which retries are due.)"""
    due = (
        select(_D.c.id)
        .join(_S, _S.c.id == _D.c.subscriber_id)
        .where(
            _D.c.status == DeliveryStatus.PENDING,
            _D.c.variant_id.is_not(None),
            _S.c.status == SubscriberStatus.ACTIVE,
            or_(_D.c.next_attempt_at.is_(None), _D.c.next_attempt_at <= now),
        )
        .order_by(_D.c.digest_id, _D.c.id)
        .limit(limit)
    )
    if dialect(tx) == "postgresql":
        due = due.with_for_update(skip_locked=True, of=_D)
    # MATERIALIZED: the rows are picked once. As an IN (subquery), PostgreSQL may run the
    # SKIP LOCKED subquery again for each row it updates, each run locking `limit` more:
    # a worker claimed about 150 rows with claim_batch = 50, leaving the others idle.
    picked = due.cte("due").prefix_with("MATERIALIZED")
    ids = list(
        tx.scalars(
            update(_D)
            .where(_D.c.id.in_(select(picked.c.id)), _D.c.status == DeliveryStatus.PENDING)
            .values(
                status=DeliveryStatus.SENDING,
                claimed_at=db_now(),
                claimed_by=worker_id,
                claim_token=token,
                attempts=_D.c.attempts + 1,
            )
            .returning(_D.c.id)
        )
    )
    if not ids:
        return []
    rows = tx.execute(_JOBS.where(_D.c.id.in_(ids)).order_by(_D.c.digest_id, _D.c.id))
    # attempts counts this claim; Job.attempts is what came before it
    return [Job(**{**row._mapping, "attempts": row.attempts - 1}) for row in rows]


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


# Leases are measured by the database's clock alone: every host writes and compares
# the same clock, so a host whose clock is off neither takes live rows nor keeps dead
# ones (as the rate limit does, ratelimit.GlobalBucket).


class db_now(FunctionElement[datetime]):
    """The database's clock now, as a UTCDateTime value (SQLite: UTC, as stored)."""

    type = UTCDateTime()
    name = "db_now"
    inherit_cache = True


class db_ago(FunctionElement[datetime]):
    """The database's clock, `seconds` ago."""

    type = UTCDateTime()
    name = "db_ago"
    inherit_cache = True

    def __init__(self, seconds: float) -> None:
        super().__init__(literal(float(seconds), Float()))


_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now'{})"  # ms; stored values have µs


@compiles(db_now, "postgresql")
def _pg_now(element: db_now, compiler: SQLCompiler, **kw: object) -> str:
    return "statement_timestamp()"


@compiles(db_now)
def _sqlite_now(element: db_now, compiler: SQLCompiler, **kw: object) -> str:
    return f"({_SQLITE_NOW.format('')} || '000')"


@compiles(db_ago, "postgresql")
def _pg_ago(element: db_ago, compiler: SQLCompiler, **kw: object) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return f"(statement_timestamp() - make_interval(secs => {seconds}))"


@compiles(db_ago)
def _sqlite_ago(element: db_ago, compiler: SQLCompiler, **kw: object) -> str:
    seconds = compiler.process(element.clauses, **kw)
    shift = f", '-' || {seconds} || ' seconds'"
    return f"({_SQLITE_NOW.format(shift)} || '000')"


# The statements run once per message are built once (Core, bound parameters): only
# their parameters change, so SQLAlchemy reuses the compiled form.
_D = cast(Table, Delivery.__table__)
_S = cast(Table, Subscriber.__table__)
_NOW = bindparam("now", type_=UTCDateTime())
_JOBS = select(
    _D.c.id,
    _D.c.variant_id,
    _D.c.subscriber_id,
    _S.c.address,
    _S.c.name,
    _S.c.token,
    _D.c.message_id,
    _D.c.attempts,
    _D.c.created_at,
    _S.c.bounce_count,
    _D.c.claim_token.label("claim"),
    _S.c.watch,
    _S.c.mute,
).join(_S, _S.c.id == _D.c.subscriber_id)
_CLAIM = (
    update(_D)
    .where(
        _D.c.id == bindparam("did"),
        _D.c.status == DeliveryStatus.PENDING,
        select(_S.c.id)
        .where(_S.c.id == _D.c.subscriber_id, _S.c.status == SubscriberStatus.ACTIVE)
        .exists(),
    )
    .values(
        status=DeliveryStatus.SENDING,
        claimed_at=db_now(),
        claimed_by=bindparam("by"),
        claim_token=bindparam("token"),
        attempts=_D.c.attempts + 1,
    )
)
# Finishing a row is fenced: only while it is still 'sending' under the claim token it
# was claimed with (a row taken over by another worker is not changed).
_MINE = (
    _D.c.id == bindparam("did"),
    _D.c.status == DeliveryStatus.SENDING,
    _D.c.claim_token == bindparam("claim"),
)
_SENT = (
    update(_D)
    .where(*_MINE)
    .values(status=DeliveryStatus.SENT, sent_at=_NOW, last_error=None, next_attempt_at=None)
)
_FINISH = (
    update(_D)
    .where(*_MINE)
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


def claim(
    tx: Tx,
    delivery_id: int,
    worker_id: int | None = None,
    token: str | None = None,
) -> bool:
    """Conditional update: True when this worker (under its claim `token`) now owns the
    delivery (the row count says who won), leased from the database's clock. The
    subscriber must still be active."""
    params = {"did": delivery_id, "by": worker_id, "token": token}
    return _count(tx.execute(_CLAIM, params)) == 1


def mark_sent(tx: Tx, job: Job, now: datetime) -> bool:
    """The server accepted the message: True, or False when the row was no longer held
    under the job's claim (taken over by another worker: a copy went out twice)."""
    if _count(tx.execute(_SENT, {"did": job.id, "claim": job.claim, "now": now})) != 1:
        return False
    if job.bounce_count:
        tx.execute(_RESET_BOUNCES, {"sid": job.subscriber_id})
    return True


def mark_pending(tx: Tx, job: Job, error: str | None, at: datetime | None) -> None:
    """Back to pending (if still held under the job's claim): retried when `at` comes
    (None: at once, by the next run)."""
    params = {"did": job.id, "claim": job.claim, "status": DeliveryStatus.PENDING}
    tx.execute(_FINISH, {**params, "error": error, "at": at})


def mark_failed(tx: Tx, job: Job, error: str, *, bounce_after: int = 0) -> bool:
    """The delivery failed for good (if still held under the job's claim). With
    bounce_after, it counts as a bounce, and the subscriber becomes 'bounced' at that
    many in a row; True when that happened now."""
    params = {"did": job.id, "claim": job.claim, "status": DeliveryStatus.FAILED}
    finished = _count(tx.execute(_FINISH, {**params, "error": error, "at": None}))
    if not bounce_after or not finished:
        return False
    tx.execute(_BOUNCE, {"sid": job.subscriber_id})
    return _count(tx.execute(_BOUNCED, {"sid": job.subscriber_id, "limit": bounce_after})) == 1


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _held_by(worker_id: int, token: str) -> ColumnElement[bool]:
    return (_D.c.claimed_by == worker_id) & (_D.c.claim_token == token)


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
