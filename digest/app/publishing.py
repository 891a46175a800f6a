"""Publishing: cut the pending papers into sections, render them, store the issue and
its deliveries, write the public files. Each way to run it is its own call: `publish`
(store, no delivery), `send` (publish, then deliver), `dry_run` (what would happen,
nothing stored), `send_to` (the issue to one address, nothing published) and `preview`
(the rendered issue, nothing stored)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from digest.app import delivering, heap, ingesting, subscribing
from digest.app.letters import personaliser, stored_copy
from digest.app.reports import Prepared, SendReport
from digest.errors import DeliveryError, StateError, StorageError
from digest.mail import assembly, outbox
from digest.mail import subscribers as rules
from digest.mail.delivery import Policy, Progress
from digest.mail.message import new_message_id
from digest.render.viewmodel import DigestView, digest_view
from digest.sections import facts
from digest.sections.assign import Section, assign
from digest.state import archive, db, digests, papers, store
from digest.state.locks import publish_lock
from digest.state.states import DumpStatus

if TYPE_CHECKING:
    from digest.app.wiring import App
    from digest.ingest.ledger import IngestReport
    from digest.state.handles import Unit

log = logging.getLogger(__name__)

FEED_ENTRY_BYTES = 56_000  # an issue's feed entry, escaped, stays under this (Atom < 60 KB)


Recipients = tuple[int, list[str]]  # how many, and the first few


def _test_address(to: str) -> str:
    """The one address of a test send, checked as a subscriber's address is (one address:
    no list, no line break); SubscriberError naming it otherwise."""
    try:
        return rules.normalize(to)
    except rules.SubscriberError as exc:
        raise rules.SubscriberError(
            f"send --to: {exc.message}", hint="give one e-mail address"
        ) from None


def _check_parts(app: App, to: str | None = None, *, mailing: bool = True) -> str | None:
    """Fail before anything is stored: a bad template set, areas_file, test address, DKIM
    key or delivery setting. Returns the test address checked."""
    app.renderer  # noqa: B018
    app.vocabulary()
    if to is not None:
        to = _test_address(to)
    if mailing:
        app.mailing()
        Policy.of(app.settings.email)
    return to


def _recipients(app: App) -> Recipients:
    with app.reading() as session:
        return rules.receiving(session, subscribing.configured(app))


def publish(
    app: App,
    *,
    progress: Progress | None = None,
    lock_wait: float = 0.0,
    settle_wait: bool = True,
    notice: Callable[[str], None] | None = None,
) -> SendReport:
    """Ingest and publish once: the issue and its deliveries stored, the files written;
    nothing delivered. A one-off run first waits out schedule.settle_seconds for a dump
    modified a moment ago (saying so through `notice`, else the log); the daemon passes
    `settle_wait=False`: its watcher offers a file only once complete."""
    _check_parts(app)
    if settle_wait:
        ingesting.wait_for_dumps(app, notice)
    recipients = _recipients(app)
    with publish_lock(app.database.engine, app.settings.state_dir, wait=lock_wait):
        return _publish(app, recipients, progress)


def send(
    app: App,
    *,
    progress: Progress | None = None,
    lock_wait: float = 0.0,
    stop: threading.Event | None = None,
    abort: threading.Event | None = None,
    drain: bool = False,
    settle_wait: bool = True,
    notice: Callable[[str], None] | None = None,
) -> SendReport:
    """`publish`, then deliver (see the README). `stop` (the daemon's shutdown, a first
    Ctrl-C) ends the delivery early, what is in flight finishing; `abort` (a second one)
    cuts it at once; what is left stays pending. Delivery runs after the publish lock is
    released: other workers may deliver alongside."""
    report = publish(
        app, progress=progress, lock_wait=lock_wait, settle_wait=settle_wait, notice=notice
    )
    if stop and stop.is_set():
        return report
    try:
        report.delivery = delivering.deliver_pending(app, progress, stop, abort=abort, drain=drain)
    except DeliveryError as exc:
        if report.issue is None:
            raise
        raise DeliveryError(
            f"issue #{report.issue} was published to the feeds and web; delivery is pending: {exc}",
            hint="the next `digest send` (or the daemon's retry) delivers it",
        ) from None
    return report


def dry_run(
    app: App,
    *,
    to: str | None = None,
    progress: Progress | None = None,
    settle_wait: bool = True,
    notice: Callable[[str], None] | None = None,
) -> SendReport:
    """What `send` (or `send_to`, with `to`) would publish and to whom; nothing stored."""
    to = _check_parts(app, to, mailing=False)
    if settle_wait:
        ingesting.wait_for_dumps(app, notice)
    recipients = (1, [to]) if to else _recipients(app)
    return _look(app, recipients, progress)


def send_to(
    app: App,
    to: str,
    *,
    progress: Progress | None = None,
    lock_wait: float = 0.0,
    settle_wait: bool = True,
    notice: Callable[[str], None] | None = None,
) -> SendReport:
    """The next issue to `to` only (new dumps ingested; nothing published, nothing
    delivered to anyone else)."""
    address = _check_parts(app, to) or to
    if settle_wait:
        ingesting.wait_for_dumps(app, notice)
    with publish_lock(app.database.engine, app.settings.state_dir, wait=lock_wait):
        with app.session() as session:
            ingested = ingesting.ingest_into(app, session, None, progress)
            report = SendReport(ingested, recipients=(address,))
            session.commit()
            ingesting.keep_facts(app, session)
            report.prepared = _ready(app, session, report, ignore_minimum=True)
        if report.prepared:
            report.delivery = delivering.send_test(app, report.prepared.view, address)
        return report


def preview(app: App) -> tuple[Prepared | None, str]:
    """Render the pending digest (including new dumps, one modified a moment ago
    waited for as `send` does) without storing anything."""
    ingesting.wait_for_dumps(app)
    report = _look(app, (0, []), None)
    return report.prepared, report.reason


def _look(app: App, recipients: Recipients, progress: Progress | None) -> SendReport:
    with app.reading() as session:  # ingests, then rolls back
        report = SendReport(ingesting.ingest_into(app, session, None, progress), dry_run=True)
        report.prepared = _ready(app, session, report)
        report.recipient_count, report.recipients = recipients[0], tuple(recipients[1])
    return report


def prepare(
    app: App, session: Unit, pending: list[store.StoredPaper] | None = None
) -> Prepared | None:
    """Cut the pending papers (at most digest.max_papers_per_digest, the oldest first)
    into sections and render them; None when nothing is pending. The stored e-mail
    copy (what `preview` shows) is the whole e-mail up to STORED_EMAIL_BYTES and fitted
    under it beyond, so premailer never inlines thousands of papers; the web copy
    has them all."""
    if pending is None:
        pending = store.pending_papers(session)
    pending = pending[: app.settings.digest.max_papers_per_digest]
    if not pending:
        return None
    issue = digests.next_issue(session)
    vocabulary = app.vocabulary()
    kept = facts.gather(pending, vocabulary, papers.FactsTable(session))
    sections = assign(pending, app.settings.themes, vocabulary=vocabulary, facts=kept)
    view = issue_view(app, issue, sections, app.clock(), facts.summaries(kept))
    renderer = app.renderer
    return Prepared(
        view=view,
        sections=sections,
        html=stored_copy(app).letter(view).html,
        text=renderer.email_text(view),
        web_html=renderer.web_bytes(view),
        feed_html=renderer.feed_html(view, max_bytes=FEED_ENTRY_BYTES),
    )


def issue_view(
    app: App,
    issue: int,
    sections: Sequence[Section[store.StoredPaper]],
    when: datetime,
    summaries: Mapping[str, str] | None = None,
) -> DigestView:
    return digest_view(app.settings, issue, sections, when, summaries)


def _ready(
    app: App, session: Unit, report: SendReport, *, ignore_minimum: bool = False
) -> Prepared | None:
    """The prepared digest, or None with report.reason saying why not."""
    pending = store.pending_count(session)
    limit = app.settings.digest.max_papers_per_digest
    report.waiting = max(0, pending - limit)
    if report.waiting:
        log.info(
            "%d pending papers: the oldest %d go in this issue (digest.max_papers_per_"
            "digest), %d wait for the next",
            pending,
            limit,
            report.waiting,
        )
    minimum = 1 if ignore_minimum else app.settings.digest.min_papers
    if pending == 0:
        report.reason = _nothing_new(app, report.ingest)
        return None
    if pending < minimum:
        report.reason = (
            f"nothing to publish: {pending} pending paper(s), fewer than "
            f"digest.min_papers = {minimum}; they wait for the next run"
        )
        return None
    return prepare(app, session)


def _nothing_new(app: App, ingested: IngestReport) -> str:
    """Why nothing is pending after this ingest."""
    fresh, waiting = ingested.fresh, ingested.waiting
    if waiting and not fresh:
        return (
            f"nothing to publish yet: {len(waiting)} dump(s) still being written "
            "(listed above); run `digest send` again once complete"
        )
    if not fresh:
        return f"nothing to publish: no new dump in {app.settings.dumps_dir}"
    if all(d.status == DumpStatus.FAILED for d in fresh):
        return f"nothing to publish: the {len(fresh)} new dump(s) failed to parse"
    return f"nothing to publish: the {len(fresh)} new dump(s) held no paper not already sent"


def _publish(app: App, recipients: Recipients, progress: Progress | None) -> SendReport:
    heap.give_back_freed_memory()
    web_copy = web_gz = b""
    with app.session() as session:
        report = SendReport(ingesting.ingest_into(app, session, None, progress))
        session.commit()
        ingesting.keep_facts(app, session)
        prepared = _ready(app, session, report)
        if prepared is not None:
            # compressed once, outside the write: what is stored and the page's .gz
            web_gz = digests.gzip_copy(prepared.web_html)
            report.unselected = _store(app, session, prepared, web_gz)
            # the web copy (26 MB at 10,000 papers) is written from these bytes, not read
            # back, and not kept in the report while the other files are written
            web_copy = prepared.web_html
            report.issue, report.prepared = prepared.view.issue, replace(prepared, web_html=b"")
            report.recipient_count = recipients[0]
            report.recipients = tuple(recipients[1])
            del prepared
    if report.issue is not None:
        archive.refresh_statistics(app.database)  # searches planned for the new rows
    try:
        if report.issue is not None:
            report.files = _write_web_copy(app, report.issue, web_copy, web_gz)
        del web_copy, web_gz
        report.files += publish_files(app)
    except StorageError as exc:
        if report.issue is None:
            raise
        raise StorageError(
            exc.path,
            f"{exc.message.removeprefix(exc.path + ': ')}; issue #{report.issue} is stored",
            hint=f"{exc.hint}; the next `digest send` writes its files and sends its e-mails",
        ) from None
    return report


def _write_web_copy(app: App, issue: int, html: bytes, gz: bytes) -> list[Path]:
    """The stored issue's web copy and its .gz, from the bytes just stored."""
    from digest.publish.public import GZIP_LEVEL, write_public
    from digest.urls import issue_path

    path = app.settings.public_dir / issue_path(issue)
    same = GZIP_LEVEL == digests.WEB_GZIP_LEVEL  # the stored gzip is the .gz's bytes
    return [path] if write_public(path, html, gz=gz if same else None) else []


