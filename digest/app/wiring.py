"""The wiring: one `App` per settings, which builds the parts lazily (the state database,
the template set, the transport, the clock, the mailing, the signing key) and nothing
else. The use cases live in the modules beside this one (ingesting, publishing,
delivering, subscribing, readers, inspecting, scheduling) as functions taking the App:
`publishing.send(app)`, `subscribing.book(app)`. Each part is built, and each module
imported, only when first needed, so that a command loads only what it uses."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from digest.config import Settings
from digest.errors import StateUnwritable

if TYPE_CHECKING:
    from digest.mail.delivery import Mailing
    from digest.mail.message import Transport
    from digest.render.renderer import Renderer
    from digest.sections.areas import Vocabulary
    from digest.state.db import Database
    from digest.state.handles import Unit


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
        from digest.state import driver

        parsed = driver.parse_url(self.settings.database_url)
        if parsed is not None:
            return parsed.shown()
        from digest.state import db

        return db.shown_url(self.settings.database_url)

    def has_state(self) -> bool:
        """Whether the state database exists (a read-only command does not create it)."""
        from digest.state import driver

        return self._database is not None or driver.exists(self.settings.database_url)

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

    def web_secret(self) -> bytes:
        """A random key of this installation (kept in the state), for signing forms."""
        if self._web_secret is None:
            from digest.app import subscribing

            self._web_secret = subscribing.web_secret(self)
        return self._web_secret


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
