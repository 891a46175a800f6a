"""Papers and the dumps they came from: the ledger that `digest.ingest.files` reads dump
files into (a `Ledger` over one session; the caller commits), and the table of what is
worked out once per paper (`FactsTable`, the store `digest.sections.facts` reads and
fills)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from digest.ingest.ledger import Recorded
from digest.ingest.parse import Listing
from digest.state import db, store
from digest.state.models import DumpFile, Paper, PaperFact

__all__ = ["DumpLedger", "FactsTable"]


class DumpLedger:
    """The dumps stored in one session, as `digest.ingest.ledger.Ledger`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def known_file(self, path: str, size: int, mtime_ns: int) -> bool:
        return store.known_file(self.session, path, size, mtime_ns)

    def known_dump(self, content_hash: str) -> bool:
        return store.known_dump(self.session, content_hash) is not None

    def remember_mtime(self, content_hash: str, path: str, mtime_ns: int) -> None:
        store.remember_mtime(self.session, content_hash, path, mtime_ns)

    def grown_from(self, path: str, data: bytes) -> int | None:
        dump = store.grown_from(self.session, path, data)
        return None if dump is None else dump.id

    def record_failed_dump(
        self, path: str, content_hash: str, size: int, error: str, mtime_ns: int | None
    ) -> None:
        store.record_failed_dump(self.session, path, content_hash, size, error, mtime_ns)

    def record_growth(
        self, dump_id: int, listing: Listing, size: int, mtime_ns: int | None
    ) -> Recorded:
        dump = self.session.get(DumpFile, dump_id)  # loaded by grown_from: no query
        assert dump is not None
        done = store.record_growth(self.session, dump, listing, size, mtime_ns)
        return Recorded(done.papers, done.new_papers)

    def record_listing(self, listing: Listing, size: int, mtime_ns: int | None) -> Recorded:
        done = store.record_listing(self.session, listing, size, mtime_ns)
        return Recorded(done.papers, done.new_papers)


class FactsTable:
    """Each paper's facts (`digest.sections.facts`) in one session, as plain values: the
    summary, the term hits as JSON text and the word count, under a version string. The
    caller commits."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def load(self, ids: Sequence[int], version: str) -> dict[int, tuple[str, str, int]]:
        """(summary, hits, words) of the papers ``ids`` that have facts of ``version``."""
        found: dict[int, tuple[str, str, int]] = {}
        ids = list(ids)
        for i in range(0, len(ids), 500):
            rows = self.session.execute(
                select(PaperFact.paper_id, PaperFact.summary, PaperFact.hits, PaperFact.words)
                .where(PaperFact.paper_id.in_(ids[i : i + 500]))
                .where(PaperFact.version == version)
            )
            found.update({pid: (summary, hits, words) for pid, summary, hits, words in rows})
        return found

    def save(self, version: str, rows: Sequence[tuple[int, str, str, int]]) -> None:
        """Store (paper id, summary, hits, words) rows under ``version``, replacing what
        those papers had: one short write (it takes the write lock; the caller commits)."""
        if not rows:
            return
        db.begin_write(self.session)
        conn = self.session.connection()
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"INSERT INTO paper_facts (paper_id, version, summary, hits, words) VALUES "
            f"({', '.join([mark] * 5)}) ON CONFLICT (paper_id) DO UPDATE SET "
            "version = excluded.version, summary = excluded.summary, hits = excluded.hits, "
            "words = excluded.words"
        )
        values = [(pid, version, summary, hits, words) for pid, summary, hits, words in rows]
        for i in range(0, len(values), 5000):
            conn.exec_driver_sql(sql, values[i : i + 5000])

    def unworked(self, version: str) -> list[tuple[int, str, str]]:
        """(id, title, abstract) of the pending papers with no facts of ``version``."""
        facts = aliased(PaperFact)
        query = (
            select(Paper.id, Paper.title, Paper.abstract)
            .outerjoin(facts, (facts.paper_id == Paper.id) & (facts.version == version))
            .where(Paper.published_in.is_(None), facts.paper_id.is_(None))
            .order_by(Paper.id)
        )
        return [(pid, title, abstract) for pid, title, abstract in self.session.execute(query)]
