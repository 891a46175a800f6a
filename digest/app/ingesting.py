"""Ingesting: reading new dumps into the state (a file modified a moment ago waits until
it has settled), and a look at what the next issue would hold."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import ConfigError
from digest.ingest.files import ingest_files, ingest_folder, read_ahead
from digest.ingest.folder import scan
from digest.ingest.ledger import IngestReport
from digest.ingest.settle import wait_until_settled
from digest.state import db, papers, store

if TYPE_CHECKING:
    from digest.app.wiring import App
    from digest.mail.delivery import Progress
    from digest.sections.assign import Section
    from digest.state.handles import Unit

log = logging.getLogger(__name__)


def _age(path: Path, now: float) -> float:
    """Seconds since ``path`` was last modified (0 when it cannot be read: ingest says why)."""
    try:
        return now - path.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


def ingest(
    app: App,
    paths: Sequence[Path] | None = None,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> IngestReport:
    """Read the given dumps, or every new one in the dumps folder: one modified a
    moment ago is waited for first, as `send` does (see `wait_for_dumps`)."""
    if not paths:
        wait_for_dumps(app, notice)
    with app.session() as session:
        report = ingest_into(app, session, paths, progress)
        session.commit()
        keep_facts(app, session)
    return report


def keep_facts(app: App, session: Unit) -> None:
    """After an ingest's commit: work out what is kept per paper (summary, area terms)
    for the pending papers that lack it, with no lock held, then store it in one short
    write. An unusable areas file is left to the publish to report."""
    from digest.sections import facts

    with suppress(ConfigError):
        if facts.work_out(papers.FactsTable(session), app.vocabulary()):
            session.commit()


def ingest_into(
    app: App,
    session: Unit,
    paths: Sequence[Path] | None,
    progress: Progress | None,
    *,
    settle: float | None = None,
) -> IngestReport:
    """Read new dumps into ``session`` (the caller commits or rolls back); a file
    modified within ``settle`` seconds (default ``schedule.settle_seconds``) waits.
    The files are read and parsed first, in a read transaction; only then is the write
    lock taken (db.begin_write), to store them: no parse holds up other writers."""
    s = app.settings
    limit = s.digest.max_dump_bytes
    settled_after = s.schedule.settle_seconds  # then a file is read whole
    settle = s.schedule.settle_seconds if settle is None else settle
    if paths:
        files = list(paths)
    else:
        now = time.time()
        files = [p for p in scan(s.dumps_dir)[0] if _age(p, now) >= settle]
    ledger = papers.DumpLedger(session)
    ahead = read_ahead(ledger, files, progress, max_bytes=limit, settled_after=settled_after)
    db.begin_write(session)
    if paths:
        return ingest_files(
            ledger, files, progress, max_bytes=limit, settled_after=settled_after, ahead=ahead
        )
    return ingest_folder(
        ledger,
        s.dumps_dir,
        progress,
        settle=settle,
        max_bytes=limit,
        settled_after=settled_after,
        ahead=ahead,
    )


def wait_for_dumps(app: App, notice: Callable[[str], None] | None = None) -> None:
    """Wait until every dump in the folder has settled (see wait_until_settled)."""
    wait_until_settled(
        app.settings.dumps_dir,
        app.settings.schedule.settle_seconds,
        notice or (lambda text: log.warning("%s", text)),
    )


def pending_sections(app: App) -> tuple[list[Section[store.StoredPaper]], str]:
    """The pending papers (new dumps included, nothing stored) grouped into sections as
    the next digest would group them, or no sections and why."""
    from digest.sections import facts
    from digest.sections.assign import assign

    with app.reading() as session:  # ingests, then rolls back
        # a look, not a publish: every dump counts, even one modified a moment ago
        ingest_into(app, session, None, None, settle=0)
        pending = store.pending_papers(session)
        vocabulary = app.vocabulary()
        kept = facts.gather(pending, vocabulary, papers.FactsTable(session))
        sections = assign(pending, app.settings.themes, vocabulary=vocabulary, facts=kept)
    if sections:
        return sections, ""
    why = f"no pending papers: nothing new in {app.settings.dumps_dir} since the last digest"
    return [], why
