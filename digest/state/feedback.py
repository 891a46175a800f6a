"""The feedback repository: readers' "more / less like this" marks (table ``feedback``,
one row per subscriber and paper key, +1 or -1) and each subscriber's private-feed token
(``subscribers.feed_token``). Marks go with their subscriber (ON DELETE CASCADE).
(Convention: state/handles.py.)"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from digest.addresses import new_token
from digest.state import subscribers
from digest.state.handles import Tx, dialect
from digest.state.models import Digest, DigestItem, Feedback, Paper, Subscriber
from digest.state.store import StoredPaper, _stored
from digest.state.subscribers import SubscriberRow

__all__ = [
    "LESS",
    "MORE",
    "Counts",
    "PaperText",
    "PublishedIssue",
    "by_feed_token",
    "counts",
    "feed_token",
    "forget",
    "mark",
    "marked_since",
    "marks",
    "marks_of_many",
    "newest_issue_time",
    "newest_issues",
    "paper_texts",
    "renew_feed_token",
]

MORE, LESS = 1, -1


@dataclass(frozen=True)
class Counts:
    more: int
    less: int

    @property
    def total(self) -> int:
        return self.more + self.less


@dataclass(frozen=True)
class PaperText:
    key: str
    title: str
    abstract: str


def mark(tx: Tx, subscriber_id: int, paper_key: str, value: int, when: datetime) -> None:
    """Record (or replace) a subscriber's mark on a paper: one row per pair, so marking
    twice is harmless."""
    assert value in (MORE, LESS), value
    insert = postgresql.insert if dialect(tx) == "postgresql" else sqlite.insert
    row = {"subscriber_id": subscriber_id, "paper_key": paper_key, "value": value}
    statement: Any = insert(Feedback).values(**row, marked_at=when)
    statement = statement.on_conflict_do_update(
        index_elements=["subscriber_id", "paper_key"],
        set_={"value": value, "marked_at": when},
    )
    tx.execute(statement)


def marked_since(tx: Tx, subscriber_id: int, since: datetime) -> int:
    """How many of the subscriber's marks were made (or last changed) at or after `since`."""
    query = select(func.count()).where(
        Feedback.subscriber_id == subscriber_id, Feedback.marked_at >= since
    )
    return int(tx.scalar(query) or 0)


def counts(tx: Tx, subscriber_id: int) -> Counts:
    rows = tx.execute(
        select(Feedback.value, func.count())
        .where(Feedback.subscriber_id == subscriber_id)
        .group_by(Feedback.value)
    )
    by_value = {int(v): int(n) for v, n in rows}
    return Counts(by_value.get(MORE, 0), by_value.get(LESS, 0))


def marks(tx: Tx, subscriber_id: int) -> list[tuple[str, int]]:
    """(paper key, +1/-1) of one subscriber, oldest mark first."""
    rows = tx.execute(
        select(Feedback.paper_key, Feedback.value)
        .where(Feedback.subscriber_id == subscriber_id)
        .order_by(Feedback.marked_at, Feedback.paper_key)
    )
    return [(k, int(v)) for k, v in rows]


def marks_of_many(tx: Tx, subscriber_ids: Iterable[int]) -> dict[int, list[tuple[str, int]]]:
    """The marks of these subscribers (those with any), oldest first, by subscriber id."""
    ids = list(subscriber_ids)
    out: dict[int, list[tuple[str, int]]] = {}
    for i in range(0, len(ids), 500):
        rows = tx.execute(
            select(Feedback.subscriber_id, Feedback.paper_key, Feedback.value)
            .where(Feedback.subscriber_id.in_(ids[i : i + 500]))
            .order_by(Feedback.subscriber_id, Feedback.marked_at, Feedback.paper_key)
        )
        for sid, key, value in rows:
            out.setdefault(sid, []).append((key, int(value)))
    return out


def forget(tx: Tx, subscriber_id: int) -> int:
    """Delete every mark of the subscriber; returns how many there were."""
    result: Any = tx.execute(delete(Feedback).where(Feedback.subscriber_id == subscriber_id))
    return int(result.rowcount or 0)


