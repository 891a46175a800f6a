"""Rendering: the Jinja2 environment, the view model, HTML (CSS inlined once) and text.

Templates are looked up, file by file, in the user's ``templates_dir``, then the chosen
template set (``digest.template_set``, the look) under the built-in templates folder, then the
built-in ``default`` set. A prefix loader also exposes each built-in set by name, so an
override can ``{% extends "default:digest.html.j2" %}`` and replace a single block.

Every HTML template is autoescaped; the text part is rendered by a second environment
that does not escape. The e-mail's ``style.css`` is inlined by premailer once per digest.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from lxml import etree
from markupsafe import Markup
from premailer import Premailer

from digest.errors import TemplateError
from digest.ingest.parse import Link
from digest.render.reading import ARXIV_SEARCH, after_summary, linkify
from digest.urls import abstract_anchor, abstract_url, paper_url

log = logging.getLogger(__name__)

__all__ = [
    "DigestView",
    "IssueSummary",
    "PaperView",
    "Renderer",
    "SectionView",
    "builtin_templates_dir",
    "inline_css",
    "shorten",
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


# --------------------------------------------------------------------------- helpers

ELLIPSIS = "…"
FEED_SUMMARY_CHARS = (200, 160, 120, 100, 80, 60, 0)  # tried in turn until a feed entry fits
_TRAILING_PUNCT = ".,;:-–—([{"  # a cut ending a sentence gets "…", not ".…"
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_CONTROL_AND_SPACE = re.compile(r"[\x00-\x20\x7f]+")
_CSS_CLASS = re.compile(r"\.(-?[_a-zA-Z][\w-]*)")


def shorten(text: str, limit: int = 320) -> tuple[str, bool]:
    """Cut ``text`` at a word boundary so that it, with a trailing "…", fits in ``limit``.

    Returns ``(short, truncated)``; a text that already fits comes back unchanged.
    A single word longer than the limit is cut inside the word.
    """
    if limit < 2:
        raise ValueError(f"shorten: limit must be at least 2, got {limit}")
    if len(text) <= limit:
        return text, False
    head = text[: limit - len(ELLIPSIS) + 1]  # one extra char: is the cut on a boundary?
    if head[-1].isspace():
        cut = head.rstrip()
    else:
        cut = head[:-1]
        space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
        if space > 0:
            cut = cut[:space]
    cut = cut.rstrip().rstrip(_TRAILING_PUNCT).rstrip()
    if not cut:  # all punctuation or one giant word
        cut = text[: limit - len(ELLIPSIS)]
    return cut + ELLIPSIS, True


def builtin_templates_dir() -> Path:
    """The built-in templates folder: ``digest/_templates`` in a wheel, else the repo's."""
    package_dir = Path(__file__).resolve().parent.parent
    bundled = package_dir / "_templates"
    return bundled if bundled.is_dir() else package_dir.parent / "templates"


def _safe_url(url: object) -> str:
    """Keep http(s)/mailto and relative urls; anything else (javascript:, data:) is dropped."""
    text = str(url or "")
    match = _SCHEME.match(_CONTROL_AND_SPACE.sub("", text))
    if match and match.group(1).lower() not in _SAFE_SCHEMES:
        return "#"
    return text


def escaped_size(html: str) -> int:
    """Bytes of ``html`` as the text of an XML element (&, < and > escaped)."""
    data = html.encode("utf-8")
    return len(data) + 4 * data.count(b"&") + 3 * (data.count(b"<") + data.count(b">"))


def preferences_of(unsubscribe_url: str | None) -> str | None:
    """The preferences page of the same subscriber: /unsubscribe/<token> becomes
    /preferences/<token> (the token, or its placeholder, stays where it was)."""
    if not unsubscribe_url or "/unsubscribe/" not in unsubscribe_url:
        return None
    head, _, tail = unsubscribe_url.rpartition("/unsubscribe/")
    return f"{head}/preferences/{tail}"


def _long_date(value: datetime) -> str:
    return f"{value.day} {value:%B %Y}"


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    word = singular if count == 1 else (plural or singular + "s")
    return f"{count} {word}"


