"""The signups repository: the confirmation e-mails the /subscribe form sent (double
opt-in; only each token's SHA-256 is kept), and the lock that makes the signup limit
check atomic. (Convention: state/handles.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, text, update

from digest.state.handles import Tx, dialect
from digest.state.models import Signup

SIGNUP_LOCK = 0x6469_6773  # PostgreSQL advisory lock id: one signup check at a time


@dataclass(frozen=True)
class SignupRow:
    id: int
    key: str  # the address, case-folded
    address: str
    themes: tuple[str, ...]
    token_hash: str
    expires_at: datetime
    confirmed_at: datetime | None


def serialize(tx: Tx) -> None:
    """Make the caller's write transaction the only signup check running: on
    PostgreSQL a transaction-scoped advisory lock (released by the commit or rollback);
    on SQLite the write lock the transaction began with already is. Signups are few;
    one at a time costs nothing."""
    if dialect(tx) == "postgresql":
        tx.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SIGNUP_LOCK})


def count_from(tx: Tx, ip_hash: str, since: datetime) -> int:
    """Signups made from this client (its address's HMAC) after `since`."""
    count = tx.scalar(
        select(func.count())
        .select_from(Signup)
        .where(Signup.ip_hash == ip_hash, Signup.created_at > since)
    )
    return int(count or 0)


def recent(tx: Tx, key: str, since: datetime) -> list[tuple[datetime, datetime | None]]:
    """(created_at, confirmed_at) of this address's signups after `since`, newest first."""
    rows = tx.execute(
        select(Signup.created_at, Signup.confirmed_at)
        .where(Signup.key == key, Signup.created_at > since)
        .order_by(Signup.created_at.desc())
    )
    return [(created, confirmed) for created, confirmed in rows]


def add(
    tx: Tx,
    address: str,
    themes: Sequence[str],
    token_hash: str,
    ip_hash: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    tx.execute(
        insert(Signup).values(
            key=address.lower(),
            address=address,
            themes=list(themes),
            token_hash=token_hash,
            ip_hash=ip_hash,
            created_at=now,
            expires_at=expires_at,
        )
    )


def by_token_hash(tx: Tx, token_hash: str) -> SignupRow | None:
    found = tx.execute(
        select(
            Signup.id,
            Signup.key,
            Signup.address,
            Signup.themes,
            Signup.token_hash,
            Signup.expires_at,
            Signup.confirmed_at,
        ).where(Signup.token_hash == token_hash)
    ).first()
    if found is None:
        return None
    id_, key, address, themes, digest, expires, confirmed = found
    return SignupRow(id_, key, address, tuple(themes or ()), digest, expires, confirmed)


def remove(tx: Tx, signup_id: int) -> None:
    tx.execute(delete(Signup).where(Signup.id == signup_id))


def confirm(tx: Tx, signup: SignupRow, now: datetime) -> None:
    """The signup is confirmed; the other links still out for its address stop working."""
    tx.execute(update(Signup).where(Signup.id == signup.id).values(confirmed_at=now))
    tx.execute(
        update(Signup)
        .where(
            Signup.key == signup.key,
            Signup.id != signup.id,
            Signup.confirmed_at.is_(None),
            Signup.expires_at > now,
        )
        .values(expires_at=now)
    )
