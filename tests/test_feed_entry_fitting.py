"""An issue's feed entry is fitted under a size by shortening the papers' one-line
summaries, then leaving them out: the entry chosen is the one with the longest summaries
that fits (or none at all when nothing fits), and a big issue that fits at no length is
rendered twice, not once per length (7 renders of 10,000 papers took a second)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jinja2
import pytest

from digest.render.renderer import FEED_SUMMARY_CHARS, Renderer, escaped_size
from tests.test_render import make_paper, make_section, make_view

SUMMARY = "We show that a router trained with a balancing loss keeps every expert busy. " * 3


class CountingRenderer(Renderer):
    """The real renderer, noting the summary length of each feed entry it renders."""

    def __init__(self) -> None:
        super().__init__()
        self.lengths: list[int] = []

    def _render(self, env: jinja2.Environment, name: str, **context: Any) -> str:
        if name == "feed.html.j2":
            self.lengths.append(context["summary_chars"])
        return super()._render(env, name, **context)


def view_of(papers: int) -> Any:
    made = tuple(
        replace(make_paper(n, f"Paper {n} on routing", SUMMARY), summary=SUMMARY)
        for n in range(1, papers + 1)
    )
    return make_view((make_section("Mixture of experts", made),))


def entry(view: Any, chars: int) -> str:
    return Renderer()._render(Renderer()._html_env, "feed.html.j2", view=view, summary_chars=chars)


def longest_that_fits(view: Any, max_bytes: int) -> tuple[int, str]:
    """What the entry must be: each length in turn, the first that fits, else none (the
    choice as it was made before the two-render shortcut: this test guards it)."""
    for chars in FEED_SUMMARY_CHARS:
        html = entry(view, chars)
        if escaped_size(html) <= max_bytes:
            return chars, html
    return 0, html


def test_an_entry_that_fits_at_no_length_is_rendered_twice() -> None:
    view = view_of(200)
    floor = escaped_size(entry(view, 0))
    renderer = CountingRenderer()
    html = renderer.feed_html(view, max_bytes=floor - 1)
    assert renderer.lengths == [FEED_SUMMARY_CHARS[0], 0]
    assert html == entry(view, 0)
    assert "balancing loss" not in html and "Paper 200 on routing" in html


@pytest.mark.parametrize("chars", FEED_SUMMARY_CHARS)
def test_the_entry_keeps_the_longest_summaries_that_fit(chars: int) -> None:
    view = view_of(40)
    max_bytes = escaped_size(entry(view, chars))  # exactly fits at this length
    renderer = CountingRenderer()
    html = renderer.feed_html(view, max_bytes=max_bytes)
    assert html == longest_that_fits(view, max_bytes)[1]  # the same choice as every length
    assert escaped_size(html) <= max_bytes
