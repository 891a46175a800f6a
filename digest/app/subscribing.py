"""Subscribing: the subscriber list (`SubscriberBook`), the topics a reader may choose,
double opt-in from the web (signup limits, confirmation, welcome), preferences and
unsubscribing, and the one-off notices those send."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TextIO

from digest.errors import ConfigError, DeliveryError
from digest.mail import csvfile
from digest.mail import subscribers as rules
from digest.mail.subscribers import (
    Choices,
    ImportReport,
    SubscriberInfo,
    Unsubscribed,
    by_token,
    check_status,
    choose_themes,
    info_of,
    normalize,
    parse_themes,
    resolve_themes,
    unsubscribe,
    upsert,
)
from digest.state import readers
from digest.state import subscribers as stored
from digest.state.handles import Sessions, Tx, reading, writing
from digest.state.states import SubscriberStatus
from digest.urls import slugify

if TYPE_CHECKING:
    from digest.app.wiring import App
    from digest.mail.signup import Confirmation, Request, SignupDesk
    from digest.mail.variants import Covers
    from digest.render.topics import TopicGroup

log = logging.getLogger(__name__)


class SubscriberBook:
    """The subscriber list over a database: each call is one transaction. The CLI and
    the web server use this."""

    def __init__(
        self,
        sessions: Sessions,
        choices: Callable[[], Choices] | None = None,
        aliases: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.choices = choices  # what --topics may name; None: anything goes
        self.aliases = aliases  # old slugs -> the slugs that replaced them

    def _slugs(self, themes: str | Sequence[str]) -> tuple[str, ...]:
        if self.choices is None:
            return parse_themes(themes)
        return resolve_themes(themes, self.choices(), self.aliases() if self.aliases else None)

    def _tx(self) -> AbstractContextManager[Tx]:
        return writing(self.sessions)  # waits its turn for the write lock (SQLite)

    def add(
        self,
        address: str,
        *,
        name: str | None = None,
        themes: str | Sequence[str] | None = None,
        status: str | None = None,
        resubscribe: bool = False,
        watch: str | None = None,
        mute: str | None = None,
    ) -> str:
        """Add or update; returns "added", "updated", "unchanged" or "kept". ``watch``
        and ``mute``: ";"-separated phrases ("" clears; None: unchanged)."""
        addr = normalize(address)
        slugs = self._slugs(themes) if themes is not None else None
        st = check_status(status) if status else (SubscriberStatus.ACTIVE if resubscribe else None)
        cells = {k: v for k, v in (("watch", watch), ("mute", mute)) if v is not None}
        watched = csvfile.phrase_cells(cells) or (None, None)
        with self._tx() as s:
            outcome = upsert(s, addr, name=name, themes=slugs, status=st, reactivate=resubscribe)
            changed = readers.set_many(s, [(addr.lower(), *watched)])
            return "updated" if changed and outcome == "unchanged" else outcome

    def status_of(self, address: str) -> str | None:
        """The status of a subscriber ("active", "unsubscribed", "bounced"), or None."""
        key = normalize(address).lower()
        with reading(self.sessions) as s:
            return stored.status_of(s, key)

    def remove(self, address: str) -> bool:
        """Forget a subscriber and their deliveries; False when unknown."""
        key = normalize(address).lower()
        with self._tx() as s:
            return stored.remove(s, key)

    def list(self, status: str | None = None) -> list[SubscriberInfo]:
        wanted = check_status(status) if status else None
        with reading(self.sessions) as s:
            return [info_of(sub) for sub in stored.listing(s, wanted)]

    def import_csv(self, stream: TextIO) -> ImportReport:
        """Unknown topics are refused row by row, as `add` refuses them."""
        topics: Callable[[str], tuple[str, ...]] = parse_themes
        if self.choices is not None:
            choices, aliases = self.choices(), self.aliases() if self.aliases else None
            topics = functools.lru_cache(maxsize=4096)(
                lambda cell: resolve_themes(cell, choices, aliases)
            )  # a few distinct cells, however many rows
        with self._tx() as s:
            return csvfile.read_csv(s, stream, topics)

    def export_csv(self, stream: TextIO) -> int:
        with reading(self.sessions) as s:
            return csvfile.write_csv(s, stream)

    def unsubscribe(self, token: str) -> Unsubscribed | None:
        with self._tx() as s:
            return unsubscribe(s, token)

    def lookup(self, token: str) -> SubscriberInfo | None:
        with reading(self.sessions) as s:
            sub = by_token(s, token)
            return info_of(sub) if sub is not None else None

    def choose_phrases(self, token: str, watch: str, mute: str) -> SubscriberInfo | None:
        """Set the watched and muted phrases of the owner of ``token`` (checked)."""
        watched = csvfile.phrase_cells({"watch": watch, "mute": mute}) or (None, None)
        with self._tx() as s:
            sub = by_token(s, token)
            if sub is None:
                return None
            readers.set_many(s, [(sub.key, *watched)])
            return info_of(replace(sub, watch=watched[0] or "", mute=watched[1] or ""))

    def choose_themes(self, token: str, themes: Sequence[str]) -> SubscriberInfo | None:
        """Set the themes of the owner of ``token``; unknown ones are refused."""
        slugs = self._slugs(themes)
        with self._tx() as s:
            return choose_themes(s, token, slugs)


def book(app: App, *, read_only: bool = False) -> SubscriberBook:
    """The subscriber list (add, remove, import, export, unsubscribe); `read_only`
    for listing and export, which must not create the state."""
    database = app.readable() if read_only else app.database
    return SubscriberBook(database.sessions, lambda: theme_choices(app), lambda: topic_aliases(app))


def configured(app: App) -> list[str]:
    """email.recipients, validated and folded (first spelling wins)."""
    seen: dict[str, str] = {}
    for raw in app.settings.email.recipients:
        try:
            address = normalize(raw)
        except rules.SubscriberError as exc:
            raise ConfigError(f"email.recipients: {exc.message}") from None
        seen.setdefault(address.lower(), address)
    return list(seen.values())


def recipients(app: App) -> list[str]:
    """Who would receive the next digest: the configured recipients not unsubscribed
    or bounced, then the active subscribers."""
    wanted = configured(app)
    with app.reading() as session:
        return rules.would_receive(session, wanted)


# --------------------------------------------------------------------------- topics


def theme_choices(app: App) -> list[tuple[str, str]]:
    """(slug, name) of every theme a subscriber can choose: the configured themes,
    then the research areas (never one-off topics or the remaining section)."""
    seen = {slugify(t.name): t.name for t in app.settings.themes}
    for area in app.vocabulary():
        seen.setdefault(area.slug, area.name)
    return list(seen.items())


def theme_names(app: App, slugs: Sequence[str]) -> list[str]:
    """Names for theme slugs (configured themes and research areas)."""
    names = dict(theme_choices(app)) if slugs else {}
    return [names.get(slug, slug) for slug in slugs]


def topic_groups(app: App) -> list[TopicGroup]:
    """The topics a reader may pick, grouped under their broad areas (the pages)."""
    from digest.render.topics import topic_groups as groups

    return groups(app.vocabulary(), [(slugify(t.name), t.name) for t in app.settings.themes])


def chosen_topics(app: App, slugs: Sequence[str]) -> set[str]:
    """A reader's stored topics as the pages tick them (old slugs resolved)."""
    from digest.render.topics import chosen_topics as chosen

    return chosen(app.vocabulary(), slugs)