def _store(app: App, session: Unit, prepared: Prepared, web_gz: bytes) -> int:
    """Store the digest, its variants and one delivery per subscriber, in one
    transaction (the variants are rendered before it takes the write lock). Returns
    how many subscribers get no letter: none of their chosen sections is in it."""
    items = [
        (paper.id, section.name, section.slug, section.area_of(k))
        for section in prepared.sections
        for k, paper in enumerate(section.papers)
    ]
    record = digests.DigestRecord(
        issue=prepared.view.issue,
        subject=prepared.view.subject,
        html=prepared.html,
        web_html=prepared.web_html,
        web_gz=web_gz,
        published_at=prepared.view.published_at,
        items=items,
        themes=[s.name for s in prepared.sections],
        feed_html=prepared.feed_html or None,
    )
    configured = subscribing.configured(app)
    letters_of = personaliser(app)
    view = prepared.view
    take = subscribing.topic_covers(app)
    letters = letters_of.letters(
        view, outbox.selections(session, view, with_all=bool(configured), take=take)
    )
    pieces = assembly.prepare(session, view, letters_of, app.settings.email.for_you_max, take)
    sender = app.settings.email.sender

    def new_id() -> str:
        return new_message_id(sender)

    try:
        while True:  # What was read above (pending papers, selections) is read again or
            # checked by unique keys here; the write is short and waits its turn.
            try:
                with db.writing_first(session):
                    rules.sync_configured(session, configured)
                    digest = digests.create_digest(session, record)
                    pending, unselected = outbox.create_deliveries(
                        session, digest.id, view, letters_of, letters, new_id, take
                    )
                    reached = assembly.store(session, digest.id, pieces, new_id)
                    pending, unselected = pending + reached, unselected - reached
                break
            except outbox.LettersMissing as missing:  # rendered outside the write
                session.rollback()
                letters |= letters_of.letters(view, missing.selections)
    except db.Taken:
        raise StateError(
            "another process published these papers first; nothing was published twice",
            hint="run `digest status`",
        ) from None
    log.info(
        "published issue #%d: %d papers in %d sections; %d letters to deliver, %d "
        "skipped (none of their chosen sections is in this issue)",
        record.issue,
        len(items),
        len(prepared.sections),
        pending,
        unselected,
    )
    return unselected


def publish_files(app: App) -> list[Path]:
    """Bring the public files (web copies, index, pages, feeds) in step with the state;
    returns those that changed (publish/site.py)."""
    from digest.publish.site import SiteFiles

    return SiteFiles(app.settings, app.renderer, app.session, app.vocabulary()).write()
