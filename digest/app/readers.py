"""What a reader does with their own links: "more / less like this" (the feedback pages),
the count and forgetting of their marks, their private feed and making it a new link.
Each call is one transaction.

Tokens: a feedback link carries the subscriber's token (the one the unsubscribe link
has), a private feed its own ``feed_token``; both are checked in constant time, and a
forged or foreign one, or an unknown paper, is simply "not found" (no hint which). Neither
is ever logged: log lines name the subscriber's row id.

Limits: a subscriber makes at most ``subscribe.max_feedback_per_hour`` marks an hour
(counted, like the signup limits, from the stored rows: marks made or changed in the last
hour); beyond it a mark is refused ("busy") and nothing is written.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from digest.addresses import TOKEN_RE
from digest.ingest.keys import paper_key
from digest.mail.private_feed import private_rss, reader_entries, reader_shape
from digest.mail.subscribers import by_token
from digest.mail.variants import Covers
from digest.personal.profile import Space
from digest.render.renderer import Renderer
from digest.render.viewmodel import DigestView
from digest.sections.assign import Section
from digest.state import feedback
from digest.state.feedback import Counts, PublishedIssue
from digest.state.handles import Sessions, reading, writing
from digest.state.store import StoredPaper
from digest.state.subscribers import SubscriberRow
from digest.urls import private_feed_url

if TYPE_CHECKING:
    from digest.app.wiring import App

log = logging.getLogger(__name__)

__all__ = ["FEED_ISSUES", "FeedbackTarget", "PrivateFeed", "ReaderData", "ReaderDesk"]

FEED_ISSUES = 20  # issues in a private feed


@dataclass(frozen=True)
class FeedbackTarget:
    """What a feedback link names: the paper (by title) and its current mark (0: none)."""

    title: str
    mark: int


@dataclass(frozen=True)
class ReaderData:
    """What the preferences page shows of a reader's own data."""

    counts: Counts
    feed_url: str


@dataclass(frozen=True)
class PrivateFeed:
    body: bytes
    updated: datetime | None  # the newest issue's time: Last-Modified


