"""The published digests: the next issue number, storing a digest and its items, and
the digests by number, without their rendered HTML unless asked. (Their deliveries are
the outbox's: outbox.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, Text, bindparam, cast, func, insert, select, update
from sqlalchemy.orm import Session, defer

from digest.state.models import Digest, DigestItem, Paper
from digest.state.states import DigestStatus


def next_issue(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(Digest.issue), 0))) or 0) + 1


@dataclass(frozen=True)
class DigestRecord:
    """What publishing stores: the rendered digest and its papers by section."""

    issue: int
    subject: str
    html: str
    web_html: str | bytes  # bytes: UTF-8, stored as text without a str of it in memory
    published_at: datetime
    # (paper id, section name, section slug, the paper's own area slug) in order
    items: Sequence[tuple[int, str, str, str]]
    themes: Sequence[str]
    feed_html: str | None = None  # the issue as a feed entry's content


def create_digest(session: Session, record: DigestRecord) -> Digest:
    """Insert the digest and its items. The unique constraint on digest_items.paper_id
    makes publishing a paper twice impossible. Its deliveries are added by mail/outbox.py,
    in the same transaction."""
    raw = isinstance(record.web_html, bytes)
    digest = Digest(
        issue=record.issue,
        subject=record.subject,
        html=record.html,
        web_html="" if raw else record.web_html,
        feed_html=record.feed_html,
        paper_count=len(record.items),
        themes=list(record.themes),
        status=DigestStatus.PUBLISHED,
        published_at=record.published_at,
    )
    session.add(digest)
    session.flush()
    if raw:
        session.execute(
            update(Digest)
            .where(Digest.id == digest.id)
            .values(web_html=_utf8_text(session, record.web_html))
            .execution_options(synchronize_session=False)
        )
        session.expire(digest, ["web_html"])
    items = list(enumerate(record.items))
    for start in range(0, len(items), 1000):  # bulk inserts: rows, no ORM object per item
        rows = [
            {
                "digest_id": digest.id,
                "paper_id": pid,
                "section": name,
                "section_slug": slug,
                "area_slug": area or slug,
                "position": i,
            }
            for i, (pid, name, slug, area) in items[start : start + 1000]
        ]
        session.execute(insert(DigestItem), rows)
    ids = [pid for pid, *_ in record.items]
    for i in range(0, len(ids), 500):
        session.execute(
            update(Paper).where(Paper.id.in_(ids[i : i + 500])).values(published_in=digest.id)
        )
    return digest


def _utf8_text(session: Session, raw: str | bytes) -> Any:
    """UTF-8 bytes as a text value, decoded by the database."""
    value = bindparam("raw", raw, type_=LargeBinary)
    if session.get_bind().dialect.name == "postgresql":
        return func.convert_from(value, "UTF8")
    return cast(value, Text)  # SQLite: a blob cast to text is read as UTF-8


def digests_newest_first(session: Session, limit: int | None = None) -> list[Digest]:
    """The published digests, newest first (the ``limit`` newest, or all), without their
    rendered HTML and text (they load on first access, so only the pages that are
    needed are read)."""
    heavy = (defer(Digest.html), defer(Digest.web_html), defer(Digest.feed_html))
    query = select(Digest).options(*heavy).order_by(Digest.issue.desc())
    return list(session.scalars(query if limit is None else query.limit(limit)))


def digests_between(session: Session, first: int, last: int) -> list[Digest]:
    """The published digests numbered ``first`` to ``last``, newest first, without their
    rendered HTML and text."""
    heavy = (defer(Digest.html), defer(Digest.web_html), defer(Digest.feed_html))
    query = select(Digest).options(*heavy).where(Digest.issue.between(first, last))
    return list(session.scalars(query.order_by(Digest.issue.desc())))


def issue_numbers(session: Session) -> list[int]:
    """Every published issue number, oldest first."""
    return list(session.scalars(select(Digest.issue).order_by(Digest.issue)))


def web_copy(session: Session, issue: int) -> bytes | None:
    """The issue's web copy as UTF-8 bytes, encoded by the database: a 10,000-paper copy
    is 26 MB so, but twice that as a str with one character beyond Latin-1."""
    if session.get_bind().dialect.name == "postgresql":
        as_bytes: Any = func.convert_to(Digest.web_html, "UTF8")
    else:
        as_bytes = cast(Digest.web_html, LargeBinary)  # SQLite: the text's own bytes
    raw = session.scalar(select(as_bytes).where(Digest.issue == issue))
    return None if raw is None else bytes(raw)
