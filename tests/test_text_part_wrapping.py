"""The text part's lines are filled to 78 columns as textwrap fills them (urls and other
long words never broken, whitespace folded, an initial and a subsequent indent), for any
text: the ``wrap`` filter fills them itself, without textwrap's chunking."""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.render.environment import _wrap


def textwrap_fill(text: str, width: int, initial: str, subsequent: str | None) -> str:
    return textwrap.fill(
        " ".join(text.split()),
        width=width,
        initial_indent=initial,
        subsequent_indent=initial if subsequent is None else subsequent,
        break_long_words=False,
        break_on_hyphens=False,
    )


words = st.lists(st.text(alphabet="ab-é/.:\u00a0{}", max_size=30), max_size=60)
spaces = st.sampled_from([" ", "  ", "\n", "\t", "\r\n", " \u2003 "])
indents = st.text(" *.0123456789", max_size=12)


@settings(max_examples=2000, deadline=None)
@given(words, spaces, st.integers(1, 90), indents, st.none() | indents)
def test_lines_are_filled_as_textwrap_fills_them(
    parts: list[str], space: str, width: int, initial: str, subsequent: str | None
) -> None:
    text = space.join(parts)
    assert _wrap(text, width, initial, subsequent) == textwrap_fill(
        text, width, initial, subsequent
    )


@settings(max_examples=500, deadline=None)
@given(st.text(), st.integers(1, 90), indents, st.none() | indents)
def test_any_text_is_filled_as_textwrap_fills_it(
    text: str, width: int, initial: str, subsequent: str | None
) -> None:
    assert _wrap(text, width, initial, subsequent) == textwrap_fill(
        text, width, initial, subsequent
    )


def test_a_url_longer_than_a_line_stands_alone_unbroken() -> None:
    url = "https://example.org/" + "a" * 90
    assert _wrap(f"see {url} for the code", 78, "  ") == f"  see\n  {url}\n  for the code"
