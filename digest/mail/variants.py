"""Each subscriber's copy of a digest: only the papers of the topics they chose, under the
size at which Gmail clips a message.

A topic a reader chose is an area of the vocabulary (named by its slug, an old slug or its
name) and means that area and every area below it: a paper is theirs when its own area is
one of those, whatever section or layout group the issue printed it under (the section's
slug counts too: configured themes, discovered topics and issues stored before papers
kept their own area).

A variant is rendered once per distinct selection of papers (premailer runs once per
variant, never per subscriber); the unsubscribe token stays ``mailer.PLACEHOLDER`` and is
filled in when each message is built.

Only the template's own slots may carry PLACEHOLDER: a variant is rendered with a marker
made for that one render (random, so no dump can contain it), any PLACEHOLDER the text
already holds (it came from a dump) is defused, and then the marker becomes PLACEHOLDER.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from digest.mail.message import PLACEHOLDER, Letter, encoded_size
from digest.render.viewmodel import DigestView, PaperView, SectionView
from digest.text import truncate
from digest.urls import slugify

if TYPE_CHECKING:
    from digest.render.renderer import Renderer
    from digest.sections.areas import Vocabulary

log = logging.getLogger(__name__)

ALL = "*"  # the variant key of "every section"
Selection = tuple[str, ...] | None  # paper anchors in digest order; None: every paper
Covers = Callable[[str], frozenset[str]]  # a chosen topic -> the area/section slugs it takes


def exactly(topic: str) -> frozenset[str]:
    """A topic that covers only its own slug (no vocabulary)."""
    return frozenset({topic})


def covers(vocabulary: Vocabulary, theme_names: Sequence[str] = ()) -> Covers:
    """What a chosen topic takes: the area it names (slug, old slug or name) and every area
    below it, plus the configured themes named like one of those areas (a theme and an
    area of the same name are one topic for a reader). An unknown slug takes itself."""
    named: dict[str, set[str]] = {}
    for name in theme_names:
        area = vocabulary.resolve(name) or vocabulary.resolve(slugify(name))
        if area is not None:
            named.setdefault(area, set()).add(slugify(name))

    def take(topic: str) -> frozenset[str]:
        area = vocabulary.resolve(topic) or topic
        below = vocabulary.descendants(area) or {area}
        themes = {t for a in below for t in named.get(a, ())}
        return frozenset({topic, *below, *themes})

    return take


def selection(themes: Sequence[str], view: DigestView, take: Covers = exactly) -> Selection:
    """The papers (anchors) of a digest that a subscriber with these topics receives:
    None for all of them, () for none."""
    if not themes:
        return None
    wanted: set[str] = set()
    for topic in themes:
        wanted |= take(topic)
    chosen, total = [], 0
    for section in view.sections:
        total += len(section.papers)
        mine = section.slug in wanted
        chosen += [p.anchor for p in section.papers if mine or (p.area in wanted)]
    return None if len(chosen) == total else tuple(chosen)


def variant_key(chosen: Selection) -> str:
    if chosen is None:
        return ALL
    return hashlib.sha256(",".join(chosen).encode()).hexdigest()[:40]


def only(view: DigestView, chosen: Selection, subject: Callable[[DigestView], str]) -> DigestView:
    """The view restricted to the chosen papers (and the sections that keep any), with a
    subject that counts them."""
    if chosen is None:
        return view
    keep = set(chosen)
    sections = []
    for s in view.sections:
        mine = tuple(p for p in s.papers if p.anchor in keep)
        if mine:
            sections.append(s if len(mine) == len(s.papers) else replace(s, papers=mine))
    narrowed = replace(
        view, sections=tuple(sections), paper_count=sum(len(s.papers) for s in sections)
    )
    return replace(narrowed, subject=subject(narrowed))


CAPPED_ABSTRACT = 160  # characters of abstract kept when papers are left to the web copy
PROBE_PAPERS = 20  # papers in the sample that sizes a long digest's e-mail


@dataclass(frozen=True)
class Personaliser:
    """Renders letters (variants) of a digest, each fitted under ``max_html_bytes``."""

    renderer: Renderer
    unsubscribe_url: str  # contains mailer.PLACEHOLDER; empty: no unsubscribe link
    max_html_bytes: int
    subject: Callable[[DigestView], str]  # the subject line of a narrowed view

    def letters(self, view: DigestView, selections: Iterable[Selection]) -> dict[str, Letter]:
        """One letter per distinct selection, keyed by variant_key."""
        out: dict[str, Letter] = {}
        for chosen in selections:
            key = variant_key(chosen)
            if key not in out:
                out[key] = self.letter(only(view, chosen, self.subject))
        return out

    def letter(self, view: DigestView) -> Letter:
        """The e-mail for this view: abstracts shortened, then dropped, then papers left
        to the web copy, until the HTML part fits under the clipping size. Only what the
        e-mail can show is inlined: when even the bare template (before inlining, which
        only adds to it) is over the size, the papers are cut first."""
        bare = with_abstracts(view, 0)
        if self._bare_over(bare):
            # Measure a small inlined sample, then scale to the size: premailer only ever
            # sees about as many papers as the e-mail will show.
            brief = with_abstracts(view, CAPPED_ABSTRACT)
            probe = capped(brief, max(len(view.sections), PROBE_PAPERS))
            return self._capped(brief, self._html(probe), count(probe))
        html = self._html(view)
        if self._fits(html):
            return self._done(view, html)
        bare_html = self._html(bare)
        if not self._fits(bare_html):
            # Some papers must go to the web copy anyway: the ones the e-mail keeps (the
            # top of each section) keep a short abstract, which is what makes a digest
            # worth reading, rather than twice as many bare titles.
            brief = with_abstracts(view, CAPPED_ABSTRACT)
            return self._capped(brief, self._html(brief), brief.paper_count)
        longest = max((len(p.short_abstract) for p in papers(view)), default=0)
        for chars in (160, 80):
            if chars < longest:
                shorter = with_abstracts(view, chars)
                html = self._html(shorter)
                if self._fits(html):
                    return self._done(shorter, html)
        return self._done(bare, bare_html)

    def _bare_over(self, bare: DigestView) -> bool:
        """Whether the bare e-mail (the template before inlining) is over the size. Its
        first papers alone are rendered first, more each time (what they render is part
        of what the whole renders): a digest of thousands of papers is known to be over
        after a few hundred, without holding the whole e-mail; the whole is rendered only
        when no part was over."""
        total, shown = count(bare), 2 * PROBE_PAPERS
        while shown < total:
            size = encoded_size(self._html(first_papers(bare, shown), inline=False))
            if size > self.max_html_bytes:
                return True
            shown = max(2 * shown, int(shown * 1.2 * self.max_html_bytes / max(size, 1)))
        return encoded_size(self._html(bare, inline=False)) > self.max_html_bytes

    def _capped(self, bare: DigestView, html: str, shown: int) -> Letter:
        """Fewer papers until it fits; the rest are on the web copy. `html` is the e-mail
        with `shown` papers of `bare`. When one paper a section is still too much, the
        papers kept lose their abstracts too."""
        fitted = bare
        for _ in range(10):
            target = max(1, int(shown * self.max_html_bytes / encoded_size(html) * 0.97))
            if not self._fits(html):
                target = min(target, shown - 1)
            fitted = capped(bare, target)
            if count(fitted) >= shown and len(bare.sections) <= target < shown:
                fitted = capped(bare, len(bare.sections) - 1)  # one a section is too many
            html = self._html(fitted)
            stuck = count(fitted) == shown  # (a sample that fits may grow: target > shown)
            shown = count(fitted)
            if self._fits(html) or stuck:
                break
        if not self._fits(html):
            fitted = with_abstracts(fitted, 0)
            html = self._html(fitted)
        if not self._fits(html):
            log.warning("issue %d: the e-mail stays over %d bytes", bare.issue, self.max_html_bytes)
        return self._done(fitted, html, every_title(fitted, bare))

    def _fits(self, html: str) -> bool:
        return encoded_size(html) <= self.max_html_bytes

    def _html(self, view: DigestView, *, inline: bool = True) -> str:
        marker = slot_marker()
        url = self.unsubscribe_url.replace(PLACEHOLDER, marker) or None
        rendered = self.renderer.email_html(view, unsubscribe_url=url, inline=inline)
        return own_slots(rendered, marker)

    def _done(self, view: DigestView, html: str, text_view: DigestView | None = None) -> Letter:
        """The letter: ``html``, and the text part of ``text_view`` (default: ``view``);
        nothing clips a text part, so it may list more papers than the HTML shows."""
        marker = slot_marker()
        url = self.unsubscribe_url.replace(PLACEHOLDER, marker)
        text_of = text_view or view
        text = own_slots(self.renderer.email_text(text_of, unsubscribe_url=url), marker)
        return Letter(subject=view.subject, html=html, text=text)


def count(view: DigestView) -> int:
    """Papers the view shows (paper_count counts those left to the web copy too)."""
    return sum(len(s.papers) for s in view.sections)


def every_title(fitted: DigestView, full: DigestView) -> DigestView:
    """The text part of a cut e-mail: the papers ``fitted`` shows as it shows them, then
    every other paper of ``full`` (same sections, same order) by its title and link."""

    def rest(shown: SectionView, whole: SectionView) -> SectionView:
        more = (
            replace(p, short_abstract="", truncated=True) for p in whole.papers[len(shown.papers) :]
        )
        return replace(shown, papers=shown.papers + tuple(more), total=0)

    sections = tuple(rest(a, b) for a, b in zip(fitted.sections, full.sections, strict=True))
    return replace(fitted, sections=sections)


def slot_marker() -> str:
    """A stand-in for PLACEHOLDER for one render: same length and alphabet (letters and
    digits, so wrapping and escaping treat it alike), unguessable."""
    return (PLACEHOLDER[:18] + secrets.token_hex(16))[: len(PLACEHOLDER)]


# What a PLACEHOLDER found in data becomes: it reads the same but can never match.
DEFUSED = PLACEHOLDER.lower()


def own_slots(rendered: str, marker: str) -> str:
    """``rendered`` with PLACEHOLDER exactly where the template put ``marker``."""
    return rendered.replace(PLACEHOLDER, DEFUSED).replace(marker, PLACEHOLDER)


def papers(view: DigestView) -> Iterator[PaperView]:
    for section in view.sections:
        yield from section.papers


def with_abstracts(view: DigestView, chars: int) -> DigestView:
    """Abstracts shortened to ``chars`` (0: none, with a link to the full one on the web)."""

    def cut(p: PaperView) -> PaperView:
        if not p.abstract:
            return p
        if chars == 0:
            return replace(p, short_abstract="", truncated=True)
        short, truncated = truncate(p.summary or p.abstract, chars)
        truncated = truncated or short != p.abstract
        return replace(p, short_abstract=short, truncated=truncated)

    return _map_sections(view, lambda s: replace(s, papers=tuple(cut(p) for p in s.papers)))


def first_papers(view: DigestView, shown: int) -> DigestView:
    """The first ``shown`` papers of the view, in order, as if they were all of it (the
    sections that keep any, counted by what they keep, nothing said to be left out): what
    it renders is a part of what the whole view renders, so never larger."""
    sections, left = [], shown
    for s in view.sections:
        if left <= 0:
            break
        kept = s.papers[:left]
        sections.append(replace(s, papers=kept, total=0))
        left -= len(kept)
    return replace(view, sections=tuple(sections), paper_count=shown - max(left, 0))


def capped(view: DigestView, shown: int) -> DigestView:
    """At most about ``shown`` papers, shared among the sections by size (at least one
    each while there are enough); ``paper_count`` keeps the full count so the templates
    can say what is left out."""
    total = sum(s.size for s in view.sections) or 1
    floor = 1 if shown >= len(view.sections) else 0  # else small sections are only a link

    def cap(s: SectionView) -> SectionView:
        keep = max(floor, s.size * shown // total)
        return replace(s, papers=s.papers[:keep], total=s.size)

    return _map_sections(view, cap)


def _map_sections(view: DigestView, fn: Callable[[SectionView], SectionView]) -> DigestView:
    return replace(view, sections=tuple(fn(s) for s in view.sections))
