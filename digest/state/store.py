"""The queries on the state: record dumps and papers, pending papers, publish a digest.
(The delivery rows have theirs in outbox.py.)"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import LargeBinary, Text, bindparam, cast, func, insert, select, update
from sqlalchemy.orm import Session, defer

from digest.ingest.keys import different_abstracts
from digest.ingest.links import Link
from digest.ingest.parse import Listing
from digest.state.models import (
    Delivery,
    Digest,
    DigestItem,
    DumpFile,
    Meta,
    Paper,
    Sighting,
    utcnow,
)
from digest.state.states import DigestStatus, DumpStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredPaper:
    """A paper as the rest of the pipeline sees it (plain data, no session)."""

    id: int
    key: str
    title: str
    abstract: str
    links: tuple[Link, ...]
    first_seen_at: datetime
    sightings: int  # how many dumps listed it
    position: int  # its best (lowest) position in a dump


@dataclass(frozen=True)
class IngestOutcome:
    dump_id: int
    papers: int
    new_papers: int


def known_dump(session: Session, content_hash: str) -> DumpFile | None:
    return session.scalar(select(DumpFile).where(DumpFile.content_hash == content_hash))


def record_failed_dump(
    session: Session,
    path: str,
    content_hash: str,
    size: int,
    error: str,
    mtime_ns: int | None = None,
) -> DumpFile:
    dump = DumpFile(
        path=path,
        content_hash=content_hash,
        size=size,
        mtime_ns=mtime_ns,
        status=DumpStatus.FAILED,
        error=error,
        warnings=[],
    )
    session.add(dump)
    session.flush()
    return dump


def record_listing(
    session: Session, listing: Listing, size: int, mtime_ns: int | None = None
) -> IngestOutcome:
    """Store a parsed dump: new papers are inserted, every paper gets a sighting (Core
    executemany, no ORM object per paper)."""
    dump = DumpFile(
        path=listing.path,
        content_hash=listing.content_hash,
        size=size,
        mtime_ns=mtime_ns,
        status=DumpStatus.INGESTED,
        warnings=list(listing.warnings),
        listing_date=listing.listing_date,
        paper_count=len(listing.papers),
    )
    session.add(dump)
    session.flush()
    by_key = {p.key: p for p in reversed(listing.papers)}  # first wins
    by_key.pop("", None)
    stored = _papers_by_key(session, by_key)
    warnings = [
        f"{listing.path}:{p.line}: {p.title!r} has the key of the stored paper "
        f"{stored[key][1]!r} but another abstract; kept the stored one"
        for key, p in by_key.items()
        if key in stored and different_abstracts(stored[key][2], p.abstract)
    ]
    for warning in warnings:
        log.warning("%s", warning)
    dump.warnings = [*dump.warnings, *warnings]
    existing = {key: row[0] for key, row in stored.items()}
    now = stored_time(session, utcnow())
    new = [
        (
            key,
            p.title,
            p.abstract,
            json.dumps([{"url": link.url, "kind": link.kind} for link in p.links]),
            now,
            dump.id,
        )
        for key, p in by_key.items()
        if key not in existing
    ]
    before = session.scalar(select(func.coalesce(func.max(Paper.id), 0)))
    executemany(session, "papers", _PAPER_COLUMNS, new)
    if new:  # the ids just given: above the old highest (an index range), first seen here
        ours = select(Paper.key, Paper.id).where(Paper.first_dump_id == dump.id)
        given = {key: pid for key, pid in session.execute(ours.where(Paper.id > before))}
        if len(given) < len(new):  # ids not handed out in order (rows put in by hand)
            given = {key: pid for key, pid in session.execute(ours)}
        existing.update(given)
    sightings = [(existing[key], dump.id, p.position) for key, p in by_key.items()]
    executemany(session, "sightings", ("paper_id", "dump_id", "position"), sightings)
    dump.new_papers = len(new)
    session.flush()
    return IngestOutcome(dump.id, len(by_key), len(new))


def grown_from(session: Session, path: str, data: bytes) -> DumpFile | None:
    """The dump stored from this path whose bytes are the start of ``data``: the same
    file read while it was still being written."""
    rows = session.scalars(
        select(DumpFile)
        .where(
            DumpFile.path == path, DumpFile.status == DumpStatus.INGESTED, DumpFile.size < len(data)
        )
        .order_by(DumpFile.size.desc())
    )
    for dump in rows:
        if hashlib.sha256(data[: dump.size]).hexdigest() == dump.content_hash:
            return dump
    return None


def record_growth(
    session: Session, dump: DumpFile, listing: Listing, size: int, mtime_ns: int | None = None
) -> IngestOutcome:
    """Update a dump that grew: its row takes the new hash, size and counts; papers not
    yet sighted in it are added (new ones inserted), and an abstract first stored from
    it that the file has since completed is completed too."""
    by_key = {p.key: p for p in reversed(listing.papers)}
    by_key.pop("", None)
    existing = {key: row[0] for key, row in _papers_by_key(session, by_key).items()}
    sighted = set(session.scalars(select(Sighting.paper_id).where(Sighting.dump_id == dump.id)))
    for paper in session.scalars(select(Paper).where(Paper.first_dump_id == dump.id)):
        grown = by_key.get(paper.key)
        if (
            grown
            and len(grown.abstract) > len(paper.abstract)
            and grown.abstract.startswith(paper.abstract)
        ):
            paper.abstract = grown.abstract
            paper.links = [{"url": link.url, "kind": link.kind} for link in grown.links]
    new = [
        Paper(
            key=key,
            title=p.title,
            abstract=p.abstract,
            links=[{"url": link.url, "kind": link.kind} for link in p.links],
            first_dump_id=dump.id,
        )
        for key, p in by_key.items()
        if key not in existing
    ]
    session.add_all(new)
    session.flush()
    existing.update({paper.key: paper.id for paper in new})
    session.add_all(
        Sighting(paper_id=existing[key], dump_id=dump.id, position=p.position)
        for key, p in by_key.items()
        if existing[key] not in sighted
    )
    dump.content_hash, dump.size, dump.mtime_ns = listing.content_hash, size, mtime_ns
    dump.warnings = list(listing.warnings)
    dump.listing_date = listing.listing_date
    dump.paper_count = len(by_key)
    dump.new_papers += len(new)
    session.flush()
    return IngestOutcome(dump.id, len(by_key), len(new))


_PAPER_COLUMNS = ("key", "title", "abstract", "links", "first_seen_at", "first_dump_id")


def stored_time(session: Session, when: datetime) -> object:
    """A time as UTCDateTime stores it: naive UTC text on SQLite, as it is elsewhere."""
    if session.get_bind().dialect.name == "sqlite":
        return when.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return when


def executemany(
    session: Session, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """Rows of checked values through the driver's executemany, in the session's
    transaction: per-row statement processing would cost more than the database."""
    if not rows:
        return
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    for i in range(0, len(rows), 5000):
        conn.exec_driver_sql(sql, list(rows[i : i + 5000]))


def _papers_by_key(session: Session, keys: Iterable[str]) -> dict[str, tuple[int, str, str]]:
    """(id, title, abstract) of the stored papers with these keys."""
    found: dict[str, tuple[int, str, str]] = {}
    keys = list(keys)
    for i in range(0, len(keys), 500):
        rows = session.execute(
            select(Paper.key, Paper.id, Paper.title, Paper.abstract).where(
                Paper.key.in_(keys[i : i + 500])
            )
        )
        found.update({key: (pid, title, abstract) for key, pid, title, abstract in rows})
    return found


def pending_papers(session: Session) -> list[StoredPaper]:
    """Papers never in a published digest, oldest first, in dump order: only the pending
    papers are read (papers.published_in IS NULL, a partial index), and only their
    sightings are counted, so the cost follows the new papers, not the history."""
    pending = Paper.published_in.is_(None)
    rows = session.execute(
        select(Paper, func.count().label("n"), func.min(Sighting.position).label("pos"))
        .join(Sighting, Sighting.paper_id == Paper.id)
        .where(pending)
        .group_by(Paper.id)
        .order_by(Paper.first_dump_id, func.min(Sighting.position), Paper.id)
    )
    return [_stored(paper, n, pos) for paper, n, pos in rows]


def pending_count(session: Session) -> int:
    """How many papers are pending (seen, never in a published digest)."""
    query = select(func.count()).select_from(Paper).where(Paper.published_in.is_(None))
    return int(session.scalar(query) or 0)


def remember_mtime(session: Session, content_hash: str, path: str, mtime_ns: int) -> None:
    """A dump recorded before mtimes were kept: keep it now, so it is not hashed again."""
    session.execute(
        update(DumpFile)
        .where(
            DumpFile.content_hash == content_hash,
            DumpFile.path == path,
            DumpFile.mtime_ns.is_(None),
        )
        .values(mtime_ns=mtime_ns)
    )


def known_file(session: Session, path: str, size: int, mtime_ns: int) -> bool:
    """A dump file already read, recognised by path, size and mtime (no hashing)."""
    query = select(DumpFile.id).where(
        DumpFile.path == path, DumpFile.size == size, DumpFile.mtime_ns == mtime_ns
    )
    return session.scalar(query.limit(1)) is not None


def _stored(paper: Paper, sightings: int, position: int) -> StoredPaper:
    links = tuple(Link(url=d["url"], kind=d["kind"]) for d in paper.links)  # type: ignore[arg-type]
    return StoredPaper(
        paper.id,
        paper.key,
        paper.title,
        paper.abstract,
        links,
        paper.first_seen_at,
        sightings,
        position,
    )


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
    makes publishing a paper twice impossible. Its deliveries are added by delivery.py,
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


@dataclass(frozen=True)
class Status:
    papers_seen: int
    papers_pending: int
    papers_sent: int
    dumps_ingested: int
    dumps_failed: int
    failed: list[tuple[str, str]]  # (path, error) of the most recent failures
    last_issue: int | None
    last_subject: str | None
    last_published_at: datetime | None
    last_listing_date: date | None
    deliveries: dict[str, int]  # status -> count, for the last digest


def status(session: Session) -> Status:
    seen = session.scalar(select(func.count()).select_from(Paper)) or 0
    sent = session.scalar(select(func.count()).select_from(DigestItem)) or 0
    dumps = dict(
        session.execute(select(DumpFile.status, func.count()).group_by(DumpFile.status)).all()
    )
    failed = session.execute(
        select(DumpFile.path, DumpFile.error)
        .where(DumpFile.status == DumpStatus.FAILED)
        .order_by(DumpFile.id.desc())
        .limit(5)
    ).all()
    last = session.scalar(select(Digest).order_by(Digest.issue.desc()).limit(1))
    deliveries: dict[str, int] = {}
    if last is not None:
        deliveries = dict(
            session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.digest_id == last.id)
                .group_by(Delivery.status)
            ).all()
        )
    last_date = session.scalar(select(func.max(DumpFile.listing_date)))
    return Status(
        papers_seen=seen,
        papers_pending=seen - sent,
        papers_sent=sent,
        dumps_ingested=dumps.get(DumpStatus.INGESTED, 0),
        dumps_failed=dumps.get(DumpStatus.FAILED, 0),
        failed=[(p, e or "") for p, e in failed],
        last_issue=last.issue if last else None,
        last_subject=last.subject if last else None,
        last_published_at=last.published_at if last else None,
        last_listing_date=last_date,
        deliveries=deliveries,
    )


def get_meta(session: Session, key: str) -> str | None:
    row = session.get(Meta, key)
    return row.value if row else None


def set_meta(session: Session, key: str, value: str | None) -> None:
    """Set (or, with None, delete) a small fact kept across restarts. It reads the row
    first: begin the unit of work with `db.begin_write` (on SQLite a read transaction
    cannot take the write lock while other processes write)."""
    row = session.get(Meta, key)
    if value is None:
        if row is not None:
            session.delete(row)
    else:
        session.merge(Meta(key=key, value=value))
