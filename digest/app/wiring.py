"""The wiring: one `App` per settings, which builds the parts lazily (the state database,
the template set, the transport, the clock, the mailing) and offers the use cases as
one-line entry points. The use cases themselves live in the modules beside this one
(ingesting, publishing, delivering, subscribing, inspecting); each part and each use-case
module is imported only when first needed, so that a command loads only what it uses."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.config import Settings
from digest.errors import StateUnwritable

if TYPE_CHECKING:
    from digest.app.publishing import Prepared, SendReport
    from digest.app.readers import ReaderDesk
    from digest.app.subscribing import SubscriberBook
    from digest.ingest.ledger import IngestReport
    from digest.mail.bounces import Outcome
    from digest.mail.delivery import DeliveryReport, Mailing, Progress
    from digest.mail.inbox import Inbox
    from digest.mail.message import Transport
    from digest.mail.signup import Confirmation, Request, SignupDesk
    from digest.render.renderer import Renderer
    from digest.render.topics import TopicGroup
    from digest.sections.areas import Vocabulary
    from digest.sections.assign import Section
    from digest.state.db import Database
    from digest.state.glance import Glance, ScheduledRun, Status, WorkerInfo
    from digest.state.handles import Unit
    from digest.state.issues import Hit
    from digest.state.store import StoredPaper


class App:
    """The core: one per settings. Building it touches nothing: the database is opened
    (created, migrated) on first use by a command that writes, and the template set is
    loaded when something is rendered. Read-only commands read what exists (`reading`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: Database | None = None,
        transport: Transport | None = None,
        renderer: Renderer | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self._database = database
        self._empty: Database | None = None
        self._transport = transport
        self._renderer = renderer
        self.clock = clock or (lambda: datetime.now(UTC))
        self._mailing_cache: Mailing | None = None
        self._web_secret: bytes | None = None

    # the parts ------------------------------------------------------------------

    @property
    def database(self) -> Database:
        """The state database, created and brought up to date on first use."""
        from digest.state import db

        if self._database is None:
            self._database = db.open_state(self.settings.database_url)
        return self._database.ready()

    def session(self) -> AbstractContextManager[Unit]:
        """A transaction on the state that the caller commits."""
        return self.database.session()

    def shown_database_url(self) -> str:
        """The state database's URL without its password."""
        from digest.state import glance

        parsed = glance.parse_url(self.settings.database_url)
        if parsed is not None:
            return parsed.shown()
        from digest.state import db

        return db.shown_url(self.settings.database_url)

    def has_state(self) -> bool:
        """Whether the state database exists (a read-only command does not create it)."""
        from digest.state import glance

        return self._database is not None or glance.exists(self.settings.database_url)

    def readable(self) -> Database:
        """The state as it is or, before the first write, an empty in-memory state
        (nothing is created on disk): what commands that only read use."""
        from digest.state import db

        if self.has_state():
            return self.database
        if self._empty is None:
            self._empty = db.empty_state()
        return self._empty

    def reading(self) -> AbstractContextManager[Unit]:
        """A transaction that is rolled back at the end: see `readable`."""
        return self.readable().read()

    @property
    def renderer(self) -> Renderer:
        """The template set (digest.template_set) with the user's templates_dir, loaded on
        first use."""
        if self._renderer is None:
            from digest.render.renderer import Renderer

            s = self.settings
            self._renderer = Renderer(s.digest.template_set, s.templates_dir)
        return self._renderer

    def transport(self) -> Transport:
        if self._transport is not None:
            return self._transport
        from digest.mail.message import make_transport

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

    def parallel(self) -> bool:
        """Whether delivery may open several connections (a real SMTP server)."""
        return self._transport is None and self.settings.email.transport == "smtp"

    def mailing(self) -> Mailing:
        """Sender, envelope, DKIM signer (mail/delivery.py), checked once."""
        if self._mailing_cache is None:
            from digest.mail import delivery

            self._mailing_cache = delivery.mailing_of(self.settings)
        return self._mailing_cache

    def vocabulary(self) -> Vocabulary:
        """The research areas sections are cut from: the bundled ones, extended or replaced
        by ``[digest] areas_file``. Raises ConfigError when that file is unusable."""
        from digest.sections.areas import load_vocabulary

        path = self.settings.areas_file
        return load_vocabulary(str(path) if path else "")

    # ingesting ------------------------------------------------------------------

    def ingest(
        self,
        paths: Sequence[Path] | None = None,
        progress: Progress | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> IngestReport:
        from digest.app import ingesting

        return ingesting.ingest(self, paths, progress, notice)

    def wait_for_dumps(self, notice: Callable[[str], None] | None = None) -> None:
        from digest.app import ingesting

        ingesting.wait_for_dumps(self, notice)

    def pending_sections(self) -> tuple[list[Section[StoredPaper]], str]:
        from digest.app import ingesting

        return ingesting.pending_sections(self)

    # publishing -----------------------------------------------------------------

    def send(self, **options: Any) -> SendReport:
        """Publish, then deliver (publishing.send)."""
        from digest.app import publishing

        return publishing.send(self, **options)

    def publish(self, **options: Any) -> SendReport:
        """Publish without delivering (publishing.publish)."""
        from digest.app import publishing

        return publishing.publish(self, **options)

    def dry_run(self, **options: Any) -> SendReport:
        """What `send` would do, nothing stored (publishing.dry_run)."""
        from digest.app import publishing

        return publishing.dry_run(self, **options)

    def send_to(self, to: str, **options: Any) -> SendReport:
        """The next issue to one address only, nothing published (publishing.send_to)."""
        from digest.app import publishing

        return publishing.send_to(self, to, **options)

    def preview(self) -> tuple[Prepared | None, str]:
        from digest.app import publishing

        return publishing.preview(self)

    def publish_files(self) -> list[Path]:
        from digest.app import publishing

        return publishing.publish_files(self)

    # delivering -----------------------------------------------------------------

    def deliver_pending(
        self,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        **options: Any,
    ) -> DeliveryReport:
        from digest.app import delivering

        return delivering.deliver_pending(self, progress, stop, **options)

    def process_replies(
        self, inbox: Inbox, recipients: Sequence[str] = ()
    ) -> Iterator[tuple[str, Outcome]]:
        from digest.app import delivering

        return delivering.process_replies(self, inbox, recipients)

    def alert_admin(self, subject: str, body: str) -> str:
        from digest.app import delivering

        return delivering.alert_admin(self, subject, body)

    # subscribing ----------------------------------------------------------------

    def recipients(self) -> list[str]:
        from digest.app import subscribing

        return subscribing.recipients(self)

    def subscribers(self, *, read_only: bool = False) -> SubscriberBook:
        from digest.app import subscribing

        return subscribing.book(self, read_only=read_only)

    def theme_choices(self) -> list[tuple[str, str]]:
        from digest.app import subscribing

        return subscribing.theme_choices(self)

    def theme_names(self, slugs: Sequence[str]) -> list[str]:
        from digest.app import subscribing

        return subscribing.theme_names(self, slugs)

    def topic_groups(self) -> list[TopicGroup]:
        from digest.app import subscribing

        return subscribing.topic_groups(self)

    def chosen_topics(self, slugs: Sequence[str]) -> set[str]:
        from digest.app import subscribing

        return subscribing.chosen_topics(self, slugs)

    def signups(self) -> SignupDesk:
        from digest.app import subscribing

        return subscribing.signups(self)

    def peek_subscription(self, token: str) -> Confirmation:
        return self.signups().peek(token)

    def request_subscription(self, address: str, themes: Sequence[str], ip: str) -> Request:
        from digest.app import subscribing

        return subscribing.request_subscription(self, address, themes, ip)

    def confirm_subscription(self, token: str) -> Confirmation:
        from digest.app import subscribing

        return subscribing.confirm_subscription(self, token)

    def readers(self) -> ReaderDesk:
        from digest.app import readers

        return readers.desk(self)

    def web_secret(self) -> bytes:
        """A random key of this installation (kept in the state), for signing forms."""
        if self._web_secret is None:
            from digest.app import subscribing

            self._web_secret = subscribing.web_secret(self)
        return self._web_secret

    # inspecting -----------------------------------------------------------------

    def glance(self) -> Glance | None:
        """What `digest status` shows, read without the ORM (None: use `overview`)."""
        from digest.app import inspecting

        return inspecting.glance(self)

    def overview(self) -> Glance:
        from digest.app import inspecting

        return inspecting.overview(self)

    def status(self) -> Status:
        from digest.app import inspecting

        return inspecting.status(self)

    def workers(self) -> list[WorkerInfo]:
        from digest.app import inspecting

        return inspecting.workers(self)

    def schedule(self) -> tuple[str | None, list[ScheduledRun]]:
        from digest.app import inspecting

        return inspecting.schedule(self)

    def search_archive(self, query: str) -> list[Hit]:
        from digest.app import inspecting

        return inspecting.search_archive(self, query)


def make_app(settings: Settings, **parts: Any) -> App:
    """The one factory: tests and the daemon swap parts (database, transport, clock)."""
    return App(settings, **parts)


def make_reader_app(settings: Settings) -> tuple[App, str]:
    """An App for looking only (`digest status`): when the state cannot be written (a
    full disk, a read-only folder) but can be read, the SQLite file is opened read-only
    and the second value says why; otherwise it is empty."""
    app = App(settings)
    try:
        if app.has_state():
            app.database  # noqa: B018 - opens (and migrates) it now, where it can fail
        return app, ""
    except StateUnwritable as exc:
        if not settings.database_url.startswith("sqlite"):
            raise
        from digest.state import db

        return App(settings, database=db.open_state(settings.database_url, read_only=True)), str(
            exc
        )
