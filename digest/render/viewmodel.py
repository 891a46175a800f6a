"""The view model of an issue: what every template gets, as plain dataclasses (never ORM
objects) — the issue (`DigestView`), its sections (`SectionView`), their papers
(`PaperView`), a line of the archive index (`IssueSummary`) — and `digest_view`, which
builds it from the cut sections: each paper's one-line summary (its contribution
sentence, shown in the e-mail; the full abstract is on the web copy), abstracts tidied,
anchors and links, the subject."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from digest.config import EmailSection, Settings
from digest.ingest.links import Link, tidy_text
from digest.render.reading import ARXIV_SEARCH, first_sentence, read_link
from digest.sections.assign import REMAINING, Section
from digest.sections.summary import summarise
from digest.text import truncate
from digest.urls import (
    issue_url,
    paper_anchor,
    paper_url,
    section_feed_url,
    section_page_url,
)

if TYPE_CHECKING:  # the ORM's queries load only where papers are read
    from digest.state.store import StoredPaper

__all__ = [
    "BRIEF_HEADING",
    "DigestView",
    "IssueSummary",
    "PaperView",
    "SectionView",
    "digest_view",
    "subject_line",
]

BRIEF_HEADING = "Briefly"  # the layout group of the small sections, at the end of an issue


@dataclass(frozen=True)
class PaperView:
    key: str  # paper_key(title); also used for the anchor
    anchor: str  # html id on the web copy, e.g. "p-3"
    title: str
    abstract: str  # full abstract
    short_abstract: str  # what the e-mail shows: the summary (or abstract), shortened
    truncated: bool  # short_abstract != abstract: the e-mail links the full abstract
    links: tuple[Link, ...]
    web_url: str  # absolute url of this paper on the web copy (archive page + #anchor)
    summary: str = ""  # one line that says what the paper does (its contribution sentence)
    read_url: str = ""  # where to read the paper: arXiv, its own page, or an arXiv search
    read_label: str = ""  # "arXiv", "Project page", "Code" or "Find on arXiv"
    area: str = ""  # slug of the paper's own area (what a reader's chosen topics match)

    @property
    def has_page(self) -> bool:
        """True when read_url is the paper's own page (not a search for its title)."""
        return bool(self.read_url) and not self.read_url.startswith(ARXIV_SEARCH)


@dataclass(frozen=True)
class SectionView:
    name: str
    slug: str
    anchor: str  # html id, e.g. "s-mixture-of-experts"
    papers: tuple[PaperView, ...]
    total: int = 0  # papers in the section when the e-mail shows only some; 0: all shown
    feed_url: str = ""  # absolute url of the section's own feed (themes/<slug>.xml)
    page_url: str = ""  # absolute url of the section's page (sections/<slug>.html)
    # layout only: one of the small sections gathered at the end of the issue under
    # BRIEF_HEADING, each paper labelled with and linked to this section
    brief: bool = False

    @property
    def size(self) -> int:
        """How many papers the section has (shown or not)."""
        return max(self.total, len(self.papers))

    @property
    def omitted(self) -> int:
        """Papers of the section left to the web copy (the e-mail had to be shorter)."""
        return self.size - len(self.papers)


@dataclass(frozen=True)
class DigestView:
    site_title: str  # [digest] title, e.g. "Papers digest"
    issue: int  # issue number (1, 2, ...); 0 for an unpublished preview
    subject: str
    published_at: datetime  # timezone-aware
    sections: tuple[SectionView, ...]
    paper_count: int
    base_url: str  # no trailing slash
    web_url: str  # absolute url of this issue's web copy
    feed_url: str  # absolute url of feed.xml
    archive_url: str  # absolute url of the archive index
    brief_heading: str = BRIEF_HEADING  # heading of the small sections gathered at the end


@dataclass(frozen=True)
class IssueSummary:
    """One line of the archive index."""

    issue: int
    subject: str
    published_at: datetime
    paper_count: int
    themes: tuple[str, ...]
    web_url: str
    section_pages: tuple[tuple[str, str], ...] = ()  # (section name, its page url), in order


_DANGLING = re.compile(r"^[\s:·,;|–—-]+|[\s:·,;|–—-]+$")  # what an empty {sections} leaves
BRIEF_MAX = 2  # a section of at most this many papers may be gathered there

DEFAULT_SUBJECT = EmailSection.subject
SUBJECT_MAX = EmailSection.subject_max


