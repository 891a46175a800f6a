"""Papers and the dumps they came from: the ledger that `digest.ingest.files` reads dump
files into (a `Ledger` over one session; the caller commits)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from digest.ingest.ledger import Recorded
from digest.ingest.parse import Listing
from digest.state import store
from digest.state.models import DumpFile

__all__ = ["DumpLedger"]


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
