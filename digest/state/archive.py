"""Read-only queries over what has been published: the archive and its search."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest.state.models import Digest, DigestItem, Paper


@dataclass(frozen=True)
class Hit:
    title: str
    abstract: str
    issue: int
    section: str
    published_at: datetime
    position: int  # the paper's place in its issue, 1-based (the web copy's anchor p-N)


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(session: Session, query: str, limit: int = 50) -> list[Hit]:
    """Published papers whose title or abstract contains every word of `query`
    (case-insensitive), newest issue first, title matches before abstract matches."""
    words = [w for w in query.split() if w][:8]
    if not words:
        return []
    conditions = [
        or_(
            func.lower(Paper.title).like(_like(w.lower()), escape="\\"),
            func.lower(Paper.abstract).like(_like(w.lower()), escape="\\"),
        )
        for w in words
    ]
    in_title = func.lower(Paper.title).like(_like(words[0].lower()), escape="\\")
    rows = session.execute(
        select(Paper.title, Paper.abstract, Digest.issue, DigestItem.section, Digest.published_at,
               DigestItem.position)
        .join(DigestItem, DigestItem.paper_id == Paper.id)
        .join(Digest, Digest.id == DigestItem.digest_id)
        .where(*conditions)
        .order_by(Digest.issue.desc(), in_title.desc(), DigestItem.position)
        .limit(limit)
    )  # fmt: skip
    return [Hit(t, a, i, s, p, pos + 1) for t, a, i, s, p, pos in rows]


def issue_sections(
    session: Session, issues: Collection[int] | None = None
) -> dict[int, list[tuple[str, str]]]:
    """(name, slug) of each issue's sections (of these ``issues``, or of all), in the
    issue's order, keyed by issue."""
    query = select(Digest.issue, DigestItem.section, DigestItem.section_slug).join(
        Digest, Digest.id == DigestItem.digest_id
    )
    if issues is not None:
        query = query.where(Digest.issue.in_(list(issues)))
    rows = session.execute(
        query.group_by(Digest.issue, DigestItem.section, DigestItem.section_slug).order_by(
            Digest.issue, func.min(DigestItem.position)
        )
    )
    out: dict[int, list[tuple[str, str]]] = {}
    for issue, name, slug in rows:
        out.setdefault(issue, []).append((name, slug))
    return out
