"""Grouping papers into named sections: configured themes first, automatic topics for the
rest, and one remaining section for what fits nowhere.

1. **Configured themes** (``[[themes]]``) always take the papers that match them: each
   paper goes to the theme whose keywords it matches best (a title hit weighs 3, an
   abstract hit 1; an exclude word vetoes the theme; ties go to the theme configured
   first).
2. **Research areas**: each other paper gets its own area, the most specific area of the
   vocabulary (:mod:`digest.sections.areas`, a tree shipped as ``areas.toml``) it matches
   best (:mod:`digest.sections.match`), and prints under that area's section, which the
   vocabulary names (:meth:`~digest.sections.areas.Vocabulary.section_of`): the same area
   prints under the same name and slug in every digest, whatever its size. A section
   whose slug is a configured theme's gives its papers to that theme.
3. **Topics**: papers that fit no area are grouped by topic and named from their titles
   (:mod:`digest.sections.discover`); a one-word name is not kept.
4. **Remaining**: papers close to nothing go to :data:`REMAINING`, always last, at most
   :data:`MAX_REMAINING_SHARE` of the papers: beyond that the ones whose nearest papers
   are in a section join it.

Every paper in a section carries its own area (``Section.areas``): the area slug for an
area section, the section's slug for the others. It is stored with the issue.

Ranking: within a section, the paper that fits best leads: papers are ordered by their
fit (the score on their own area; a paper named by one stray word is never first), then
by how many dumps listed them (most first: a paper that keeps reappearing is trending),
then by their best position in a dump (top of the page first), then by title. Sections
are ordered by **weight**, the sum of their papers' sightings (a paper counts once, plus
once for each further dump that listed it), then by size, configured before automatic,
then by name.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from digest.config import ThemeConfig
from digest.ingest.keys import paper_key as _fold
from digest.urls import slugify

if TYPE_CHECKING:
    from digest.sections.areas import Vocabulary
    from digest.sections.facts import PaperFacts

REMAINING = "More papers"
MAX_REMAINING_SHARE = 0.10  # the remaining section holds at most this share of the papers

__all__ = ["REMAINING", "HasText", "Section", "assign", "fit_key", "rank_key", "sightings"]


class HasText(Protocol):
    """What a paper needs to be themed. ``sightings`` and ``position`` are optional: a
    paper without them counts as listed once, at the top."""

    @property
    def title(self) -> str: ...
    @property
    def abstract(self) -> str: ...


P = TypeVar("P", bound=HasText)


@dataclass
class Section(Generic[P]):
    name: str
    slug: str
    papers: list[P] = field(default_factory=list)
    configured: bool = False
    reasons: list[str] = field(default_factory=list)  # why each paper is here, in order
    automatic: bool = False  # found by topic discovery, not configured
    description: str = ""  # the configured theme's or the area's description
    area: bool = False  # a research area of the vocabulary
    areas: list[str] = field(default_factory=list)  # each paper's own area slug, in order
    fits: list[float] = field(default_factory=list)  # how well each fits its area
    weak: list[bool] = field(default_factory=list)  # its area rests on a stray word

    @property
    def weight(self) -> int:
        """How much the section weighs in the ordering: the sum of its papers' sightings."""
        return sum(sightings(p) for p in self.papers)

    def add(
        self, paper: P, reason: str, area: str = "", fit: float = 0.0, weak: bool = False
    ) -> None:
        """Add ``paper``; ``area`` is its own area ("": the section's slug)."""
        self.papers.append(paper)
        self.reasons.append(reason)
        self.areas.append(area)
        self.fits.append(fit)
        self.weak.append(weak)

    def area_of(self, k: int) -> str:
        """The own area of the section's ``k``-th paper (the section's slug if none)."""
        return (self.areas[k] if k < len(self.areas) else "") or self.slug


def sightings(paper: HasText) -> int:
    """How many dumps listed the paper (1 when the paper does not say)."""
    return int(getattr(paper, "sightings", 1) or 1)


def rank_key(paper: HasText) -> tuple[int, int, str, str, str]:
    """Most sightings first, then best position in a dump, then title (case-folded)."""
    position = int(getattr(paper, "position", 0) or 0)
    return (-sightings(paper), position, paper.title.casefold(), paper.title, paper.abstract)


MIN_ABSTRACT_HITS = 2  # without a title hit, a theme needs this many abstract mentions