def digest_view(
    settings: Settings,
    issue: int,
    sections: Sequence[Section[StoredPaper]],
    when: datetime,
    summaries: Mapping[str, str] | None = None,
) -> DigestView:
    """The plain view model of one issue: what every template gets. ``summaries`` are
    the papers' kept one-line summaries by paper key; a paper without one is summarised
    now."""
    summaries = summaries or {}
    base = settings.base_url
    web_url = issue_url(base, issue)
    limit = settings.digest.abstract_chars
    views, n = [], 0
    brief = _brief(sections)
    sections = _gathered(sections, brief)
    for section in sections:
        papers = []
        for k, paper in enumerate(section.papers):
            n += 1
            abstract = _tidy(paper.abstract)
            kept = summaries.get(paper.key)
            line = summarise(paper.abstract) if kept is None else kept
            summary = line or first_sentence(abstract)  # the web copy always shows one
            short, cut = truncate(line or abstract, limit)
            cut = cut or " ".join(short.split()) != " ".join(abstract.split())
            read_url, read_label = read_link(paper.title, abstract, paper.links)
            papers.append(
                PaperView(
                    key=paper.key,
                    anchor=paper_anchor(n),
                    title=paper.title,
                    abstract=abstract,
                    short_abstract=short,
                    truncated=cut,
                    summary=summary,
                    links=paper.links,
                    web_url=paper_url(base, issue, n),
                    read_url=read_url,
                    read_label=read_label,
                    area=section.area_of(k),  # the paper's own area (stored as area_slug)
                )
            )
        views.append(
            SectionView(
                section.name,
                section.slug,
                f"s-{section.slug}",
                tuple(papers),
                feed_url=section_feed_url(base, section.slug),
                page_url=section_page_url(base, section.slug),
                brief=section.slug in brief,
            )
        )
    return DigestView(
        site_title=settings.digest.title,
        issue=issue,
        subject=subject_line(
            settings.digest.title,
            issue,
            n,
            sections,
            settings.email.subject,
            settings.email.subject_max,
        ),
        published_at=when,
        sections=tuple(views),
        paper_count=n,
        base_url=base,
        web_url=web_url,
        feed_url=f"{base}/feed.xml",
        archive_url=f"{base}/",
    )


def _tidy(text: str) -> str:
    """tidy_text, run only on a text with something for it to tidy: each of its rewrites
    needs a brace, a backslash or a tilde (five regex passes saved on most abstracts)."""
    return tidy_text(text) if "{" in text or "\\" in text or "~" in text else text


def _brief(sections: Sequence[Section[StoredPaper]]) -> frozenset[str]:
    """The slugs of the small sections gathered at the end (layout only): area and topic
    sections of at most ``BRIEF_MAX`` papers, when there are two or more of them and at
    least one full section is left; configured themes and the remaining section never."""
    small = [
        s.slug
        for s in sections
        if len(s.papers) <= BRIEF_MAX and not s.configured and s.name != REMAINING
    ]
    full = [s for s in sections if s.slug not in small and s.name != REMAINING]
    return frozenset(small) if len(small) >= 2 and full else frozenset()


def _gathered(
    sections: Sequence[Section[StoredPaper]], brief: frozenset[str]
) -> list[Section[StoredPaper]]:
    """The full sections in their order, then the brief ones, then the remaining section."""
    rest = [s for s in sections if s.name == REMAINING]
    full = [s for s in sections if s.slug not in brief and s.name != REMAINING]
    return [*full, *(s for s in sections if s.slug in brief), *rest]


def subject_line(
    title: str,
    issue: int,
    count: int,
    sections: Sequence[Any],
    template: str = DEFAULT_SUBJECT,
    limit: int = SUBJECT_MAX,
) -> str:
    """The subject from ``email.subject``: the count first, then as many leading sections
    as fit in ``limit`` characters and "+N" for the rest
    ("#12 · 64 papers: Reasoning, Music & audio, +9"). The catch-all section is never
    named: an issue with only that one says its count alone ("#3 · 1 paper"), not "More
    papers"; paper titles are dump text and stay out of the header."""
    named = [s.name for s in sections if s.name != REMAINING]
    noun = "paper" if count == 1 else "papers"
    fields = {"title": title, "issue": issue, "count": count, "papers": f"{count} {noun}"}

    def fill(shown: int) -> str:
        listed = named[:shown] + ([f"+{len(named) - shown}"] if shown < len(named) else [])
        filled = template.format(**fields, sections=", ".join(listed))
        return filled if listed else _DANGLING.sub("", filled)  # no "#3 · 1 paper: "

    for shown in range(len(named), 0, -1):
        subject = fill(shown)
        if len(subject) <= limit:
            return subject
    subject = fill(min(1, len(named)))
    return subject if len(subject) <= limit else truncate(subject, limit)[0]
