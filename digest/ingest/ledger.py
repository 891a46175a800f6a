"""The ledger: the dumps already read, as the caller keeps them (the state's papers
repository is one; ingest never imports the state), and what ingesting reports — each
file's status, papers and warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from digest.ingest.parse import Listing

__all__ = ["DumpReport", "DumpStatus", "IngestReport", "Ledger", "Recorded"]


class DumpStatus(StrEnum):
    """A dump file: read into papers, or not readable (with its reason). KNOWN is never
    stored: it reports a file whose content was read before."""

    INGESTED = "ingested"
    FAILED = "failed"
    KNOWN = "known"
    REFUSED = "refused"  # never stored: not a regular file (a symbolic link, a FIFO)
    WAITING = "waiting"  # never stored: modified within schedule.settle_seconds


@dataclass(frozen=True)
class Recorded:
    """What recording a listing stored: its papers, and how many of them were new."""

    papers: int
    new_papers: int


class Ledger(Protocol):
    """The dumps already read, and where a new one is recorded (the state's papers
    repository is one); the caller commits."""

    def known_file(self, path: str, size: int, mtime_ns: int) -> bool: ...
    def known_dump(self, content_hash: str) -> bool: ...
    def remember_mtime(self, content_hash: str, path: str, mtime_ns: int) -> None: ...
    def grown_from(self, path: str, data: bytes) -> int | None: ...
    def record_failed_dump(
        self, path: str, content_hash: str, size: int, error: str, mtime_ns: int | None
    ) -> None: ...
    def record_growth(
        self, dump_id: int, listing: Listing, size: int, mtime_ns: int | None
    ) -> Recorded: ...
    def record_listing(self, listing: Listing, size: int, mtime_ns: int | None) -> Recorded: ...


@dataclass(frozen=True)
class DumpReport:
    path: str
    # KNOWN: read before; REFUSED: not a regular file; WAITING: still being written
    status: DumpStatus
    papers: int = 0
    new_papers: int = 0
    error: str = ""
    warnings: tuple[str, ...] = ()


@dataclass
class IngestReport:
    dumps: list[DumpReport] = field(default_factory=list)

    @property
    def fresh(self) -> list[DumpReport]:
        return [d for d in self.dumps if d.status in (DumpStatus.INGESTED, DumpStatus.FAILED)]

    @property
    def refused(self) -> list[DumpReport]:
        return [d for d in self.dumps if d.status == DumpStatus.REFUSED]

    @property
    def failed(self) -> list[DumpReport]:
        return [d for d in self.dumps if d.status == DumpStatus.FAILED]

    @property
    def waiting(self) -> list[DumpReport]:
        return [d for d in self.dumps if d.status == DumpStatus.WAITING]

    @property
    def new_papers(self) -> int:
        return sum(d.new_papers for d in self.dumps)
