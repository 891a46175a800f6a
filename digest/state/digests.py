"""The published digests: the next issue number, storing a digest and its items, and
the digests by number, without their rendered HTML unless asked. (Their deliveries are
the outbox's: outbox.py.)"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, cast, func, insert, select, update
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
    web_html: str | bytes  # the web copy (bytes: UTF-8); what is stored is its gzip
    published_at: datetime
    # (paper id, section name, section slug, the paper's own area slug) in order
    items: Sequence[tuple[int, str, str, str]]
    themes: Sequence[str]
    feed_html: str | None = None  # the issue as a feed entry's content
    web_gz: bytes | None = None  # gzip_copy(web_html) when the caller has it already


WEB_GZIP_LEVEL = 6  # as publish/public.py writes <n>.html.gz, so one compression serves both


def gzip_copy(web_html: str | bytes) -> bytes:
    """The web copy as it is stored: gzip (level 6, no timestamp), the bytes of the .gz
    written beside the page. A 10,000-paper copy is 26 MB of HTML, 5 MB so: storing that
    costs SQLite (which copies a bound value into its statement, its page cache and the
    WAL) a fifth of the memory and of the writing."""
    raw = web_html.encode("utf-8") if isinstance(web_html, str) else web_html
    return gzip.compress(raw, WEB_GZIP_LEVEL, mtime=0)


def create_digest(session: Session, record: DigestRecord) -> Digest:
    """Insert the digest and its items. The unique constraint on digest_items.paper_id
    makes publishing a paper twice impossible. Its deliveries are added by mail/outbox.py,
    in the same transaction."""
    digest = Digest(
        issue=record.issue,
        subject=record.subject,
        html=record.html,
        web_html="",
        web_gz=gzip_copy(record.web_html) if record.web_gz is None else record.web_gz,
        feed_html=record.feed_html,
        paper_count=len(record.items),
        themes=list(record.themes),
        status=DigestStatus.PUBLISHED,
        published_at=record.published_at,
    )
    session.add(digest)
    session.flush()
    session.expire(digest, ["web_gz"])  # not kept in the session's objects
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


_HEAVY = tuple(
    defer(column) for column in (Digest.html, Digest.web_html, Digest.web_gz, Digest.feed_html)
)


def digests_newest_first(session: Session, limit: int | None = None) -> list[Digest]:
    """The published digests, newest first (the ``limit`` newest, or all), without their
    rendered HTML and text (they load on first access, so only the pages that are
    needed are read)."""
    query = select(Digest).options(*_HEAVY).order_by(Digest.issue.desc())
    return list(session.scalars(query if limit is None else query.limit(limit)))


def digests_between(session: Session, first: int, last: int) -> list[Digest]:
    """The published digests numbered ``first`` to ``last``, newest first, without their
    rendered HTML and text."""
    query = select(Digest).options(*_HEAVY).where(Digest.issue.between(first, last))
    return list(session.scalars(query.order_by(Digest.issue.desc())))


def issue_numbers(session: Session) -> list[int]:
    """Every published issue number, oldest first."""
    return list(session.scalars(select(Digest.issue).order_by(Digest.issue)))


def web_copy(session: Session, issue: int) -> bytes | None:
    """The issue's web copy as UTF-8 bytes: its stored gzip, decompressed (an issue
    stored as text, before 0021 or by hand, is encoded by the database: a 10,000-paper
    copy is 26 MB so, but twice that as a str with one character beyond Latin-1)."""
    if session.get_bind().dialect.name == "postgresql":
        as_bytes: Any = func.convert_to(Digest.web_html, "UTF8")
    else:
        as_bytes = cast(Digest.web_html, LargeBinary)  # SQLite: the text's own bytes
    row = session.execute(
        select(Digest.web_gz, as_bytes).where(Digest.issue == issue)
    ).one_or_none()
    if row is None:
        return None
    packed, raw = row
    if packed:
        return _gunzip(packed)
    return None if raw is None else bytes(raw)


def _gunzip(packed: bytes, step: int = 1 << 16) -> bytes:
    """``gzip_copy``'s bytes decompressed into one growing buffer, a small piece at a
    time: gzip.decompress and zlib.decompress gather their output in blocks and join
    them at the end, so for a moment they hold the 26 MB copy twice."""
    out = io.BytesIO()
    inflate = zlib.decompressobj(wbits=31)  # one gzip member, as gzip_copy writes
    data = memoryview(packed)
    for start in range(0, len(data), step):
        piece: bytes | memoryview = data[start : start + step]
        while piece:
            out.write(inflate.decompress(piece, 4 * step))  # at most 4 steps out
            piece = inflate.unconsumed_tail
    out.write(inflate.flush())
    return out.getvalue()  # the buffer itself, cut to size: no copy
