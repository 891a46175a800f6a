"""A reader's view of an issue: which papers open their e-mail "For you" (their watched
papers, each with the phrase that matched, then the suggestions their feedback makes),
and which of the papers of their sections stay below. A mute beats everything: a muted
paper is nowhere. A watched paper always appears, even outside the reader's sections.

The rules, in order:

1. muted: any paper a mute phrase matches (title or abstract, whole phrase, folded);
2. For you: the watched papers not muted, in issue order, then the suggestions not muted
   and not already there, at most ``for_you_max`` in all; a watched paper the reader's
   sections do not show is never dropped for the cap (it would appear nowhere), so the
   block exceeds the cap only by those;
3. below: the papers of the reader's sections, without the muted ones and those For you
   shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from digest.errors import DigestError
from digest.personal.phrases import Phrases, parse_phrases
from digest.render.viewmodel import DigestView, PaperView

PaperKey = str  # a paper's anchor in the issue ("p-3")
Suggestion = tuple[PaperKey, str]  # (paper, note), e.g. ("p-7", "like: <a title>")


@dataclass(frozen=True)
class ReaderView:
    for_you: tuple[tuple[PaperKey, str], ...]  # (paper, note) in the order shown
    below: tuple[PaperKey, ...]  # the reader's section papers that stay, in order
    muted: frozenset[PaperKey]  # every paper of the issue a mute matches
    shown: int = 0  # papers of the reader's sections (before this view)

    @property
    def changed(self) -> bool:
        """Whether this reader's letter differs from their sections' letter."""
        return bool(self.for_you) or len(self.below) != self.shown


def reader_view(
    papers: Phrases,
    anchors: Sequence[PaperKey],
    shown: Sequence[PaperKey],
    watch: str,
    mute: str,
    for_you_max: int,
    suggestions: Sequence[Suggestion] = (),
    chosen: Sequence[PaperKey] | None = None,
) -> ReaderView:
    """The view of one reader. ``papers``/``anchors``: every paper of the issue (indexed,
    and their anchors, in issue order); ``shown``: the papers their sections' letter
    shows, in order; ``chosen``: every paper of their sections (default: ``shown``; a
    letter cut to its size shows fewer, the rest are on the web copy);
    ``watch``/``mute``: as stored (";"-separated)."""
    watched = papers.first_match(_phrases(watch, "watch"))
    muted = frozenset(anchors[i] for i in papers.first_match(_phrases(mute, "mute")))
    in_sections = set(shown if chosen is None else chosen)
    picks: list[tuple[PaperKey, str]] = []
    taken: set[PaperKey] = set()
    for i in sorted(watched):
        anchor = anchors[i]
        if anchor in muted:
            continue
        if len(picks) < for_you_max or anchor not in in_sections:
            picks.append((anchor, f"matched: {watched[i]}"))
            taken.add(anchor)
    known = set(anchors)
    for anchor, note in suggestions:
        if len(picks) >= for_you_max:
            break
        if anchor not in muted and anchor not in taken and anchor in known:
            picks.append((anchor, note))
            taken.add(anchor)
    below = tuple(a for a in shown if a not in muted and a not in taken)
    return ReaderView(tuple(picks), below, muted, len(shown))


def _phrases(stored: str, field: str) -> tuple[str, ...]:
    # stored lists were checked on the way in; a bad one (edited by hand) counts as none
    try:
        return parse_phrases(stored, field)
    except DigestError:
        return ()


def index_of(view: DigestView) -> tuple[Phrases, tuple[PaperKey, ...]]:
    """Every paper of ``view`` indexed for matching, and their anchors (issue order)."""
    every = [p for s in view.sections for p in s.papers]
    return Phrases([(p.title, p.abstract) for p in every]), tuple(p.anchor for p in every)


def narrowed(
    view: DigestView, full: DigestView, mine: ReaderView
) -> tuple[DigestView, tuple[tuple[PaperView, str], ...]]:
    """``view`` (the reader's sections) as ``mine`` says — what stays below — and the
    For-you papers of ``full`` with their notes: the private feed's entry, for example."""
    by_anchor = {p.anchor: p for s in full.sections for p in s.papers}
    keep = set(mine.below)
    sections = []
    for s in view.sections:
        kept = tuple(p for p in s.papers if p.anchor in keep)
        if kept:
            sections.append(replace(s, papers=kept))
    below = replace(view, sections=tuple(sections))
    return below, tuple((by_anchor[a], note) for a, note in mine.for_you if a in by_anchor)
