"""The subscribers repository: rows of table ``subscribers``, read as frozen
`SubscriberRow` values and changed by key or id. Addresses, names, statuses and topic
slugs come in already checked (mail/subscribers.py checks them). (Convention:
state/handles.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update

from digest.addresses import new_token
from digest.state.handles import Tx
from digest.state.models import Delivery, Subscriber, utcnow
from digest.state.states import SubscriberStatus
from digest.state.store import executemany, stored_time

_S = cast(Table, Subscriber.__table__)


@dataclass(frozen=True)
class SubscriberRow:
    """One stored subscriber."""

    id: int
    key: str  # the address, case-folded
    address: str
    name: str
    status: str
    themes: tuple[str, ...]  # area slugs; () = every one
    token: str
    bounce_count: int
    created_at: datetime
    unsubscribed_at: datetime | None
    watch: str = ""  # phrases the reader watches, ";"-separated (state/readers.py)
    mute: str = ""


_ROW = select(
    _S.c.id,
    _S.c.key,
    _S.c.address,
    _S.c.name,
    _S.c.status,
    _S.c.themes,
    _S.c.token,
    _S.c.bounce_count,
    _S.c.created_at,
    _S.c.unsubscribed_at,
    _S.c.watch,
    _S.c.mute,
)


def _row(values: Sequence[Any]) -> SubscriberRow:
    (id_, key, address, name, status, themes, token, bounces, created, left, watch, mute) = values
    return SubscriberRow(
        id_,
        key,
        address,
        name,
        str(status),
        tuple(themes or ()),
        token,
        bounces,
        created,
        left,
        watch or "",
        mute or "",
    )


def by_key(tx: Tx, key: str) -> SubscriberRow | None:
    found = tx.execute(_ROW.where(_S.c.key == key)).first()
    return None if found is None else _row(found)


def by_keys(tx: Tx, keys: Iterable[str]) -> dict[str, SubscriberRow]:
    """The stored subscribers among these keys, by key."""
    keys = list(keys)
    found: dict[str, SubscriberRow] = {}
    for i in range(0, len(keys), 500):
        for values in tx.execute(_ROW.where(_S.c.key.in_(keys[i : i + 500]))):
            found[values[1]] = _row(values)
    return found


def by_token(tx: Tx, token: str) -> SubscriberRow | None:
    """The subscriber whose token is `token` as the database compares it (the caller
    compares it again in constant time)."""
    found = tx.execute(_ROW.where(_S.c.token == token)).first()
    return None if found is None else _row(found)


def by_id(tx: Tx, subscriber_id: int) -> SubscriberRow | None:
    found = tx.execute(_ROW.where(_S.c.id == subscriber_id)).first()
    return None if found is None else _row(found)


def listing(tx: Tx, status: str | None = None) -> list[SubscriberRow]:
    """Every subscriber (with `status`: only those), in the order they came."""
    query = _ROW.order_by(_S.c.id)
    if status:
        query = query.where(_S.c.status == status)
    return [_row(values) for values in tx.execute(query)]


def every(tx: Tx) -> Iterator[SubscriberRow]:
    """Every subscriber in the order they came, read as they go."""
    for values in tx.execute(_ROW.order_by(_S.c.id)):
        yield _row(values)


def status_of(tx: Tx, key: str) -> str | None:
    status = tx.scalar(select(_S.c.status).where(_S.c.key == key))
    return None if status is None else str(status)


def statuses(tx: Tx, keys: Sequence[str] | None = None) -> dict[str, str]:
    """The status of each subscriber by key (of those `keys` only, when given)."""
    query = select(_S.c.key, _S.c.status)
    if keys is not None:
        query = query.where(_S.c.key.in_(list(keys)))
    return {key: status for key, status in tx.execute(query)}


def known_keys(tx: Tx, keys: Sequence[str]) -> set[str]:
    return set(tx.scalars(select(_S.c.key).where(_S.c.key.in_(list(keys)))))


def active(tx: Tx) -> list[tuple[int, str, tuple[str, ...]]]:
    """(id, address, themes) of every active subscriber."""
    rows = tx.execute(
        select(_S.c.id, _S.c.address, _S.c.themes)
        .where(_S.c.status == SubscriberStatus.ACTIVE)
        .order_by(_S.c.id)
    )
    return [(i, a, tuple(t or ())) for i, a, t in rows]


def other_active(tx: Tx, keys: Sequence[str], shown: int) -> tuple[int, list[str]]:
    """How many active subscribers are not among `keys`, and the first `shown` of their
    addresses (in the order they came)."""
    others = (_S.c.status == "active") & _S.c.key.not_in(list(keys))
    count = tx.scalar(select(func.count()).select_from(_S).where(others)) or 0
    first = tx.scalars(select(_S.c.address).where(others).order_by(_S.c.id).limit(shown))
    return int(count), list(first)


@dataclass(frozen=True)
class NewSubscriber:
    """A subscriber to add (its token made by the caller)."""

    address: str
    token: str
    name: str = ""
    themes: tuple[str, ...] = ()
    status: str = SubscriberStatus.ACTIVE


def add(tx: Tx, new: Sequence[NewSubscriber]) -> None:
    """Add these subscribers (keys not stored yet), created now."""
    if not new:
        return
    now = utcnow()
    tx.execute(insert(_S), [_values(n, now) for n in new])


def add_many(tx: Tx, new: Sequence[NewSubscriber]) -> None:
    """Add many subscribers (keys not stored yet) through the driver's executemany: for
    an import of a whole list."""
    now = stored_time(cast(Any, tx), utcnow())
    rows = [
        (
            n.address.lower(),
            n.address,
            n.name,
            n.status,
            json.dumps(list(n.themes)) if n.themes else "[]",
            n.token,
            0,
            now,
            now if n.status == SubscriberStatus.UNSUBSCRIBED else None,
            new_token(),
        )
        for n in new
    ]
    executemany(cast(Any, tx), "subscribers", _NEW_COLUMNS, rows)


_NEW_COLUMNS = (
    "key", "address", "name", "status", "themes", "token", "bounce_count", "created_at",
    "unsubscribed_at", "feed_token",
)  # fmt: skip


def _values(new: NewSubscriber, now: datetime) -> dict[str, object]:
    left = now if new.status == SubscriberStatus.UNSUBSCRIBED else None
    return {
        "key": new.address.lower(),
        "address": new.address,
        "name": new.name,
        "status": new.status,
        "themes": list(new.themes),
        "token": new.token,
        "bounce_count": 0,
        "created_at": now,
        "unsubscribed_at": left,
    }


CHANGEABLE = frozenset({"name", "themes", "status", "unsubscribed_at", "bounce_count"})


def change(tx: Tx, changes: Sequence[tuple[int, Mapping[str, object]]]) -> None:
    """Set these columns (name, themes, status, unsubscribed_at, bounce_count) of these
    subscribers, by id: one executemany per set of columns changed together."""
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for subscriber_id, values in changes:
        if not values:
            continue
        columns = tuple(sorted(values))
        assert CHANGEABLE.issuperset(columns), columns
        params = {f"new_{c}": values[c] for c in columns}
        if "themes" in values:
            params["new_themes"] = list(cast(Iterable[str], values["themes"]))
        groups.setdefault(columns, []).append({"sid": subscriber_id, **params})
    for columns, batch in groups.items():
        stmt = (
            update(_S)
            .where(_S.c.id == bindparam("sid"))
            .values({c: bindparam(f"new_{c}", type_=_S.c[c].type) for c in columns})
        )
        tx.execute(stmt, batch)


def remove(tx: Tx, key: str) -> bool:
    """Forget a subscriber and their deliveries; False when unknown."""
    subscriber_id = tx.scalar(select(_S.c.id).where(_S.c.key == key))
    if subscriber_id is None:
        return False
    tx.execute(delete(Delivery).where(Delivery.subscriber_id == subscriber_id))
    tx.execute(delete(_S).where(_S.c.id == subscriber_id))
    return True