def _wrap(text: str, width: int = 78, initial: str = "", subsequent: str | None = None) -> str:
    """Fill text to ``width`` columns; long words (urls) are never broken."""
    return textwrap.fill(
        " ".join(str(text).split()),
        width=width,
        initial_indent=initial,
        subsequent_indent=initial if subsequent is None else subsequent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _paragraphs(text: str) -> list[str]:
    """Split on blank lines; each paragraph's whitespace folded."""
    parts = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return [p for p in parts if p]


# --------------------------------------------------------------------------- inlining


def inline_css(html: str, css: str) -> str:
    """Inline ``css`` into ``html`` with premailer, never touching the network.

    Rules that cannot be inlined (``@media``, ``:hover``) stay in a ``<style>`` block in
    ``<head>`` (marked ``!important`` so they beat the inline styles); class names that
    no remaining rule refers to are dropped to keep the message small.
    """
    root = etree.fromstring(html, etree.HTMLParser())
    if root is None:
        raise TemplateError("the e-mail template rendered an empty document")
    premailer = Premailer(
        css_text=[css],
        allow_network=False,
        allow_loading_external_files=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        keep_style_tags=False,
        remove_classes=False,
        strip_important=False,
        disable_link_rewrites=True,
    )
    premailer.transform(root)
    _prune_classes(root)
    body = etree.tostring(root, method="html", encoding="unicode")
    return "<!DOCTYPE html>\n" + body


def _prune_classes(root: Any) -> None:
    """Drop the class names no kept rule uses. One walk of the tree: linear (an XPath
    query for `//*[@class]` is quadratic on the tree premailer leaves: 4 s for 8,000
    papers)."""
    kept_css = " ".join(style.text or "" for style in root.iter("style"))
    used = set(_CSS_CLASS.findall(kept_css))
    for element in root.iter(etree.Element):
        value = element.get("class")
        if value is None:
            continue
        classes = [c for c in value.split() if c in used]
        if classes:
            element.set("class", " ".join(classes))
        else:
            del element.attrib["class"]


# --------------------------------------------------------------------------- renderer


class Renderer:
    """Renders a digest as an inlined HTML e-mail, a text part, and the web pages."""

    def __init__(
        self,
        template_set: str = "default",
        templates_dir: str | Path | None = None,
        *,
        builtin_dir: Path | None = None,
    ) -> None:
        self.template_set = template_set  # digest.template_set: a folder of the built-in templates
        self.builtin_dir = Path(builtin_dir) if builtin_dir is not None else builtin_templates_dir()
        self.templates_dir = Path(templates_dir) if templates_dir else None
        self.search_path: tuple[Path, ...] = self._build_search_path()
        self._loader = self._build_loader()
        self._html_env = self._environment(autoescape=True)
        self._text_env = self._environment(autoescape=False)

    # ----------------------------------------------------------------- public API

    def email_html(
        self, view: DigestView, *, unsubscribe_url: str | None = None, inline: bool = True
    ) -> str:
        """The HTML part: ``digest.html.j2`` with ``style.css`` inlined (premailer, once).
        With ``inline=False``, the template alone: a quick lower bound of its size."""
        html = self._render(
            self._html_env,
            "digest.html.j2",
            view=view,
            unsubscribe_url=unsubscribe_url,
            preferences_url=preferences_of(unsubscribe_url),
        )
        return inline_css(html, self._source("style.css")) if inline else html

    def email_text(self, view: DigestView, *, unsubscribe_url: str | None = None) -> str:
        """The text/plain part, wrapped to 78 columns (urls are never broken)."""
        return self._render(
            self._text_env,
            "digest.txt.j2",
            view=view,
            unsubscribe_url=unsubscribe_url,
            preferences_url=preferences_of(unsubscribe_url),
        )

    def feed_html(self, view: DigestView, *, max_bytes: int = 0) -> str:
        """One issue as a feed entry's content (``feed.html.j2``): plain semantic HTML.
        With ``max_bytes``, the one-line summaries are shortened, then left out, until the
        fragment fits, counted as an escaped XML text node (Atom's content, the largest)."""
        html = ""
        for chars in FEED_SUMMARY_CHARS:
            html = self._render(self._html_env, "feed.html.j2", view=view, summary_chars=chars)
            if not max_bytes or escaped_size(html) <= max_bytes:
                break
        return html

    def web_html(self, view: DigestView) -> str:
        """The web copy of one issue (full abstracts, feed autodiscovery, CSS in <style>)."""
        return self._render(
            self._html_env,
            "archive.html.j2",
            view=view,
            site_title=view.site_title,
            base_url=view.base_url,
            feed_url=view.feed_url,
            atom_url=view.base_url + "/atom.xml",
            archive_url=view.archive_url,
        )

    def index_html(
        self,
        site_title: str,
        base_url: str,
        feed_url: str,
        issues: Sequence[IssueSummary],
        areas: Sequence[tuple[str, str]] = (),
        *,
        total: int | None = None,
        older_url: str | None = None,
    ) -> str:
        """The archive index: the newest issues, in the order given (newest first), a link
        to the page of older ones (``older_url``, when some are not listed), and every
        area with its feed (``areas``: (name, feed url)). ``total``: how many issues
        there are in all (default: those given)."""
        return self._issue_list(
            site_title,
            base_url,
            feed_url,
            issues,
            archive_url=None,
            total=len(issues) if total is None else total,
            areas=tuple(areas),
            page=None,
            newer_url=None,
            older_url=older_url,
        )

    def archive_page_html(
        self,
        site_title: str,
        base_url: str,
        feed_url: str,
        issues: Sequence[IssueSummary],
        *,
        span: tuple[int, int],
        newer_url: str,
        older_url: str | None,
    ) -> str:
        """One page of older issues (the issues numbered ``span``, newest first), with
        links to the newer and the older page."""
        return self._issue_list(
            site_title,
            base_url,
            feed_url,
            issues,
            archive_url=base_url.rstrip("/") + "/",
            total=len(issues),
            areas=(),
            page=span,
            newer_url=newer_url,
            older_url=older_url,
        )

    def section_page_html(
        self,
        site_title: str,
        base_url: str,
        name: str,
        section_feed_url: str,
        entries: Sequence[Any],
    ) -> str:
        """One section's page (``section.html.j2``): its recent papers, newest first
        (``entries``: plain records with title, abstract, url, published_at, issue)."""
        return self._render(
            self._html_env,
            "section.html.j2",
            site_title=site_title,
            base_url=base_url,
            feed_url=base_url + "/feed.xml",
            atom_url=base_url + "/atom.xml",
            archive_url=base_url.rstrip("/") + "/",
            section_name=name,
            section_feed_url=section_feed_url,
            entries=tuple(entries),
        )

    def _issue_list(
        self,
        site_title: str,
        base_url: str,
        feed_url: str,
        issues: Sequence[IssueSummary],
        **context: Any,
    ) -> str:
        """index.html.j2, the template of both the index and the pages of older issues."""
        return self._render(
            self._html_env,
            "index.html.j2",
            site_title=site_title,
            base_url=base_url,
            feed_url=feed_url,
            atom_url=base_url + "/atom.xml",
            issues=tuple(issues),
            **context,
        )

    def notice(self, name: str, **context: Any) -> tuple[str, str]:
        """A one-off e-mail (``<name>.html.j2`` and ``<name>.txt.j2``): (html, text)."""
        html = self._render(self._html_env, f"{name}.html.j2", **context)
        return html, self._render(self._text_env, f"{name}.txt.j2", **context)

    def page(self, name: str, **context: Any) -> str:
        """Any other HTML page of the template set (the web server's pages), autoescaped."""
        return self._render(self._html_env, name, **context)

    # ----------------------------------------------------------------- set-up

    def _build_search_path(self) -> tuple[Path, ...]:
        # the name is a folder name (no path, no ".."): checked when the settings were loaded
        path: list[Path] = []
        if self.templates_dir is not None:
            if not self.templates_dir.is_dir():
                raise TemplateError(
                    f"templates_dir {str(self.templates_dir)!r} is not a folder",
                    hint="fix [digest] templates_dir or leave it empty",
                )
            path.append(self.templates_dir)
        set_dir = self.builtin_dir / self.template_set
        if not set_dir.is_dir():
            path.append(set_dir)
            raise TemplateError(
                f"unknown template set {self.template_set!r} (digest.template_set); searched: "
                f"{_format_path(path)}",
                hint="available template sets: "
                + (", ".join(self.available_template_sets()) or "none"),
            )
        path.append(set_dir)
        if self.template_set != "default":
            path.append(self.builtin_dir / "default")
        return tuple(path)

    def available_template_sets(self) -> list[str]:
        """The template sets: the folders under the built-in templates folder."""
        if not self.builtin_dir.is_dir():
            return []
        return sorted(p.name for p in self.builtin_dir.iterdir() if p.is_dir())

    def _build_loader(self) -> jinja2.BaseLoader:
        prefixes: dict[str, jinja2.BaseLoader] = {
            name: jinja2.FileSystemLoader(self.builtin_dir / name)
            for name in {"default", self.template_set}
        }
        return jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader([str(p) for p in self.search_path]),
                jinja2.PrefixLoader(prefixes, delimiter=":"),
            ]
        )

    def _environment(self, *, autoescape: bool) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=self._loader,
            autoescape=autoescape,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters.update(
            longdate=_long_date,
            isodate=lambda value: value.isoformat(),
            plural=_plural,
            wrap=_wrap,
            safe_url=_safe_url,
            paragraphs=_paragraphs,
            linkify=linkify,
            after_summary=after_summary,
            shorten_to=lambda text, limit: shorten(str(text), int(limit))[0],
            abstract_anchor=abstract_anchor,
            abstract_url=abstract_url,
        )
        env.globals["stylesheet"] = lambda name: Markup(self._source(name))
        env.globals["paper_url"] = paper_url  # the one way a paper's web address is built
        return env

    # ----------------------------------------------------------------- rendering

    def _source(self, name: str) -> str:
        """The raw text of a template set's file (a stylesheet), through the same search path."""
        try:
            source, _, _ = self._loader.get_source(self._html_env, name)
        except jinja2.TemplateNotFound:
            raise self._not_found(name) from None
        return source

    def _render(self, env: jinja2.Environment, name: str, **context: Any) -> str:
        try:
            return env.get_template(name).render(**context)
        except jinja2.TemplateNotFound as err:
            raise self._not_found(err.name if isinstance(err.name, str) else name) from None
        except jinja2.TemplateSyntaxError as err:
            where = f"{err.filename or err.name}:{err.lineno}"
            raise TemplateError(f"{where}: {err.message}", hint="fix the template") from err
        except jinja2.TemplateError as err:
            raise TemplateError(f"{name}: {err}", hint="fix the template") from err

    def _not_found(self, name: str) -> TemplateError:
        return TemplateError(
            f"template {name!r} not found; searched: {_format_path(self.search_path)}",
            hint="add it to your templates_dir or pick another template set (digest.template_set)",
        )


def _format_path(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths)
