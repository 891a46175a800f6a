"""Outside text is cut and flattened one way everywhere: one truncation (abstracts in the
e-mail, summaries in a feed, the first sentence of a web copy, a title quoted in a dump
warning) and one `one_line` (a subject, a relay's answer), both in `digest.text`."""

from __future__ import annotations

from datetime import datetime

import pytest

from digest.ingest.parse import parse_bytes
from digest.mail.message import header_text
from digest.render.reading import first_sentence
from digest.text import one_line, truncate

LONG_ABSTRACT = (
    "Mixture-of-experts models route each token to a few experts. "
    + "We study how routers behave when the number of experts grows, and why load balancing "
    "losses help less than expected at scale. "
    * 6
    + "Our code is at https://github.com/example/moe-router and the END OF THE ABSTRACT."
)

# ----------------------------------------------------------------------------- truncation


def test_truncate_keeps_short_text() -> None:
    assert truncate("A short abstract.", 320) == ("A short abstract.", False)
    assert truncate("x" * 320, 320) == ("x" * 320, False)
    assert truncate("", 320) == ("", False)


def test_truncate_cuts_at_a_word_boundary() -> None:
    text = "alpha beta gamma delta epsilon"
    short, truncated = truncate(text, 15)
    assert (short, truncated) == ("alpha beta…", True)
    assert len(short) <= 15
    short, _ = truncate(LONG_ABSTRACT, 320)
    assert len(short) <= 320 and short.endswith("…")
    assert LONG_ABSTRACT.startswith(short[:-1])
    assert LONG_ABSTRACT[len(short) - 1] == " "


def test_truncate_edge_cases() -> None:
    assert truncate("alpha beta, gamma", 12) == ("alpha beta…", True)
    assert truncate("alpha betagamma", 11) == ("alpha…", True)
    assert truncate("alpha beta gamma", 11) == ("alpha beta…", True)  # cut falls on a space
    assert truncate("x" * 50, 10) == ("x" * 9 + "…", True)
    with pytest.raises(ValueError):
        truncate("abc", 1)


def test_a_long_first_sentence_is_cut_like_an_abstract() -> None:
    sentence = "We study " + "very " * 60 + "long sentences. Then more."
    assert first_sentence(sentence, 40) == truncate(sentence.split(". ")[0] + ".", 40)[0]
    # the cut falls on a space: the whole word before it stays, the comma goes
    assert first_sentence("Alpha beta, gamma delta epsilon. Next.", 12) == "Alpha beta…"


def test_a_dump_warning_quotes_a_long_title_cut_at_a_word() -> None:
    title = "A title " + "that continues " * 6 + "without an abstract"
    data = f"Mar 14\n\n{title}\n\nShort title\n\n{'An abstract. ' * 20}\n".encode()
    listing = parse_bytes(data, name="d.txt", mtime=datetime.now())
    quoted = [w for w in listing.warnings if "title with no abstract" in w]
    assert quoted == [f"d.txt:3: title with no abstract: {truncate(title, 60)[0]!r}"]


# ----------------------------------------------------------------------------- one line


@pytest.mark.parametrize(
    ("text", "flat"),
    [
        ("a\nb", "a b"),
        ("a\r\n\r\nb", "a b"),
        ("a\x00b\x1b[2Jc", "a b [2Jc"),
        ("a\u2028b\u2029c", "a b c"),
        ("a\u202eb", "a b"),  # a bidi override is not printable
        ("  spaced \t out  ", "spaced out"),
        ("plain", "plain"),
    ],
)
def test_one_line_turns_every_unprintable_character_into_one_space(text: str, flat: str) -> None:
    assert one_line(text) == flat


def test_a_header_is_one_line_with_encoded_words_split() -> None:
    assert header_text("Re: =?utf-8?q?x?=\r\nBcc: evil@example.org") == (
        "Re: = ?utf-8?q?x?= Bcc: evil@example.org"
    )
    assert header_text("Evil \u202egnp.exe") == "Evil gnp.exe"  # no bidi override in a subject


def test_a_search_hit_shows_its_abstract_cut_like_everywhere_else() -> None:
    from digest.render.renderer import Renderer
    from digest.state.issues import Hit

    abstract = "We route tokens, " + "carefully and " * 40 + "at scale."
    hit = Hit("A title", abstract, 1, "Reasoning", datetime(2026, 3, 14).astimezone(), 1)
    base = "https://digest.example.org"
    page = Renderer().page(
        "search.html.j2",
        query="route",
        hits=[hit],
        site_title="Papers digest",
        base_url=base,
        feed_url=f"{base}/feed.xml",
        atom_url=f"{base}/atom.xml",
        archive_url=f"{base}/",
    )
    assert f"<p>{truncate(abstract, 280)[0]}</p>" in page
