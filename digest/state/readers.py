"""What each reader makes their own: the phrases they watch and mute (two columns of
``subscribers``, ";"-separated, checked on the way in by personal/phrases.py), and the
issue's letter in pieces that their e-mails are put together from (stored beside the
issue's variants, as a variant whose key is ``PIECES``). (Convention: state/handles.py.)"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, Text, bindparam, insert, or_, select, update

from digest.state.handles import Tx
from digest.state.models import Delivery, DigestVariant, Feedback, Subscriber
from digest.state.states import DeliveryStatus, SubscriberStatus

_S = cast(Table, Subscriber.__table__)
_V = cast(Table, DigestVariant.__table__)
_D = cast(Table, Delivery.__table__)
PIECES = "pieces"  # the key of the variant row holding an issue's letter in pieces


def phrases_of(tx: Tx, key: str) -> tuple[str, str] | None:
    """(watch, mute) of the subscriber with this key (address, case-folded)."""
    found = tx.execute(select(_S.c.watch, _S.c.mute).where(_S.c.key == key)).first()
    return None if found is None else (found[0] or "", found[1] or "")


def every_phrases(tx: Tx) -> dict[str, tuple[str, str]]:
    """(watch, mute) by subscriber key, of those who have any."""
    rows = tx.execute(
        select(_S.c.key, _S.c.watch, _S.c.mute).where(or_(_S.c.watch != "", _S.c.mute != ""))
    )
    return {key: (watch or "", mute or "") for key, watch, mute in rows}


def set_many(tx: Tx, phrases: Sequence[tuple[str, str | None, str | None]]) -> bool:
    """Set (key, watch, mute) of these subscribers (None: that one unchanged), as
    checked; True when anything changed."""
    changed = False
    for column, at in (("watch", 1), ("mute", 2)):
        params = [{"k": row[0], "v": row[at]} for row in phrases if row[at] is not None]
        if not params:
            continue
        col = _S.c[column]
        stmt = update(_S).where(_S.c.key == bindparam("k"), col != bindparam("v"))
        result = tx.execute(stmt.values({column: bindparam("v")}), params)
        changed = changed or bool(getattr(result, "rowcount", 0))
    return changed


def set_phrases(tx: Tx, key: str, *, watch: str | None = None, mute: str | None = None) -> bool:
    """Set the watched and/or muted phrases (as checked) of a subscriber; False when
    unknown."""
    values = {k: v for k, v in (("watch", watch), ("mute", mute)) if v is not None}
    if not values:
        return tx.scalar(select(_S.c.id).where(_S.c.key == key)) is not None
    result = tx.execute(update(_S).where(_S.c.key == key).values(values))
    return bool(getattr(result, "rowcount", 0))


def personal_theme_choices(tx: Tx) -> list[tuple[str, ...]]:
    """The distinct theme lists of the active subscribers who watch or mute anything, or
    have marked a paper "more" or "less"."""
    marked = _S.c.id.in_(select(Feedback.subscriber_id).distinct())
    rows = tx.execute(
        select(_S.c.themes.cast(Text))
        .where(
            _S.c.status == SubscriberStatus.ACTIVE,
            or_(_S.c.watch != "", _S.c.mute != "", marked),
        )
        .distinct()
    )
    return [tuple(json.loads(raw) or ()) for (raw,) in rows if raw is not None]


def active_marks(tx: Tx) -> dict[int, list[tuple[str, int]]]:
    """The "more / less" marks (paper key, +1/-1) of every active subscriber who has
    any, by subscriber id, each one's oldest first."""
    rows = tx.execute(
        select(Feedback.subscriber_id, Feedback.paper_key, Feedback.value)
        .join(_S, _S.c.id == Feedback.subscriber_id)
        .where(_S.c.status == SubscriberStatus.ACTIVE)
        .order_by(Feedback.subscriber_id, Feedback.marked_at, Feedback.paper_key)
    )
    out: dict[int, list[tuple[str, int]]] = {}
    for sid, key, value in rows:
        out.setdefault(int(sid), []).append((str(key), int(value)))
    return out


def store_pieces(tx: Tx, digest_id: int, blob: str) -> None:
    """The issue's letter in pieces (mail/assembly.py makes and reads ``blob``)."""
    tx.execute(
        insert(_V).values(
            digest_id=digest_id, key=PIECES, sections=[], subject="", html=blob, text=""
        )
    )


def pieces_of(tx: Tx, variant_id: int) -> tuple[str, str] | None:
    """(the variant's key, its issue's letter in pieces), or None when the issue has no
    pieces (no reader watched or muted anything when it was published)."""
    found = tx.execute(select(_V.c.digest_id, _V.c.key).where(_V.c.id == variant_id)).first()
    if found is None:
        return None
    blob = tx.scalar(select(_V.c.html).where(_V.c.digest_id == found[0], _V.c.key == PIECES))
    return None if blob is None else (str(found[1]), str(blob))


def skipped_watchers(tx: Tx, digest_id: int) -> list[tuple[int, str, str]]:
    """(delivery id, watch, mute) of the active readers who watch something and got no
    letter of this issue because none of their topics is in it."""
    rows = tx.execute(
        select(_D.c.id, _S.c.watch, _S.c.mute)
        .join(_S, _S.c.id == _D.c.subscriber_id)
        .where(
            _D.c.digest_id == digest_id,
            _D.c.status == DeliveryStatus.SKIPPED,
            _D.c.variant_id.is_(None),
            _S.c.status == SubscriberStatus.ACTIVE,
            _S.c.watch != "",
        )
    )
    return [(int(i), watch, mute or "") for i, watch, mute in rows]


def send_after_all(tx: Tx, rows: Sequence[tuple[int, int, str]]) -> None:
    """These skipped deliveries (id, variant id, Message-ID) are to be sent after all."""
    stmt = (
        update(_D)
        .where(_D.c.id == bindparam("did"), _D.c.status == DeliveryStatus.SKIPPED)
        .values(
            status=DeliveryStatus.PENDING,
            variant_id=bindparam("vid"),
            message_id=bindparam("mid"),
            last_error=None,
        )
    )
    if rows:
        tx.execute(stmt, [{"did": d, "vid": v, "mid": m} for d, v, m in rows])