@dataclass(frozen=True)
class _Matcher:
    """One theme's keywords as a single alternation (longest first), so that overlapping
    keywords ("mixture of experts", "experts") count a passage of text once."""

    theme: ThemeConfig
    pattern: re.Pattern[str]
    exclude: re.Pattern[str] | None

    @classmethod
    def of(cls, theme: ThemeConfig) -> _Matcher:
        words = sorted({_fold(k) for k in theme.keywords if _fold(k)}, key=lambda w: (-len(w), w))
        pattern = re.compile("|".join(_phrase(w) for w in words), re.I)
        excl = "|".join(_phrase(_fold(w)) for w in theme.exclude if _fold(w))
        return cls(theme, pattern, re.compile(excl, re.I) if excl else None)

    def score(self, title: str, abstract: str) -> tuple[int, list[str]]:
        """3 per title mention, 1 per abstract mention; 0 without a title mention and
        fewer than MIN_ABSTRACT_HITS abstract mentions (one passing mention is not a
        topic); an exclude word vetoes the theme."""
        if self.exclude and (self.exclude.search(title) or self.exclude.search(abstract)):
            return 0, []
        in_title = [_fold(m) for m in self.pattern.findall(title)]
        in_abstract = [_fold(m) for m in self.pattern.findall(abstract)]
        if not in_title and len(in_abstract) < MIN_ABSTRACT_HITS:
            return 0, []
        hits = sorted(set(in_title + in_abstract))
        return 3 * len(in_title) + len(in_abstract), hits


def _phrase(words: str) -> str:
    """A folded keyword as a whole-word pattern; any punctuation and spacing between its
    words match (the key fold made them one space)."""
    parts = [re.escape(p) for p in words.split(" ") if p]
    return r"(?<!\w)" + r"[\W_]+".join(parts) + r"(?!\w)"


def _configured(
    papers: Sequence[P], themes: Sequence[ThemeConfig]
) -> tuple[list[Section[P]], list[P]]:
    """The configured sections (empty ones included) and the papers none of them took."""
    matchers = [_Matcher.of(t) for t in themes]
    sections = [
        Section[P](t.name, slugify(t.name), configured=True, description=t.description)
        for t in themes
    ]
    rest: list[P] = []
    for paper in papers:
        best, best_hits, target = 0, [], -1
        for i, m in enumerate(matchers):
            score, hits = m.score(paper.title, paper.abstract)
            if score > best:
                best, best_hits, target = score, hits, i
        if target < 0:
            rest.append(paper)
        else:
            sections[target].add(paper, f"matched keywords {', '.join(best_hits)} (score {best})")
    return sections, rest


def _automatic(
    papers: Sequence[P],
    reserved: Sequence[str],
    enabled: bool,
    vocabulary: Vocabulary | None,
    facts: Mapping[str, PaperFacts] | None = None,
) -> tuple[list[Section[P]], Section[P]]:
    """Area sections for ``papers``, topic sections for what fits no area, and the
    remaining section (kept to at most ``MAX_REMAINING_SHARE`` of the papers)."""
    rest = Section[P](REMAINING, slugify(REMAINING))
    if not enabled:
        for paper in papers:
            rest.add(paper, "no configured theme matched")
        return [], rest
    # numpy and scikit-learn load only when needed
    from digest.sections.areas import bundled
    from digest.sections.match import match_areas

    vocabulary = vocabulary or bundled()
    titles, abstracts = [p.title for p in papers], [p.abstract for p in papers]
    kept = [facts.get(getattr(p, "key", "")) for p in papers] if facts else None
    found = match_areas(titles, abstracts, vocabulary, kept)
    label: dict[int, Section[P]] = {}
    by_slug: dict[str, Section[P]] = {}
    for i, x in enumerate(found.area):
        if x < 0:
            continue
        home = vocabulary.by_slug[vocabulary.section_of(vocabulary.areas[x].slug)]
        if home.slug not in by_slug:
            by_slug[home.slug] = Section[P](
                home.name, home.slug, description=home.description, area=True
            )
        label[i] = by_slug[home.slug]
    pool = [i for i, x in enumerate(found.area) if x < 0]
    why = {i: found.reasons[i] for i in range(len(papers))}
    names = [*reserved, REMAINING, *(a.name for a in vocabulary)]
    topics = _topics(pool, titles, abstracts, names, label, why)
    cap = math.floor(MAX_REMAINING_SHARE * len(papers))
    pool = [i for i in pool if i not in label]
    _cap(pool, cap, found.neighbours, label, why)
    for i in sorted(label):
        x = found.area[i]
        if x >= 0:
            slug = vocabulary.areas[x].slug
            label[i].add(papers[i], why[i], slug, found.fit[i], found.weak[i])
        else:
            label[i].add(papers[i], why[i])
    for i in pool:
        if i not in label:
            rest.add(papers[i], why[i])
    return [*by_slug.values(), *topics], rest


