"""The published digests: the next issue number, storing a digest and its items, and
the digests by number, without their rendered HTML unless asked. (Their deliveries are
the outbox's: outbox.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
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
    web_html: str
    published_at: datetime
    # (paper id, section name, section slug, the paper's own area slug) in order
    items: Sequence[tuple[int, str, str, str]]
    themes: Sequence[str]
    feed_html: str | None = None  # the issue as a feed entry's content


def create_digest(session: Session, record: DigestRecord) -> Digest:
    """Insert the digest and its items. The unique constraint on digest_items.paper_id
    makes publishing a paper twice impossible. Its deliveries are added by mail/outbox.py,
    in the same transaction."""
    digest = Digest(
        issue=record.issue,
        subject=record.subject,
        html=record.html,
        web_html=record.web_html,
        feed_html=record.feed_html,
        paper_count=len(record.items),
        themes=list(record.themes),
        status=DigestStatus.PUBLISHED,
        published_at=record.published_at,
    )
    session.add(digest)
    session.flush()
    session.add_all(
        DigestItem(
            digest_id=digest.id,
            paper_id=pid,
            section=name,
            section_slug=slug,
            area_slug=area or slug,
            position=i,
        )
        for i, (pid, name, slug, area) in enumerate(record.items)
    )
    session.flush()
    ids = [pid for pid, *_ in record.items]
    for i in range(0, len(ids), 500):
        session.execute(
            update(Paper).where(Paper.id.in_(ids[i : i + 500])).values(published_in=digest.id)
        )
    return digest


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


def web_copy(session: Session, issue: int) -> str | None:
    return session.scalar(select(Digest.web_html).where(Digest.issue == issue))
