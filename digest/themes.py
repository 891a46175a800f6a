"""Grouping papers into named sections: configured themes first, the rest in one section."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from .config import ThemeConfig
from .render import slugify

REMAINING = "More papers"


class HasText(Protocol):
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


@dataclass(frozen=True)
class _Matcher:
    theme: ThemeConfig
    keywords: tuple[tuple[str, re.Pattern[str]], ...]
    exclude: re.Pattern[str] | None

    @classmethod
    def of(cls, theme: ThemeConfig) -> _Matcher:
        kws = tuple((k, _phrase(k)) for k in theme.keywords)
        excl = "|".join(_phrase(w).pattern for w in theme.exclude) if theme.exclude else ""
        return cls(theme, kws, re.compile(excl, re.I) if excl else None)

    def score(self, title: str, abstract: str) -> tuple[int, list[str]]:
        """Title hits weigh 3, abstract hits 1; an exclude word vetoes the theme."""
        if self.exclude and (self.exclude.search(title) or self.exclude.search(abstract)):
            return 0, []
        total, hits = 0, []
        for word, pattern in self.keywords:
            n = 3 * len(pattern.findall(title)) + len(pattern.findall(abstract))
            if n:
                total += n
                hits.append(word)
        return total, hits


def _phrase(words: str) -> re.Pattern[str]:
    """A keyword or phrase as whole words; hyphens and spaces are interchangeable."""
    parts = [re.escape(p) for p in re.split(r"[\s\-]+", words.strip()) if p]
    return re.compile(r"(?<!\w)" + r"[\s\-]+".join(parts) + r"(?!\w)", re.I)


def assign(papers: Sequence[P], themes: Sequence[ThemeConfig]) -> list[Section[P]]:
    """Each paper goes to its best-scoring configured theme (ties: first configured);
    unmatched papers go to the remaining section. Sections by size, remaining last."""
    matchers = [_Matcher.of(t) for t in themes]
    sections = {t.name: Section[P](t.name, slugify(t.name), configured=True) for t in themes}
    rest = Section[P](REMAINING, slugify(REMAINING))
    for paper in papers:
        best, best_hits, best_theme = 0, [], None
        for m in matchers:
            score, hits = m.score(paper.title, paper.abstract)
            if score > best:
                best, best_hits, best_theme = score, hits, m.theme.name
        target = sections[best_theme] if best_theme else rest
        target.papers.append(paper)
        target.reasons.append(
            f"matched {', '.join(best_hits)} (score {best})" if best_theme else "no theme matched"
        )
    ordered = sorted((s for s in sections.values() if s.papers), key=lambda s: -len(s.papers))
    return ordered + ([rest] if rest.papers else [])