def _topics(
    pool: list[int],
    titles: Sequence[str],
    abstracts: Sequence[str],
    reserved: Sequence[str],
    label: dict[int, Section[P]],
    why: dict[int, str],
) -> list[Section[P]]:
    """Topic sections, named from their titles, for the papers that fit no area. A topic
    whose name is a single word is not kept (an editor would not print it)."""
    if len(pool) < 4:
        return []
    from digest.sections.discover import discover

    found = discover([titles[i] for i in pool], [abstracts[i] for i in pool], reserved=reserved)
    sections = []
    for auto in found.sections:
        if len(auto.name.split()) < 2:
            continue
        section = Section[P](auto.name, slugify(auto.name), automatic=True)
        for m, reason in zip(auto.members, auto.reasons, strict=True):
            label[pool[m]] = section
            why[pool[m]] = reason
        sections.append(section)
    return sections


def _cap(
    pool: list[int],
    cap: int,
    neighbours: list[list[int]],
    label: dict[int, Section[P]],
    why: dict[int, str],
) -> None:
    """Keep the remaining papers to ``cap``: the others (in canonical order of their
    index) join the section most of their nearest papers are in, if any is."""
    if len(pool) <= cap or not label:
        return
    moved = 0
    for i in pool:
        if moved >= len(pool) - cap:
            break
        near = Counter(label[j].slug for j in neighbours[i] if j in label)
        if not near:
            continue
        slug = sorted(near.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        section = next(s for s in label.values() if s.slug == slug)
        label[i] = section
        why[i] = f"most of its nearest papers are in {section.name}; {why[i]}"
        moved += 1


def fit_key(paper: HasText, fit: float, weak: bool) -> tuple[object, ...]:
    """Best fit first (a paper named by one stray word after every other), then
    :func:`rank_key`."""
    return (weak, -round(fit, 6), *rank_key(paper))


def _ranked(section: Section[P]) -> Section[P]:
    columns = (section.papers, section.reasons, section.areas, section.fits, section.weak)
    rows = sorted(zip(*columns, strict=True), key=lambda r: fit_key(r[0], r[3], r[4]))
    section.papers = [r[0] for r in rows]
    section.reasons = [r[1] for r in rows]
    section.areas = [r[2] for r in rows]
    section.fits = [r[3] for r in rows]
    section.weak = [r[4] for r in rows]
    return section


def _give_to_themes(mine: dict[str, Section[P]], areas: list[Section[P]]) -> None:
    """A configured theme owns its slug: papers whose own area (or section) has a theme's
    slug go to that theme, with their area kept."""
    for section in areas:
        keep = []
        for k, row in enumerate(zip(section.papers, section.reasons, strict=True)):
            area = section.area_of(k)
            theme = mine.get(area) or mine.get(section.slug)
            if theme is None:
                keep.append((*row, section.areas[k], section.fits[k], section.weak[k]))
            else:
                theme.add(row[0], row[1], area)
        columns = list(zip(*keep, strict=True)) or [(), (), (), (), ()]
        section.papers, section.reasons = list(columns[0]), list(columns[1])
        section.areas, section.fits, section.weak = (list(c) for c in columns[2:])


def _unique_slugs(sections: Sequence[Section[P]]) -> None:
    """Configured and remaining slugs are kept; an automatic one that collides gets -2, -3…"""
    taken = {s.slug for s in sections if not s.automatic}
    for s in sections:
        if not s.automatic:
            continue
        base, n = s.slug, 2
        while s.slug in taken:
            s.slug, n = f"{base}-{n}", n + 1
        taken.add(s.slug)


def assign(
    papers: Sequence[P],
    themes: Sequence[ThemeConfig],
    *,
    automatic: bool = True,
    vocabulary: Vocabulary | None = None,
    facts: Mapping[str, PaperFacts] | None = None,
) -> list[Section[P]]:
    """Configured themes take their papers, research areas of ``vocabulary`` (the bundled
    one by default) and topics found among the rest (unless ``automatic`` is False) the
    others, the remaining section what is left. Non-empty sections only, ranked (see the
    module docstring), the remaining section last. ``facts`` are the papers' kept facts
    by paper key (digest.sections.facts), where they have any."""
    configured, rest = _configured(papers, themes)
    names = [t.name for t in themes]
    found, remaining = _automatic(rest, names, automatic, vocabulary, facts)
    _give_to_themes({s.slug: s for s in configured}, [s for s in found if s.area])
    sections = [_ranked(s) for s in [*configured, *found] if s.papers]
    sections.sort(key=lambda s: (-s.weight, -len(s.papers), s.automatic, s.name.casefold()))
    if remaining.papers:
        sections.append(_ranked(remaining))
    _unique_slugs(sections)
    for s in sections:  # topics and the remaining section: the area is the section
        s.areas = [s.area_of(k) for k in range(len(s.papers))]
    return sections
