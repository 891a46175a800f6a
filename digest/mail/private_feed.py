"""A reader's private feed (``/feeds/<feed-token>.xml``): RSS 2.0, made with feedgen like
the public feeds, one entry per recent issue holding that reader's view of it — "For
you" first, then the papers of the sections they chose (chosen the way their e-mail's
are, mail/variants.py `selection`), in their order.

What a reader's view adds to their sections is one function, a parameter of
`reader_entries`: ``shape(issue, theirs) -> view``, given the whole issue and the part
their sections take. `reader_shape` is the reader's whole view, the one their e-mail
has: For you from their watches and their marks' profile, their sections ordered by it,
mutes removed. Each entry is rendered from the view with the public feed's template
(``feed.html.j2``): dump text is escaped there as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from digest.mail.variants import Covers, only, papers, selection
from digest.personal.profile import Profile
from digest.personal.view import index_of, narrowed, reader_view
from digest.publish.feeds import FeedIssue, FeedSite, build_generator, feed_summary, rss_cdata
from digest.render.renderer import Renderer
from digest.render.viewmodel import DigestView, SectionView
from digest.urls import private_feed_path

__all__ = ["FOR_YOU", "Shape", "private_rss", "reader_entries", "reader_shape", "same"]

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


def reader_shape(profile: Profile | None, watch: str, mute: str, for_you_max: int) -> Shape:
    """The reader's whole view, as their e-mail has it (personal/view.py
    `reader_view`): For you (their watched papers, ``matched: <phrase>``, then their
    profile's suggestions, ``like: <title>``, at most `for_you_max`, a watched paper
    outside their sections always), then their sections ordered by their profile, every
    muted paper taken out. Nothing to make their own: their sections as they are."""
    if profile is None and not watch and not mute:
        return same

    def shape(issue: DigestView, theirs: DigestView) -> DigestView:
        index, anchors = index_of(issue)
        every = list(papers(issue))
        picks = profile.suggest([p.key for p in every], 2 * for_you_max) if profile else []
        anchor_of = {p.key: p.anchor for p in every}
        suggestions = [(anchor_of[k], note) for k, note in picks]
        shown = [p.anchor for p in papers(theirs)]
        mine = reader_view(index, anchors, shown, watch, mute, for_you_max, suggestions)
        below, for_you = narrowed(theirs, issue, mine)
        sections = []
        for s in below.sections:
            if profile is not None:
                mine_by_key = {p.key: p for p in s.papers}
                ordered = tuple(mine_by_key[k] for k in profile.order(list(mine_by_key)))
                s = replace(s, papers=ordered)
            sections.append(replace(s, total=0))
        if for_you:
            block = tuple(replace(p, summary=note) for p, note in for_you)
            sections.insert(0, SectionView(FOR_YOU, "for-you", "s-for-you", block))
        return replace(theirs, sections=tuple(sections))

    return shape


def private_rss(title: str, base_url: str, token: str, entries: Sequence[FeedIssue]) -> bytes:
    """The RSS 2.0 document of a reader's feed."""
    site = FeedSite(title=f"{title}: your feed", base_url=base_url.rstrip("/"),
                    description=f"Your own view of {title}.")  # fmt: skip
    return rss_cdata(build_generator(site, entries, private_feed_path(token)))
