"""`digest themes`: how the pending papers would be grouped, and why (thin over App)."""

from __future__ import annotations

import copy
import csv
import json
import sys
from typing import TYPE_CHECKING, Protocol

import click
from rich.console import Console
from rich.text import Text

from digest.cli.context import old_name

if TYPE_CHECKING:
    from digest.app import App
    from digest.sections.areas import Area
    from digest.sections.assign import Section
    from digest.state.store import StoredPaper

out = Console(highlight=False, soft_wrap=True)


class _HasApp(Protocol):
    def app(self) -> App: ...


def _kind(section: Section[StoredPaper]) -> str:
    if section.configured:
        return "configured"
    if section.area:
        return "area"
    return "automatic" if section.automatic else "remaining"


def _print_section(section: Section[StoredPaper], reasons: bool, limit: int) -> None:
    header = Text()
    header.append(section.name, style="bold")
    header.append(
        f"  {len(section.papers)} paper{'s' if len(section.papers) != 1 else ''}"
        f" · {_kind(section)} · weight {section.weight} · themes/{section.slug}.xml",
        style="dim",
    )
    out.print(header)
    shown = section.papers[:limit] if limit else section.papers
    for n, (paper, reason) in enumerate(zip(shown, section.reasons, strict=False), 1):
        seen = (
            f"seen in {paper.sightings} dump{'s' if paper.sightings != 1 else ''}, "
            f"best position {paper.position + 1}"
        )
        out.print(Text(f"{n:4d}. {paper.title}  ") + Text(f"[{seen}]", style="dim"))
        summary = summarise(paper.abstract)
        if summary:
            out.print(Text(f"      {summary}", style="italic"))
        if reasons:
            out.print(Text(f"      {reason}", style="dim"))
    if len(shown) < len(section.papers):
        out.print(Text(f"      … and {len(section.papers) - len(shown)} more", style="dim"))
    out.print()


def _rows(sections: list[Section[StoredPaper]]) -> list[dict[str, str]]:
    """One row a paper: its section (never a layout group such as "Briefly"), the section's
    slug, and the paper's own area (the section's slug or an area below it)."""
    return [
        {"title": p.title, "section": s.name, "reason": reason, "slug": s.slug,
         "area": s.area_of(k), "kind": _kind(s), "summary": summarise(p.abstract)}
        for s in sections
        for k, (p, reason) in enumerate(zip(s.papers, s.reasons, strict=True))
    ]  # fmt: skip


def _write_tsv(rows: list[dict[str, str]]) -> None:
    """title<TAB>section<TAB>reason with a header row; tabs and newlines in a value become
    spaces, so every line is one paper."""
    writer = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE)
    writer.writerow(["title", "section", "reason"])
    for row in rows:
        writer.writerow([" ".join(row[k].split()) for k in ("title", "section", "reason")])


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "tsv", "json"]),
    default="text",
    show_default=True,
    help="text for people; tsv (title, section, reason, with a header row) or json (also the "
    "section's slug and each paper's own area) for scripts.",
)
@click.option(
    "--reasons/--no-reasons",
    default=True,
    show_default=True,
    help="Say why each paper is where it is.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=0,
    help="Show at most this many papers per section (0: all).",
)
@click.pass_obj
def themes(obj: _HasApp, fmt: str, reasons: bool, limit: int) -> None:
    """Show how the pending papers (new dumps included; nothing is stored) would be
    grouped into sections: each section in order, its papers in order with the line that
    says what each does, and why each paper landed there (its research area and matching
    terms, the topic it joined, or configured keywords)."""
    from digest.app import ingesting

    sections, why = ingesting.pending_sections(obj.app())
    if fmt == "tsv":
        _write_tsv(_rows(sections))
        return
    if fmt == "json":
        click.echo(json.dumps(_rows(sections), ensure_ascii=False, indent=1))
        return
    if not sections:
        out.print(why)
        return
    total = sum(len(s.papers) for s in sections)
    out.print(Text(f"{len(sections)} sections, {total} pending papers\n", style="bold"))
    for section in sections:
        _print_section(section, reasons, limit)


@click.command()
@click.pass_obj
def areas(obj: _HasApp) -> None:
    """List the topics readers can pick: the research areas sections are cut from (the
    bundled vocabulary, extended or replaced by [digest] areas_file), each broad area,
    then its narrower ones, with the slug subscribers (--topics) and feeds
    (themes/<slug>.xml) use and a one-line description. A topic takes every topic under it."""
    vocabulary = obj.app().vocabulary()
    out.print(Text(f"{len(vocabulary)} areas from {vocabulary.source}\n", style="bold"))

    def show(area: Area, depth: int) -> None:
        line = Text("  " * depth + area.name, style="bold" if depth == 0 else "")
        line.append(f"  [{area.slug}]", style="dim")
        out.print(line)
        out.print(Text("  " * depth + f"  {area.description}", style="dim"))
        for child in vocabulary.children(area.slug):
            show(child, depth + 1)

    known = {a.slug for a in vocabulary}
    for area in vocabulary:
        if not area.parent or area.parent not in known:
            show(area, 0)


def summarise(text: str) -> str:
    """A paper's one-line summary, as the issue shows it (scikit-learn and the
    summariser load only when a command prints sections)."""
    from digest.sections.summary import summarise as summary_of

    return summary_of(text)


topics = copy.copy(themes)  # what readers pick are "topics"; the command keeps its code
topics.name = "topics"
themes_old = old_name(topics, "themes")
