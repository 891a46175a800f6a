"""The view model of an issue (plain dataclasses from render.py), built from the
themed sections: each paper's one-line summary (its contribution sentence, shown in the
e-mail; the full abstract is on the web copy), abstracts tidied, anchors and links, the subject."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from digest.config import Settings
from digest.ingest.links import tidy_text
from digest.render.renderer import DigestView, PaperView, SectionView, shorten
from digest.sections.assign import REMAINING, Section
from digest.sections.summary import one_line
from digest.state.store import StoredPaper
from digest.urls import issue_url, paper_anchor, paper_url


def digest_view(
    settings: Settings, issue: int, sections: Sequence[Section[StoredPaper]], when: datetime
) -> DigestView:
    """The plain view model of one issue: what every template gets."""
    base = settings.base_url
    web_url = issue_url(base, issue)
    limit = settings.digest.abstract_chars
    views, n = [], 0
    for section in sections:
        papers = []
        for paper in section.papers:
            n += 1
            abstract = tidy_text(paper.abstract)
            summary = one_line(paper.abstract)
            short, cut = shorten(summary or abstract, limit)
            cut = cut or " ".join(short.split()) != " ".join(abstract.split())
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
                )
            )
        views.append(SectionView(section.name, section.slug, f"s-{section.slug}", tuple(papers)))
    return DigestView(
        site_title=settings.digest.title,
        issue=issue,
        subject=subject_line(settings.digest.title, issue, n, sections),
        published_at=when,
        sections=tuple(views),
        paper_count=n,
        base_url=base,
        web_url=web_url,
        feed_url=f"{base}/feed.xml",
        archive_url=f"{base}/",
    )


def subject_line(title: str, issue: int, count: int, sections: Sequence[Any]) -> str:
    """ "Papers digest #3: 42 new papers — Mixture of experts, Agents and 4 more"."""
    named = [s.name for s in sections if s.name != REMAINING]
    lead = named[:2] or [sections[0].name]
    more = len(named) - len(lead)
    tail = f" and {more} more" if more > 0 else ""
    noun = "paper" if count == 1 else "papers"
    return f"{title} #{issue}: {count} new {noun} — {', '.join(lead)}{tail}"