def paper_texts(tx: Tx, keys: Iterable[str]) -> dict[str, PaperText]:
    """Title and abstract of the stored papers among these keys, by key."""
    wanted = list(dict.fromkeys(keys))
    out: dict[str, PaperText] = {}
    for i in range(0, len(wanted), 500):
        rows = tx.execute(
            select(Paper.key, Paper.title, Paper.abstract).where(Paper.key.in_(wanted[i : i + 500]))
        )
        out.update({k: PaperText(k, t, a) for k, t, a in rows})
    return out


def feed_token(tx: Tx, subscriber_id: int) -> str:
    """The subscriber's private-feed token (one is made if the row has none)."""
    token = tx.scalar(select(Subscriber.feed_token).where(Subscriber.id == subscriber_id))
    return token or renew_feed_token(tx, subscriber_id)


def renew_feed_token(tx: Tx, subscriber_id: int) -> str:
    """A new private-feed token for the subscriber: the old one stops working."""
    token = new_token()
    tx.execute(update(Subscriber).where(Subscriber.id == subscriber_id).values(feed_token=token))
    return token


def by_feed_token(tx: Tx, token: str) -> tuple[SubscriberRow, str] | None:
    """The subscriber whose feed token is `token` as the database compares it, with the
    stored token (the caller compares it again in constant time)."""
    found = tx.execute(
        select(Subscriber.id, Subscriber.feed_token).where(Subscriber.feed_token == token)
    ).first()
    if found is None:
        return None
    row = subscribers.by_id(tx, found[0])
    return None if row is None else (row, str(found[1]))


def feed_tokens(tx: Tx, subscriber_ids: Sequence[int]) -> dict[int, str]:
    """The feed tokens of these subscribers (those that have one), by id."""
    out: dict[int, str] = {}
    ids = list(subscriber_ids)
    for i in range(0, len(ids), 500):
        rows = tx.execute(
            select(Subscriber.id, Subscriber.feed_token).where(
                Subscriber.id.in_(ids[i : i + 500]), Subscriber.feed_token.is_not(None)
            )
        )
        out.update({int(sid): str(t) for sid, t in rows})
    return out


@dataclass(frozen=True)
class PublishedIssue:
    """An issue as a reader's private feed rebuilds it: its papers in the issue's order,
    each with the section it printed under and its own area."""

    issue: int
    subject: str
    published_at: datetime
    papers: tuple[tuple[StoredPaper, str, str, str], ...]  # (paper, section, slug, area)


def newest_issues(tx: Tx, limit: int) -> list[PublishedIssue]:
    """The `limit` newest published issues, newest first, with their papers."""
    digests = tx.execute(
        select(Digest.id, Digest.issue, Digest.subject, Digest.published_at)
        .order_by(Digest.issue.desc())
        .limit(limit)
    ).all()
    if not digests:
        return []
    rows = tx.execute(
        select(
            DigestItem.digest_id,
            DigestItem.section,
            DigestItem.section_slug,
            DigestItem.area_slug,
            Paper,
        )
        .join(Paper, Paper.id == DigestItem.paper_id)
        .where(DigestItem.digest_id.in_([d[0] for d in digests]))
        .order_by(DigestItem.digest_id, DigestItem.position)
    )
    papers: dict[int, list[tuple[StoredPaper, str, str, str]]] = {}
    for digest_id, section, slug, area, paper in rows:
        papers.setdefault(digest_id, []).append((_stored(paper, 1, 0), section, slug, area))
    return [
        PublishedIssue(issue, subject, when, tuple(papers.get(did, ())))
        for did, issue, subject, when in digests
    ]


def newest_issue_time(tx: Tx) -> datetime | None:
    """When the newest issue was published (None before the first)."""
    return tx.scalar(select(Digest.published_at).order_by(Digest.issue.desc()).limit(1))


def all_marks(tx: Tx) -> dict[int, list[tuple[str, int]]]:
    """Every stored mark, by subscriber id, each subscriber's oldest first."""
    rows = tx.execute(
        select(Feedback.subscriber_id, Feedback.paper_key, Feedback.value).order_by(
            Feedback.subscriber_id, Feedback.marked_at, Feedback.paper_key
        )
    )
    out: dict[int, list[tuple[str, int]]] = {}
    for sid, key, value in rows:
        out.setdefault(sid, []).append((key, int(value)))
    return out