def topic_aliases(app: App) -> dict[str, str]:
    """Old slugs of the research areas -> the slugs that replaced them."""
    return {old: a.slug for a in app.vocabulary() for old in a.aliases}


def topic_covers(app: App) -> Covers:
    """What each topic a subscriber chose takes: its area and every area below it
    (old slugs and names resolved), see mail/variants.py."""
    from digest.mail.variants import covers

    return covers(app.vocabulary(), [t.name for t in app.settings.themes])


# --------------------------------------------------------------------------- signup


def signups(app: App) -> SignupDesk:
    """The signup desk; the key it hashes client addresses with is read when a
    request needs it, so peeking at or confirming a link never waits for it."""
    from digest.mail.signup import SignupDesk

    return SignupDesk(app.database.sessions, app.settings.subscribe, app.web_secret, app.clock)


def peek_subscription(app: App, token: str) -> Confirmation:
    """What a confirmation link would do, changing nothing (the page before the click)."""
    return signups(app).peek(token)


def request_subscription(app: App, address: str, themes: Sequence[str], ip: str) -> Request:
    """Record a /subscribe request and send its confirmation e-mail when the limits
    allow (SubscriberError for a bad address, DeliveryError when it cannot be sent)."""
    desk = signups(app)
    chosen = resolve_themes(themes, theme_choices(app), topic_aliases(app))
    request = desk.request(address, chosen, ip)
    if request.outcome != "send":
        return request
    s = app.settings
    try:
        send_notice(
            app,
            "confirm_email",
            request.address,
            f"Confirm your subscription to {s.digest.title}",
            confirm_url=f"{s.base_url}/subscribe/confirm/{request.token}",
            confirm_hours=s.subscribe.confirm_hours,
            themes=theme_names(app, request.themes),
        )
    except DeliveryError:
        desk.forget(request.token)  # the reader may ask again at once
        raise
    return request


def confirm_subscription(app: App, token: str) -> Confirmation:
    """Activate the subscriber of a confirmation token, then welcome them."""
    result = signups(app).confirm(token)
    if result.state == "confirmed":
        base = app.settings.base_url
        try:
            send_notice(
                app,
                "welcome_email",
                result.address,
                f"Welcome to {app.settings.digest.title}",
                themes=theme_names(app, result.themes),
                preferences_url=f"{base}/preferences/{result.subscriber_token}",
                unsubscribe_url=f"{base}/unsubscribe/{result.subscriber_token}",
            )
        except DeliveryError as exc:  # they are subscribed all the same
            log.warning("welcome message not sent: %s", exc.message)
    return result


def send_notice(app: App, template: str, to: str, subject: str, **context: Any) -> None:
    """Render the notice `template` for `to` and send it at once, built and signed by
    mail/notices.py (DeliveryError when it cannot be delivered)."""
    from digest.app.delivering import send_notice as send
    from digest.mail.notices import Notice

    s = app.settings
    html, text = app.renderer.notice(
        template,
        address=to,
        site_title=s.digest.title,
        archive_url=f"{s.base_url}/",
        feed_url=f"{s.base_url}/feed.xml",
        **context,
    )
    list_id = app.mailing().envelope.list_id
    send(app, Notice(to, subject, text, html, list_id=list_id))


def web_secret(app: App) -> bytes:
    """A random key of this installation (kept in the state), for signing forms. Read
    without taking the write lock (a read never waits for a publish or an import); only
    the very first call on a new state writes it."""
    from digest.state import db, store

    with app.session() as session:
        value = store.get_meta(session, "web_secret")
    if value is None:
        with app.session() as session:
            try:
                with db.writing_first(session):
                    if store.get_meta(session, "web_secret") is None:
                        store.set_meta(session, "web_secret", secrets.token_hex(32))
            except db.Taken:  # another process made one first: use theirs
                pass
            value = store.get_meta(session, "web_secret")
    return bytes.fromhex(value or "")
