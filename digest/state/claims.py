"""Claims on the outbox's delivery rows: a worker claims due rows in batches under a
lease and a claim token, renews the lease while it lives, and finishes each row only
after the server answered (sent, failed, or pending again); rows of a worker that
stopped go back to pending. Finishing a row is fenced by the claim token, so nothing a
worker no longer holds is changed. (Convention: state/handles.py.)"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, or_, select, update

from digest.state.dbclock import db_ago, db_now
from digest.state.handles import Database, Tx, dialect
from digest.state.models import Delivery, Subscriber, UTCDateTime
from digest.state.states import DeliveryStatus, SubscriberStatus


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
    return [Job(*row[:7], row[7] - 1, *row[8:]) for row in rows]


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


class SentMarks:
    """The hot path of delivery: marking a row sent the moment the server accepted its
    message, one statement a message and no more. On PostgreSQL it runs on a connection
    of its own (one per sender thread) in autocommit mode, so the statement is its own
    transaction, with no BEGIN and COMMIT round trips; the Core statement is compiled
    once, and the driver runs it as a server-side prepared statement. A subscriber with
    bounces to reset takes a transaction (rare). On SQLite, whose transactions begin by
    taking the write lock, each mark is a transaction as before (the caller serialises
    writes there)."""

    def __init__(self, database: Database) -> None:
        self._conn = database.connect()
        self._cursor: Any = None
        if dialect(database) == "postgresql":
            self._conn = self._conn.execution_options(isolation_level="AUTOCOMMIT")
            compiled = _SENT.compile(dialect=self._conn.dialect)
            self._sql = compiled.string
            self._fixed = {
                k: str(v) if isinstance(v, str) else v for k, v in compiled.params.items()
            }
            self._cursor = self._conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def sent(self, job: Job, now: datetime) -> bool:
        """True, or False when the row was no longer held under the job's claim (taken
        over by another worker: a copy went out twice)."""
        if job.bounce_count or self._cursor is None:
            with self._conn.begin():
                return mark_sent(self._conn, job, now)
        params = {**self._fixed, "did": job.id, "claim": job.claim, "now": now}
        self._cursor.execute(self._sql, params, prepare=True)
        return int(self._cursor.rowcount) == 1

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
        self._conn.close()


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