class ReaderDesk:
    """Feedback marks and private feeds over a database."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        title: str,
        base_url: str,
        max_per_hour: int,
        clock: Callable[[], datetime],
        renderer: Callable[[], Renderer],
        view: Callable[[int, list[Section[StoredPaper]], datetime], DigestView],
        take: Callable[[], Covers],
        subject: Callable[[DigestView], str],
        for_you_max: int = 5,
    ) -> None:
        self.sessions, self.for_you_max = sessions, for_you_max
        self.title, self.base_url = title, base_url.rstrip("/")
        self.max_per_hour, self.clock = max_per_hour, clock
        self.renderer, self.view, self.take, self.subject = renderer, view, take, subject
        self._views: dict[int, DigestView] = {}  # an issue never changes once published

    # feedback ----------------------------------------------------------------

    def target(self, token: str, key: str) -> FeedbackTarget | None:
        """What the link names, or None (a bad token, someone else's, an unknown paper)."""
        with reading(self.sessions) as s:
            sub = by_token(s, token)
            paper = feedback.paper_texts(s, [key]).get(key) if sub and is_key(key) else None
            if sub is None or paper is None:
                return None
            mark = dict(feedback.marks(s, sub.id)).get(key, 0)
            return FeedbackTarget(paper.title, mark)

    def mark(self, token: str, key: str, value: int) -> str:
        """Record a mark: "done", "busy" (over the hourly limit; nothing written) or
        "unknown" (as `target`)."""
        now = self.clock()
        with writing(self.sessions) as s:
            sub = by_token(s, token)
            if sub is None or not is_key(key) or key not in feedback.paper_texts(s, [key]):
                return "unknown"
            if feedback.marked_since(s, sub.id, now - timedelta(hours=1)) >= self.max_per_hour:
                log.warning("feedback: subscriber #%d reached max_feedback_per_hour", sub.id)
                return "busy"
            feedback.mark(s, sub.id, key, value, now)
        log.info("feedback: subscriber #%d marked a paper %s", sub.id, _word(value))
        return "done"

    def data(self, token: str) -> ReaderData | None:
        with reading(self.sessions) as s:
            sub = by_token(s, token)
            if sub is None:
                return None
            counts = feedback.counts(s, sub.id)
            feed = feedback.feed_tokens(s, [sub.id]).get(sub.id)
        if feed is None:  # a row no migration or insert gave a token (never expected)
            with writing(self.sessions) as s:
                feed = feedback.feed_token(s, sub.id)
        return ReaderData(counts, private_feed_url(self.base_url, feed))

    def forget(self, token: str) -> int | None:
        """Delete every mark of the owner of `token`; how many, or None (unknown token)."""
        with writing(self.sessions) as s:
            sub = by_token(s, token)
            if sub is None:
                return None
            n = feedback.forget(s, sub.id)
        log.info("feedback: subscriber #%d forgot %d mark(s)", sub.id, n)
        return n

    def renew_feed(self, token: str) -> bool:
        """A new private-feed link for the owner of `token` (the old one stops working)."""
        with writing(self.sessions) as s:
            sub = by_token(s, token)
            if sub is None:
                return False
            feedback.renew_feed_token(s, sub.id)
        log.info("private feed: subscriber #%d made a new link", sub.id)
        return True

    # the private feed ----------------------------------------------------------

    def private_feed(self, feed_token: str) -> PrivateFeed | None:
        """The reader's feed, or None for a token no subscriber has."""
        if not TOKEN_RE.fullmatch(feed_token or ""):
            return None
        with reading(self.sessions) as s:
            found = feedback.by_feed_token(s, feed_token)
            if found is None or not hmac.compare_digest(found[1].encode(), feed_token.encode()):
                return None
            sub = found[0]
            issues = feedback.newest_issues(s, FEED_ISSUES)
            marks = feedback.marks(s, sub.id)
            rated = feedback.paper_texts(s, [k for k, _ in marks])
        return PrivateFeed(self._rss(sub, feed_token, issues, marks, rated), _newest(issues))

    def _rss(
        self,
        sub: SubscriberRow,
        feed_token: str,
        issues: list[PublishedIssue],
        marks: list[tuple[str, int]],
        rated: dict[str, feedback.PaperText],
    ) -> bytes:
        views = [self._view(i) for i in issues]
        for old in set(self._views) - {i.issue for i in issues}:  # only the feed's issues
            self._views.pop(old, None)
        texts = [(p.key, p.title, p.abstract) for v in views for sec in v.sections
                 for p in sec.papers]  # fmt: skip
        space = Space([*texts, *((t.key, t.title, t.abstract) for t in rated.values())])
        shape = reader_shape(space.profile(marks), sub.watch, sub.mute, self.for_you_max)
        entries = reader_entries(
            views, sub.themes, self.take(), self.renderer(), self.subject, shape
        )
        return private_rss(self.title, self.base_url, feed_token, entries)

    def _view(self, issue: PublishedIssue) -> DigestView:
        if issue.issue not in self._views:
            sections: dict[str, Section[StoredPaper]] = {}
            for paper, name, slug, area in issue.papers:
                section = sections.setdefault(slug, Section(name, slug))
                section.add(paper, "", area=area)
            self._views[issue.issue] = self.view(
                issue.issue, list(sections.values()), issue.published_at
            )
        return self._views[issue.issue]


MAX_KEY = 2000  # characters: far beyond any title's key


def is_key(text: str) -> bool:
    """Whether `text` can be a paper key at all (a key is its own key: folded, no control
    characters, no NUL that PostgreSQL would refuse), before any query sees it."""
    return 0 < len(text) <= MAX_KEY and paper_key(text) == text


def _newest(issues: list[PublishedIssue]) -> datetime | None:
    return max((i.published_at for i in issues), default=None)


def _word(value: int) -> str:
    return "more" if value > 0 else "less"


def desk(app: App) -> ReaderDesk:
    """Readers' own links: feedback marks, their count and forgetting, private feeds."""
    from digest.app import publishing, subscribing

    s = app.settings
    return ReaderDesk(
        app.database.sessions, title=s.digest.title, base_url=s.base_url,
        max_per_hour=s.subscribe.max_feedback_per_hour, clock=app.clock,
        renderer=lambda: app.renderer,
        view=lambda issue, sections, when: publishing.issue_view(app, issue, sections, when),
        take=lambda: subscribing.topic_covers(app),
        subject=publishing.personaliser(app).subject, for_you_max=s.email.for_you_max,
    )  # fmt: skip
