"""A reader's private feed (``/feeds/<feed-token>.xml``): RSS 2.0, made with feedgen like
the public feeds, one entry per recent issue holding that reader's view of it — "For
you" first, then the papers of the sections they chose (chosen the way their e-mail's
are, mail/variants.py `selection`), in their order.

What a reader's view adds to their sections is one function, a parameter of
`reader_entries`: ``shape(issue, theirs) -> view``, given the whole issue and the part
their sections take. `feedback_shape` is the one made from their marks (For you from
their profile, each section ordered by it); the watches and mutes view plugs in the same
way. Each entry is rendered from the view with the public feed's template
(``feed.html.j2``): dump text is escaped there as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from digest.mail.variants import Covers, only, papers, selection
from digest.personal.profile import Profile
from digest.publish.feeds import FeedIssue, FeedSite, build_generator, feed_summary, rss_cdata
from digest.render.renderer import Renderer
from digest.render.viewmodel import DigestView, SectionView
from digest.urls import private_feed_path

__all__ = ["FOR_YOU", "Shape", "feedback_shape", "private_rss", "reader_entries", "same"]

FOR_YOU = "For you"
Shape = Callable[[DigestView, DigestView], DigestView]  # (the issue, their part) -> view


def same(issue: DigestView, theirs: DigestView) -> DigestView:
    """No personal view: their sections as they are."""
    return theirs


def reader_entries(
    views: Sequence[DigestView],
    themes: Sequence[str],
    take: Covers,
    renderer: Renderer,
    subject: Callable[[DigestView], str],
    shape: Shape = same,
) -> list[FeedIssue]:
    """One feed entry per issue (`views`, newest first): the papers of the reader's
    chosen topics (`themes`; () is every one) as `shape` makes them their own."""
    entries = []
    for view in views:
        theirs = shape(view, only(view, selection(themes, view, take), subject))
        names = [s.name for s in theirs.sections]
        entries.append(
            FeedIssue(
                issue=view.issue,
                subject=theirs.subject,
                published_at=view.published_at,
                html=renderer.feed_html(theirs),
                summary=feed_summary(theirs.subject, names),
                url=view.web_url,
                themes=tuple(n for n in names if n != FOR_YOU),
            )
        )
    return entries


def feedback_shape(profile: Profile | None, for_you_max: int) -> Shape:
    """The view a reader's marks make: For you (at most `for_you_max` papers of the whole
    issue that fit their profile best, each noted ``like: <title>``, not repeated
    below), then each of their sections ordered by `Profile.order`. No profile: their
    sections as they are."""
    if profile is None:
        return same

    def shape(issue: DigestView, theirs: DigestView) -> DigestView:
        by_key = {p.key: p for p in papers(issue)}
        picks = profile.suggest(list(by_key), for_you_max)
        taken = {key for key, _ in picks}
        sections = []
        for s in theirs.sections:
            rest = [p for p in s.papers if p.key not in taken]
            if rest:
                mine = {p.key: p for p in rest}
                ordered = tuple(mine[k] for k in profile.order(list(mine)))
                sections.append(replace(s, papers=ordered, total=0))
        if picks:
            block = tuple(replace(by_key[k], summary=note) for k, note in picks)
            sections.insert(0, SectionView(FOR_YOU, "for-you", "s-for-you", block))
        return replace(theirs, sections=tuple(sections))

    return shape


def private_rss(title: str, base_url: str, token: str, entries: Sequence[FeedIssue]) -> bytes:
    """The RSS 2.0 document of a reader's feed."""
    site = FeedSite(title=f"{title}: your feed", base_url=base_url.rstrip("/"),
                    description=f"Your own view of {title}.")  # fmt: skip
    return rss_cdata(build_generator(site, entries, private_feed_path(token)))
