"""The renderer: one issue as the e-mail's HTML (CSS inlined once) and text parts, a feed
entry's content, the web copy, the archive pages, a section's page, a one-off notice
(``notice``: a confirmation, a welcome, an alert) and the web server's other pages.

It puts the parts of this package together: the template-set loader (`templates`), the
Jinja2 environments and filters (`environment`), the e-mail inliner (`inline`), over the
plain view model (`viewmodel`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jinja2

from digest.render import templates
from digest.render.environment import environment, render, render_utf8
from digest.render.inline import inline_css
from digest.render.viewmodel import DigestView, IssueSummary
from digest.urls import feedback_url

__all__ = ["FEED_SUMMARY_CHARS", "Renderer", "escaped_size", "preferences_of"]

FEED_SUMMARY_CHARS = (200, 160, 120, 100, 80, 60, 0)  # tried in turn until a feed entry fits


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


def feedback_of(unsubscribe_url: str | None) -> Callable[[str, str], str] | None:
    """The "more / less like this" link of a paper for the same subscriber:
    ``link(paper key, "more" | "less")`` (the token, or its placeholder, as in
    /unsubscribe/<token>); None without an unsubscribe link (the web copy)."""
    if not unsubscribe_url or "/unsubscribe/" not in unsubscribe_url:
        return None
    head, _, token = unsubscribe_url.rpartition("/unsubscribe/")
    return functools.partial(feedback_url, head, token)


class Renderer:
    """Renders a digest as an inlined HTML e-mail, a text part, and the web pages."""

    def __init__(
        self,
        template_set: str = "default",
        templates_dir: str | Path | None = None,
        *,
        builtin_dir: Path | None = None,
    ) -> None:
        # template_set (digest.template_set): a folder of the built-in templates
        builtin = (
            Path(builtin_dir) if builtin_dir is not None else templates.builtin_templates_dir()
        )
        own = Path(templates_dir) if templates_dir else None
        self.search_path: tuple[Path, ...] = templates.search_path(template_set, own, builtin)
        self._loader = templates.loader(self.search_path, builtin, template_set)
        self._html_env = environment(self._loader, autoescape=True, source=self._source)
        self._text_env = environment(self._loader, autoescape=False, source=self._source)

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
            feedback=feedback_of(unsubscribe_url),
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
            feedback=feedback_of(unsubscribe_url),
        )

    def feed_html(self, view: DigestView, *, max_bytes: int = 0) -> str:
        """One issue as a feed entry's content (``feed.html.j2``): plain semantic HTML.
        With ``max_bytes``, the one-line summaries are shortened, then left out, until the
        fragment fits, counted as an escaped XML text node (Atom's content, the largest)."""

        def entry(chars: int) -> str:
            return self._render(self._html_env, "feed.html.j2", view=view, summary_chars=chars)

        html = entry(FEED_SUMMARY_CHARS[0])
        if not max_bytes or escaped_size(html) <= max_bytes:
            return html
        # Too big with the longest summaries: the shortest (none) is the floor. When even
        # that does not fit, it is the answer, found in two renders instead of one per
        # length (a summary only grows with its limit: 7 renders of 10,000 papers, 1 s).
        html = entry(FEED_SUMMARY_CHARS[-1])
        if escaped_size(html) > max_bytes:
            return html
        for chars in FEED_SUMMARY_CHARS[1:-1]:
            shorter = entry(chars)
            if escaped_size(shorter) <= max_bytes:
                return shorter
        return html

    def web_html(self, view: DigestView) -> str:
        """The web copy of one issue (full abstracts, feed autodiscovery, CSS in <style>)."""
        return self.web_bytes(view).decode("utf-8")

    def web_bytes(self, view: DigestView) -> bytes:
        """`web_html` encoded to UTF-8 as it renders (what is stored and written)."""
        return render_utf8(
            self._html_env,
            "archive.html.j2",
            self.search_path,
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

    def text_page(self, name: str, **context: Any) -> str:
        """Any plain-text template of the template set (not autoescaped)."""
        return self._render(self._text_env, name, **context)

    def stylesheet(self) -> str:
        """The template set's ``style.css``, the one the e-mail is inlined with."""
        return self._source("style.css")

    # ----------------------------------------------------------------- rendering

    def _source(self, name: str) -> str:
        """The raw text of a template set's file (a stylesheet), through the same search path."""
        try:
            source, _, _ = self._loader.get_source(self._html_env, name)
        except jinja2.TemplateNotFound:
            raise templates.not_found(name, self.search_path) from None
        return source

    def _render(self, env: jinja2.Environment, name: str, **context: Any) -> str:
        return render(env, name, self.search_path, **context)
