"""The one place that strings the job together: ingest → diff → sections → render →
publish → deliver. The CLI, the scheduler and the web server all call this."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.errors import (
    ConfigError,
    DeliveryError,
    DigestError,
    StateError,
    StateUnwritable,
    StorageError,
)
from digest.ingest.files import (
    IngestReport,
    dump_candidates,
    ingest_files,
    ingest_folder,
    read_ahead,
    wait_until_settled,
)
from digest.mail import bounces, delivery, outbox, subscribers
from digest.mail import engine as delivery_engine
from digest.mail.bounces import Outcome
from digest.mail.delivery import DeliveryReport, Mailing, Policy, Progress
from digest.mail.inbox import Inbox
from digest.mail.message import (
    PLACEHOLDER,
    PermanentFailure,
    TransientFailure,
    Transport,
    make_transport,
    new_message_id,
    sender_domain,
)
from digest.mail.signup import Confirmation, Request, SignupDesk, notice_message
from digest.mail.subscribers import SubscriberBook
from digest.mail.variants import Covers, Personaliser, covers
from digest.publish.site import SiteFiles
from digest.render.renderer import DigestView, Renderer
from digest.render.topics import TopicGroup, chosen_topics, topic_groups
from digest.render.viewmodel import digest_view, subject_line
from digest.sections.areas import Vocabulary, load_vocabulary
from digest.sections.assign import Section, assign
from digest.state import db, digests, issues, papers, store, workers
from digest.state.locks import publish_lock
from digest.state.states import DumpStatus
from digest.state.workers import WorkerInfo
from digest.urls import slugify

log = logging.getLogger(__name__)
STORED_EMAIL_BYTES = 500_000  # the stored e-mail copy at most: beyond, fitted like the e-mail

FEED_ENTRY_BYTES = 56_000  # an issue's feed entry, escaped, stays under this (Atom < 60 KB)


@dataclass(frozen=True)
class Prepared:
    """A rendered digest of the pending papers, not yet stored."""

    view: DigestView
    sections: list[Section[store.StoredPaper]]
    html: str
    text: str
    web_html: str
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


def _age(path: Path, now: float) -> float:
    """Seconds since ``path`` was last modified (0 when it cannot be read: ingest says why)."""
    try:
        return now - path.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


def _test_address(to: str) -> str:
    """The one address of a test send, checked as a subscriber's address is (one address:
    no list, no line break); SubscriberError naming it otherwise."""
    try:
        return subscribers.normalize(to)
    except subscribers.SubscriberError as exc:
        raise subscribers.SubscriberError(
            f"send --to: {exc.message}", hint="give one e-mail address"
        ) from None


class App:
    """The core: one per settings; everything else calls its methods."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        transport: Transport | None = None,
        renderer: Renderer | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._migrated = False
        self._sessions: sessionmaker[Session] | None = None
        self._empty: sessionmaker[Session] | None = None
        self._transport = transport
        self._renderer = renderer
        self.clock = clock or (lambda: datetime.now(UTC))
        self._mailing_cache: Mailing | None = None
        self._web_secret: bytes | None = None

    # Building the app touches nothing: the database is opened (created, migrated) on
    # first use by a command that writes, and the template set is loaded when something
    # is rendered. Read-only commands read what exists (see `reading`).

    @property
    def engine(self) -> Engine:
        """The state database, created and brought up to date on first use."""
        if self._engine is None:
            self._engine = db.make_engine(self.settings.database_url)
        if not self._migrated:
            db.upgrade(self._engine)
            self._migrated = True
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = db.make_sessionmaker(self.engine)
        return self._sessions

    @property
    def renderer(self) -> Renderer:
        """The template set (digest.template_set) with the user's templates_dir, loaded on
        first use."""
        if self._renderer is None:
            s = self.settings
            self._renderer = Renderer(s.digest.template_set, s.templates_dir)
        return self._renderer

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def has_state(self) -> bool:
        """Whether the state database exists (a read-only command does not create it)."""
        return self._engine is not None or db.exists(self.settings.database_url)

    def read_sessions(self) -> sessionmaker[Session]:
        """Sessions for commands that only read: the state as it is or, before the first
        write, an empty in-memory state (nothing is created on disk)."""
        if self.has_state():
            return self.sessions
        if self._empty is None:
            self._empty = db.make_sessionmaker(db.empty_engine())
        return self._empty

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session that is rolled back at the end: see `read_sessions`."""
        with self.read_sessions()() as session:
            try:
                yield session
            finally:
                session.rollback()

    def transport(self) -> Transport:
        if self._transport is not None:
            return self._transport
        e = self.settings.email
        return make_transport(
            e.transport,
            outbox=self.settings.outbox_dir,
            host=e.smtp_host,
            port=e.smtp_port,
            security=e.smtp_security,
            user=e.smtp_user,
            password=self.settings.smtp_password,
            timeout=e.smtp_timeout,
        )

    # ingest ---------------------------------------------------------------

    def ingest(
        self,
        paths: Sequence[Path] | None = None,
        progress: Progress | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> IngestReport:
        """Read the given dumps, or every new one in the dumps folder: one modified a
        moment ago is waited for first, as `send` does (see `wait_for_dumps`)."""
        if not paths:
            self.wait_for_dumps(notice)
        with self.session() as session:
            report = self._ingest(session, paths, progress)
            session.commit()
        return report

    def _ingest(
        self,
        session: Session,
        paths: Sequence[Path] | None,
        progress: Progress | None,
        *,
        settle: float | None = None,
    ) -> IngestReport:
        """Read new dumps into ``session`` (the caller commits or rolls back); a file
        modified within ``settle`` seconds (default ``schedule.settle_seconds``) waits.
        The files are read and parsed first, in a read transaction; only then is the write
        lock taken (db.begin_write), to store them: no parse holds up other writers."""
        limit = self.settings.digest.max_dump_bytes
        settled_after = self.settings.schedule.settle_seconds  # then a file is read whole
        settle = self.settings.schedule.settle_seconds if settle is None else settle
        if paths:
            files = list(paths)
        else:
            now = time.time()
            files = [p for p in dump_candidates(self.settings.dumps_dir) if _age(p, now) >= settle]
        ledger = papers.DumpLedger(session)
        ahead = read_ahead(ledger, files, progress, max_bytes=limit, settled_after=settled_after)
        db.begin_write(session)
        if paths:
            return ingest_files(
                ledger, files, progress, max_bytes=limit, settled_after=settled_after, ahead=ahead
            )
        return ingest_folder(
            ledger,
            self.settings.dumps_dir,
            progress,
            settle=settle,
            max_bytes=limit,
            settled_after=settled_after,
            ahead=ahead,
        )

    # prepare --------------------------------------------------------------

    def prepare(
        self, session: Session, pending: list[store.StoredPaper] | None = None
    ) -> Prepared | None:
        """Cut the pending papers (at most digest.max_papers_per_digest, the oldest first)
        into sections and render them; None when nothing is pending. The stored e-mail
        copy (what `preview` shows) is the whole e-mail up to STORED_EMAIL_BYTES and fitted
        under it beyond, so premailer never inlines thousands of papers; the web copy
        has them all."""
        if pending is None:
            pending = store.pending_papers(session)
        pending = pending[: self.settings.digest.max_papers_per_digest]
        if not pending:
            return None
        issue = digests.next_issue(session)
        sections = assign(pending, self.settings.themes, vocabulary=self.vocabulary())
        view = self.view(issue, sections, self.clock())
        return Prepared(
            view=view,
            sections=sections,
            html=self._stored_copy().letter(view).html,
            text=self.renderer.email_text(view),
            web_html=self.renderer.web_html(view),
            feed_html=self.renderer.feed_html(view, max_bytes=FEED_ENTRY_BYTES),
        )

    def view(
        self, issue: int, sections: Sequence[Section[store.StoredPaper]], when: datetime
    ) -> DigestView:
        return digest_view(self.settings, issue, sections, when)

    # send -----------------------------------------------------------------

    def recipients(self) -> list[str]:
        """Who would receive the next digest: the configured recipients not unsubscribed
        or bounced, then the active subscribers."""
        configured = self._configured()
        with self.reading() as session:
            return subscribers.would_receive(session, configured)

    def _configured(self) -> list[str]:
        """email.recipients, validated and folded (first spelling wins)."""
        seen: dict[str, str] = {}
        for raw in self.settings.email.recipients:
            try:
                address = subscribers.normalize(raw)
            except subscribers.SubscriberError as exc:
                raise ConfigError(f"email.recipients: {exc.message}") from None
            seen.setdefault(address.lower(), address)
        return list(seen.values())

    def subscribers(self, *, read_only: bool = False) -> SubscriberBook:
        """The subscriber list (add, remove, import, export, unsubscribe); `read_only`
        for listing and export, which must not create the state."""
        return SubscriberBook(
            self.read_sessions() if read_only else self.sessions,
            self.theme_choices,
            self.topic_aliases,
        )

    def theme_choices(self) -> list[tuple[str, str]]:
        """(slug, name) of every theme a subscriber can choose: the configured themes,
        then the research areas (never one-off topics or the remaining section)."""
        seen = {slugify(t.name): t.name for t in self.settings.themes}
        for area in self.vocabulary():
            seen.setdefault(area.slug, area.name)
        return list(seen.items())

    def topic_groups(self) -> list[TopicGroup]:
        """The topics a reader may pick, grouped under their broad areas (the pages)."""
        return topic_groups(
            self.vocabulary(), [(slugify(t.name), t.name) for t in self.settings.themes]
        )

    def chosen_topics(self, slugs: Sequence[str]) -> set[str]:
        """A reader's stored topics as the pages tick them (old slugs resolved)."""
        return chosen_topics(self.vocabulary(), slugs)

    def topic_aliases(self) -> dict[str, str]:
        """Old slugs of the research areas -> the slugs that replaced them."""
        return {old: a.slug for a in self.vocabulary() for old in a.aliases}

    def topic_covers(self) -> Covers:
        """What each topic a subscriber chose takes: its area and every area below it
        (old slugs and names resolved), see mail/variants.py."""
        return covers(self.vocabulary(), [t.name for t in self.settings.themes])

    def send(
        self,
        *,
        dry_run: bool = False,
        to: str | None = None,
        progress: Progress | None = None,
        lock_wait: float = 0.0,
        stop: threading.Event | None = None,
        abort: threading.Event | None = None,
        drain: bool = False,
        deliver: bool = True,
        settle_wait: bool = True,
        notice: Callable[[str], None] | None = None,
    ) -> SendReport:
        """Ingest, publish and deliver once (see the README). `stop` (the daemon's
        shutdown, a first Ctrl-C) ends the delivery early, what is in flight finishing;
        `abort` (a second one) cuts it at once; what is left stays pending. Delivery runs
        after the publish lock is released: other workers may deliver alongside.

        A one-off send first waits out schedule.settle_seconds for a dump modified a
        moment ago (saying so through `notice`, else the log), then reads it; the daemon
        passes `settle_wait=False`: its watcher offers a file only once complete."""
        self.renderer  # noqa: B018  (a bad template set fails before anything is stored)
        self.vocabulary()  # so does a bad areas_file
        if to is not None:
            to = _test_address(to)
        if not dry_run:
            self._mailing()  # a bad DKIM key or delivery setting fails before publishing
            Policy.of(self.settings.email)
        if settle_wait:
            self.wait_for_dumps(notice)
        if to:
            recipients: tuple[int, list[str]] = (1, [to])
        else:
            with self.reading() as session:
                recipients = subscribers.receiving(session, self._configured())
        if dry_run:
            return self._dry_run(recipients, progress)
        with publish_lock(self.engine, self.settings.state_dir, wait=lock_wait):
            if to:
                return self._send_test(to, progress)
            report = self._publish(recipients, progress)
        if deliver and not (stop and stop.is_set()):
            try:
                report.delivery = self.deliver_pending(progress, stop, abort=abort, drain=drain)
            except DeliveryError as exc:
                if report.issue is None:
                    raise
                raise DeliveryError(
                    f"issue #{report.issue} was published to the feeds and web; "
                    f"delivery is pending: {exc}",
                    hint="the next `digest send` (or the daemon's retry) delivers it",
                ) from None
        return report

    def wait_for_dumps(self, notice: Callable[[str], None] | None = None) -> None:
        """Wait until every dump in the folder has settled (see wait_until_settled)."""
        wait_until_settled(
            self.settings.dumps_dir,
            self.settings.schedule.settle_seconds,
            notice or (lambda text: log.warning("%s", text)),
        )

    def _dry_run(self, recipients: tuple[int, list[str]], progress: Progress | None) -> SendReport:
        with self.reading() as session:  # ingests, then rolls back
            report = SendReport(self._ingest(session, None, progress), dry_run=True)
            report.prepared = self._ready(session, report)
            report.recipient_count, report.recipients = recipients[0], tuple(recipients[1])
        return report

    def _send_test(self, to: str, progress: Progress | None) -> SendReport:
        with self.session() as session:
            report = SendReport(self._ingest(session, None, progress), recipients=(to,))
            session.commit()
            report.prepared = self._ready(session, report, ignore_minimum=True)
        if report.prepared:
            report.delivery = self._deliver_one_off(report.prepared, to)
        return report

    def _ready(
        self, session: Session, report: SendReport, *, ignore_minimum: bool = False
    ) -> Prepared | None:
        """The prepared digest, or None with report.reason saying why not."""
        pending = store.pending_count(session)
        limit = self.settings.digest.max_papers_per_digest
        report.waiting = max(0, pending - limit)
        if report.waiting:
            log.info(
                "%d pending papers: the oldest %d go in this issue (digest.max_papers_per_"
                "digest), %d wait for the next",
                pending,
                limit,
                report.waiting,
            )
        minimum = 1 if ignore_minimum else self.settings.digest.min_papers
        if pending == 0:
            fresh, waiting = report.ingest.fresh, report.ingest.waiting
            if waiting and not fresh:
                report.reason = (
                    f"nothing to publish yet: {len(waiting)} dump(s) still being written "
                    "(listed above); run `digest send` again once complete"
                )
            elif not fresh:
                report.reason = f"nothing to publish: no new dump in {self.settings.dumps_dir}"
            elif all(d.status == DumpStatus.FAILED for d in fresh):
                report.reason = f"nothing to publish: the {len(fresh)} new dump(s) failed to parse"
            else:
                report.reason = (
                    f"nothing to publish: the {len(fresh)} new dump(s) held no paper "
                    "not already sent"
                )
            return None
        if pending < minimum:
            report.reason = (
                f"nothing to publish: {pending} pending paper(s), fewer than "
                f"digest.min_papers = {minimum}; they wait for the next run"
            )
            return None
        return self.prepare(session)

    def _publish(self, recipients: tuple[int, list[str]], progress: Progress | None) -> SendReport:
        with self.session() as session:
            report = SendReport(self._ingest(session, None, progress))
            session.commit()
            prepared = self._ready(session, report)
            if prepared is not None:
                report.unselected = self._store(session, prepared)
                report.issue, report.prepared = prepared.view.issue, prepared
                report.recipient_count = recipients[0]
                report.recipients = tuple(recipients[1])
        try:
            report.files = self.publish_files()
        except StorageError as exc:
            if report.issue is None:
                raise
            raise StorageError(
                exc.path,
                f"{exc.message.removeprefix(exc.path + ': ')}; issue #{report.issue} is stored",
                hint=f"{exc.hint}; the next `digest send` writes its files and sends its e-mails",
            ) from None
        return report

    def _store(self, session: Session, prepared: Prepared) -> int:
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
            published_at=prepared.view.published_at,
            items=items,
            themes=[s.name for s in prepared.sections],
            feed_html=prepared.feed_html or None,
        )
        configured = self._configured()
        personaliser = self._personaliser()
        view = prepared.view
        take = self.topic_covers()
        letters = personaliser.letters(
            view, outbox.selections(session, view, with_all=bool(configured), take=take)
        )
        sender = self.settings.email.sender
        try:
            while True:  # What was read above (pending papers, selections) is read again
                # or checked by unique keys here; the write is short and waits its turn.
                db.begin_write(session)
                subscribers.sync_configured(session, configured)
                digest = digests.create_digest(session, record)
                try:
                    pending, unselected = outbox.create_deliveries(
                        session,
                        digest.id,
                        view,
                        personaliser,
                        letters,
                        lambda: new_message_id(sender),
                        take,
                    )
                except outbox.LettersMissing as missing:  # rendered outside the write
                    session.rollback()
                    letters |= personaliser.letters(view, missing.selections)
                    continue
                session.commit()
                break
        except IntegrityError:
            session.rollback()
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

    # publish files --------------------------------------------------------

    def publish_files(self) -> list[Path]:
        """Bring the public files (web copies, index, pages, feeds) in step with the state;
        returns those that changed (publish/site.py)."""
        return SiteFiles(self.settings, self.renderer, self.session, self.vocabulary()).write()

    def search_archive(self, query: str) -> list[issues.Hit]:
        """Published papers with every word of ``query`` (the web server's ?q=)."""
        with self.session() as session:
            return issues.search(session, query)

    # deliver --------------------------------------------------------------

    def deliver_pending(
        self,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        *,
        abort: threading.Event | None = None,
        drain: bool = False,
        forever: bool = False,
    ) -> DeliveryReport:
        """Send due pending deliveries of every digest as one worker (mail/engine.py): one
        row each, claimed in batches, marked sent only after the server accepted it. Any
        number of workers may run at once. `drain`: also wait for rows other workers hold
        until the outbox is empty; `forever`: keep polling (`digest worker`). Setting
        `stop` ends it early, `abort` at once; the rest stays pending."""
        return delivery_engine.deliver(
            db.for_writes(self.engine),
            self.transport,
            self._mailing(),
            Policy.of(self.settings.email, parallel=self._parallel()),
            clock=self.clock,
            progress=progress,
            stop=stop,
            abort=abort,
            drain=drain,
            forever=forever,
            poll=self.settings.schedule.poll_seconds,
        )

    def workers(self) -> list[WorkerInfo]:
        """The live delivery workers and their progress."""
        with self.reading() as session:
            return workers.listing(session, self.clock(), self.settings.email.lease_seconds)

    def _parallel(self) -> bool:
        return self._transport is None and self.settings.email.transport == "smtp"

    def _mailing(self) -> Mailing:
        if self._mailing_cache is None:
            self._mailing_cache = delivery.mailing_of(self.settings)
        return self._mailing_cache

    def _personaliser(self) -> Personaliser:
        return Personaliser(
            self.renderer,
            unsubscribe_url=f"{self.settings.base_url}/unsubscribe/{PLACEHOLDER}",
            max_html_bytes=self.settings.email.max_html_bytes,
            subject=lambda v: subject_line(
                v.site_title,
                v.issue,
                v.paper_count,
                v.sections,
                self.settings.email.subject,
                self.settings.email.subject_max,
            ),
        )

    def _stored_copy(self) -> Personaliser:
        """The stored e-mail copy: the whole e-mail (no unsubscribe link) up to
        STORED_EMAIL_BYTES, else fitted under it the way the e-mail is."""
        return Personaliser(
            self.renderer,
            unsubscribe_url="",
            max_html_bytes=STORED_EMAIL_BYTES,
            subject=lambda v: subject_line(v.site_title, v.issue, v.paper_count, v.sections),
        )

    def _deliver_one_off(self, prepared: Prepared, to: str) -> DeliveryReport:
        letter = self._personaliser().letter(prepared.view)
        when = prepared.view.published_at
        delivery.send_test(self.transport(), self._mailing(), letter, when, to)
        return DeliveryReport(sent=1)

    # read-only views ------------------------------------------------------

    def preview(self) -> tuple[Prepared | None, str]:
        """Render the pending digest (including new dumps, one modified a moment ago
        waited for as `send` does) without storing anything."""
        self.wait_for_dumps()
        report = self._dry_run((0, []), None)
        return report.prepared, report.reason

    def vocabulary(self) -> Vocabulary:
        """The research areas sections are cut from: the bundled ones, extended or replaced
        by ``[digest] areas_file``. Raises ConfigError when that file is unusable."""
        path = self.settings.areas_file
        return load_vocabulary(str(path) if path else "")

    def pending_sections(self) -> tuple[list[Section[store.StoredPaper]], str]:
        """The pending papers (new dumps included, nothing stored) grouped into sections as
        the next digest would group them, or no sections and why."""
        with self.reading() as session:  # ingests, then rolls back
            # a look, not a publish: every dump counts, even one modified a moment ago
            self._ingest(session, None, None, settle=0)
            papers = store.pending_papers(session)
            sections = assign(papers, self.settings.themes, vocabulary=self.vocabulary())
        if sections:
            return sections, ""
        why = f"no pending papers: nothing new in {self.settings.dumps_dir} since the last digest"
        return [], why

    # subscribing from the web (double opt-in) ------------------------------

    def signups(self) -> SignupDesk:
        """The signup desk; the key it hashes client addresses with is read when a
        request needs it, so peeking at or confirming a link never waits for it."""
        return SignupDesk(self.sessions, self.settings.subscribe, self.web_secret, self.clock)

    def peek_subscription(self, token: str) -> Confirmation:
        """What opening a confirmation link would do (a read: never waits for a writer)."""
        return self.signups().peek(token)

    def request_subscription(self, address: str, themes: Sequence[str], ip: str) -> Request:
        """Record a /subscribe request and send its confirmation e-mail when the limits
        allow (SubscriberError for a bad address, DeliveryError when it cannot be sent)."""
        desk = self.signups()
        chosen = subscribers.resolve_themes(themes, self.theme_choices(), self.topic_aliases())
        request = desk.request(address, chosen, ip)
        if request.outcome != "send":
            return request
        s = self.settings
        try:
            self._send_notice(
                "confirm_email",
                request.address,
                f"Confirm your subscription to {s.digest.title}",
                confirm_url=f"{s.base_url}/subscribe/confirm/{request.token}",
                confirm_hours=s.subscribe.confirm_hours,
                themes=self.theme_names(request.themes),
            )
        except DeliveryError:
            desk.forget(request.token)  # the reader may ask again at once
            raise
        return request

    def confirm_subscription(self, token: str) -> Confirmation:
        """Activate the subscriber of a confirmation token, then welcome them."""
        result = self.signups().confirm(token)
        if result.state == "confirmed":
            base = self.settings.base_url
            try:
                self._send_notice(
                    "welcome_email",
                    result.address,
                    f"Welcome to {self.settings.digest.title}",
                    themes=self.theme_names(result.themes),
                    preferences_url=f"{base}/preferences/{result.subscriber_token}",
                    unsubscribe_url=f"{base}/unsubscribe/{result.subscriber_token}",
                )
            except DeliveryError as exc:  # they are subscribed all the same
                log.warning("welcome message not sent: %s", exc.message)
        return result

    def theme_names(self, slugs: Sequence[str]) -> list[str]:
        """Names for theme slugs (configured themes and research areas)."""
        names = dict(self.theme_choices()) if slugs else {}
        return [names.get(slug, slug) for slug in slugs]

    def _send_notice(self, template: str, to: str, subject: str, **context: Any) -> None:
        s = self.settings
        html, text = self.renderer.notice(
            template,
            address=to,
            site_title=s.digest.title,
            archive_url=f"{s.base_url}/",
            feed_url=f"{s.base_url}/feed.xml",
            **context,
        )
        msg = notice_message(
            sender=s.email.sender, to=to, subject=subject, text=text, html=html, when=self.clock()
        )
        mailing = self._mailing()
        data = msg.as_bytes()
        if mailing.signer is not None:
            data = mailing.signer.sign(data) + data
        try:
            with self.transport() as transport:
                transport.send(data, to, sender=mailing.envelope_from)
        except (PermanentFailure, TransientFailure, OSError) as exc:
            raise DeliveryError(f"{to}: not delivered: {exc}") from None

    def web_secret(self) -> bytes:
        """A random key of this installation (kept in the state), for signing forms.
        Read once per App without taking the write lock (a read never waits for a
        publish or an import); only the very first call on a new state writes it."""
        if self._web_secret is None:
            with self.session() as session:
                value = store.get_meta(session, "web_secret")
            if value is None:
                value = self._make_web_secret()
            self._web_secret = bytes.fromhex(value)
        return self._web_secret

    def _make_web_secret(self) -> str:
        with self.session() as session:
            db.begin_write(session)
            value = store.get_meta(session, "web_secret")
            if value is None:
                store.set_meta(session, "web_secret", secrets.token_hex(32))
                try:
                    session.commit()
                except IntegrityError:  # another process made one first: use theirs
                    session.rollback()
                value = store.get_meta(session, "web_secret")
        return value or ""

    # mail sent back (bounces, unsubscribe requests) ---------------------------

    def process_replies(
        self, inbox: Inbox, recipients: Sequence[str] = ()
    ) -> Iterator[tuple[str, Outcome]]:
        """Read each unprocessed message of ``inbox`` (mail/bounces.py): apply a hard
        bounce or an unsubscribe request, each in its own transaction, then mark the
        message processed; yields (message name, outcome). ``recipients``: the envelope
        recipients an MTA gave with a piped message. Idempotent."""
        domain = sender_domain(self.settings.email.sender)
        for name, data in inbox.messages():
            reply = bounces.read_reply(data, recipients)
            with self.session() as session:
                db.begin_write(session)
                outcome = bounces.apply_reply(session, reply, domain)
                session.commit()
            inbox.done(name)
            yield name, outcome

    def status(self) -> store.Status:
        """The state as it is (all zero before the first ingest; nothing is created)."""
        with self.reading() as session:
            return store.status(session)


def make_app(settings: Settings, **parts: Any) -> App:
    """The one factory: tests and the daemon swap parts (engine, transport, clock) here."""
    return App(settings, **parts)


def make_reader_app(settings: Settings) -> tuple[App, str]:
    """An App for looking only (`digest status`): when the state cannot be written (a
    full disk, a read-only folder) but can be read, the SQLite file is opened read-only
    and the second value says why; otherwise it is empty."""
    app = App(settings)
    try:
        if app.has_state():
            app.engine  # noqa: B018 - opens (and migrates) it now, where it can fail
        return app, ""
    except StateUnwritable as exc:
        if not settings.database_url.startswith("sqlite"):
            raise
        engine = db.make_engine(settings.database_url, read_only=True)
        return App(settings, engine=engine), str(exc)


__all__ = ["App", "DigestError", "SendReport", "make_app"]
