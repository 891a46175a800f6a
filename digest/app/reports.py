"""What a publish reports: the rendered issue before it is stored, and what a send did."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from digest.ingest.ledger import IngestReport
from digest.mail.delivery import DeliveryReport
from digest.render.viewmodel import DigestView
from digest.sections.assign import Section
from digest.state import store


@dataclass(frozen=True)
class Prepared:
    """A rendered digest of the pending papers, not yet stored."""

    view: DigestView
    sections: list[Section[store.StoredPaper]]
    html: str
    text: str
    web_html: bytes  # UTF-8: a 10,000-paper copy is 26 MB so, twice that as a str
    feed_html: str = ""


@dataclass
class SendReport:
    ingest: IngestReport
    issue: int | None = None  # the published issue
    prepared: Prepared | None = None
    reason: str = ""  # why nothing was published
    recipients: tuple[str, ...] = ()  # the first few only
    recipient_count: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    files: list[Path] = field(default_factory=list)
    dry_run: bool = False
    waiting: int = 0  # pending papers left for later issues (digest.max_papers_per_digest)
    unselected: int = 0  # subscribers none of whose chosen sections is in the issue
