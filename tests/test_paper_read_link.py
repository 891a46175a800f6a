"""Where a paper is read, for any abstract and title: its arXiv page when the abstract or
a link names an id (an arxiv.org URL or "arXiv:NNNN.NNNNN", in any case), else its
project page or code, else an arXiv search for its title; and an abstract's LaTeX is
tidied exactly as tidy_text does, whether or not it has any."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.ingest.links import Link, tidy_text
from digest.render.reading import read_link
from digest.render.viewmodel import _tidy

_URL = re.compile(r"arxiv\.org/(?:abs|pdf|html)/(\d{4}\.\d{4,5})(?:v\d+)?", re.IGNORECASE)
_ID = re.compile(r"\barXiv\s*:\s*(\d{4}\.\d{4,5})(?:v\d+)?\b", re.IGNORECASE)


def expected(title: str, abstract: str, links: list[Link]) -> tuple[str, str]:
    """The rule as it reads, one regex after the other over the whole text."""
    for link in links:
        if m := _URL.search(link.url):
            return f"https://arxiv.org/abs/{m.group(1)}", "arXiv"
    if m := _URL.search(abstract) or _ID.search(abstract):
        return f"https://arxiv.org/abs/{m.group(1)}", "arXiv"
    for kind in ("project", "code"):
        for link in links:
            if link.kind == kind and not _URL.search(link.url):
                return link.url, "Project page" if kind == "project" else "Code"
    query = urlencode({"query": " ".join(title.split()), "searchtype": "title"})
    return "https://arxiv.org/search/?" + query, "Find on arXiv"


pieces = st.sampled_from(
    [
        "arXiv:2403.01234",
        "ARXIV : 2403.01234v2",
        "arxıv:2403.01234",  # a dotless i matches i when case is ignored
        "https://arxiv.org/abs/2401.00001",
        "http://ArXiv.org/pdf/2401.00001v3",
        "arxiv.org/html/2402.1234",
        "{\\it only}",
        "\\url{https://x.org}",
        "a~b",
        "100\\%",
        "https://x.org/{https://x.org/}",
        "We study routers.",
        " ",
        "\n",
        "é & <b> + ?",
    ]
)
texts = st.lists(st.one_of(pieces, st.text(max_size=12)), max_size=12).map("".join)
links = st.lists(
    st.builds(
        Link,
        st.one_of(st.just("https://arxiv.org/abs/2405.00002"), st.just("https://code.org/x")),
        st.sampled_from(["project", "code"]),
    ),
    max_size=3,
)


@settings(max_examples=3000, deadline=None)
@given(texts, texts, links)
def test_the_read_link_follows_the_rule_for_any_text(
    title: str, abstract: str, found: list[Link]
) -> None:
    assert read_link(title, abstract, found) == expected(title, abstract, found)


@settings(max_examples=3000, deadline=None)
@given(texts)
def test_an_abstract_is_tidied_as_tidy_text_tidies_it(abstract: str) -> None:
    assert _tidy(abstract) == tidy_text(abstract)
