"""Tests of the dump parser: the real dumps, every messy-input case, and hypothesis properties."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import DumpError
from digest.ingest import folder as dump_folder
from digest.ingest import header as dump_header
from digest.ingest.keys import paper_key
from digest.ingest.links import Link, extract_links
from digest.ingest.parse import Listing, parse_bytes
from tests.support.dumps import parse_dump

SAMPLES = Path(__file__).resolve().parent.parent / "examples" / "dumps"
MTIME = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HEADER = (
    "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\n"
    "byAK and the research community\n\nMar 14\n\n"
)  # the date is on line 9, the first title on line 11
# Abstracts long enough to be abstracts (parse.MIN_ABSTRACT_CHARS) and ending whole.
A1 = (
    "We study one thing in depth, across many settings and data sets, "
    "and find that it works well in each of them."
)
A2 = (
    "We study another thing at scale, with careful ablations on several models; "
    "see https://github.com/a/b."
)
WARNING_RE = re.compile(r"^[^:]+:\d+: \S")
FAST = settings(max_examples=200, deadline=None)


def parse(text: str | bytes, *, mtime: datetime = MTIME, name: str = "d.txt") -> Listing:
    data = text.encode("utf-8") if isinstance(text, str) else text
    listing = parse_bytes(data, name=name, mtime=mtime)
    assert all(WARNING_RE.match(w) and w.startswith(f"{name}:") for w in listing.warnings)
    return listing


def pairs(listing: Listing) -> list[tuple[str, str]]:
    return [(p.title, p.abstract) for p in listing.papers]


def dump_error(text: str | bytes) -> DumpError:
    with pytest.raises(DumpError) as info:
        parse(text)
    return info.value


# --- the real dumps --------------------------------------------------------------------------

REAL = [
    (
        "000_2d83581627280318.txt",
        61,
        date(2026, 3, 14),
        "Compositional Video Generation as Flow Equalization",
        "Large-scale Text-to-Video",
        "Composition of Experts: A Modular Compound AI System Leveraging Large Language Models",
        17,
    ),
    (
        "001_b9e0f318b948f23d.txt",
        74,
        date(2025, 7, 31),  # MTIME is May 1 2026
        "MixerMDM: Learnable Composition of Human Motion Diffusion Models",
        "Generating human motion guided",
        "How Do Transformers Learn In-Context Beyond Simple Functions? A Case Study on "
        "Learning with Representations",
        22,
    ),
    (
        "002_70361baa27048242.txt",
        60,
        date(2026, 3, 11),
        "A Survey on Mixture of Experts",
        "Large language models (LLMs) have garnered",
        "Tool Documentation Enables Zero-Shot Tool-Usage with Large Language Models",
        24,
    ),
]


@pytest.mark.parametrize(("name", "count", "listed", "first", "start", "last", "links"), REAL)
def test_real_dump(
    name: str,
    count: int,
    listed: date,
    first: str,
    start: str,
    last: str,
    links: int,
) -> None:
    data = (SAMPLES / name).read_bytes()
    listing = parse(data, name=name)
    assert len(listing.papers) == count
    assert listing.listing_date == listed
    assert listing.warnings == []
    assert listing.content_hash == hashlib.sha256(data).hexdigest()
    assert listing.papers[0].title == first
    assert listing.papers[0].abstract.startswith(start)
    assert listing.papers[-1].title == last
    assert [p.position for p in listing.papers] == list(range(count))
    assert sum(len(p.links) for p in listing.papers) == links


@pytest.mark.parametrize("name", [row[0] for row in REAL])
def test_real_dump_pairs_are_intact(name: str) -> None:
    """Every (title, abstract) pair equals the blank-line-separated blocks, in order."""
    text = (SAMPLES / name).read_text(encoding="utf-8")
    lines = text.split("\n")
    blocks = [(n, b) for n, b in enumerate(lines, start=1) if b.strip()]
    date_index = next(i for i, (_, b) in enumerate(blocks) if re.fullmatch(r"[A-Z][a-z]{2} \d+", b))
    rest = blocks[date_index + 1 :]
    expected = [(t[1], a[1]) for t, a in zip(rest[::2], rest[1::2], strict=True)]
    listing = parse(text, name=name)
    assert pairs(listing) == expected
    assert [p.line for p in listing.papers] == [n for n, _ in rest[::2]]
    for paper in listing.papers:
        assert paper.links == extract_links(paper.abstract)


def test_real_dump_links() -> None:
    listing = parse((SAMPLES / "000_2d83581627280318.txt").read_bytes())
    vico = listing.papers[0]
    assert vico.links == (Link("https://adamdad.github.io/vico/", "project"),)
    urls = [link.url for p in listing.papers for link in p.links]
    assert "https://github.com/steven640pixel/GalleryGPT" in urls
    assert "https://www.jenmusic.ai/research#DreamStyler" in urls
    beclr = parse((SAMPLES / "002_70361baa27048242.txt").read_bytes())
    all_urls = [link.url for p in beclr.papers for link in p.links]
    assert "https://github.com/stypoumic/BECLR" in all_urls  # written "…/BECLR)." in the dump
    assert "https://aiming-lab.github.io/MJ-VIDEO.github.io/" in all_urls


def test_parse_dump_reads_file_and_uses_its_mtime(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    shutil.copyfile(SAMPLES / "000_2d83581627280318.txt", path)
    stamp = datetime(2027, 1, 10, 12, 0).timestamp()  # local noon: no time-zone edge
    os.utime(path, (stamp, stamp))
    listing = parse_dump(str(path))
    assert listing.path == str(path)
    assert listing.listing_date == date(2026, 3, 14)
    assert listing.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(listing.papers) == 61


def test_parse_dump_same_day_mtime(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_text(HEADER + "T\n\n" + A1)
    stamp = datetime(2026, 3, 14, 12, 0).timestamp()
    os.utime(path, (stamp, stamp))
    assert parse_dump(str(path)).listing_date == date(2026, 3, 14)


def test_parse_dump_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.txt")
    with pytest.raises(DumpError) as info:
        parse_dump(path)
    assert info.value.path == path
    assert info.value.problem == "file not found"


def test_parse_dump_directory(tmp_path: Path) -> None:
    with pytest.raises(DumpError) as info:
        parse_dump(str(tmp_path))
    assert info.value.path == str(tmp_path)
    assert "directory" in info.value.problem


def test_parse_dump_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.txt"
    path.write_text(HEADER + "T\n\n" + A1)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(dump_folder.os, "open", refuse)  # root reads any file: say it refused
    with pytest.raises(DumpError) as info:
        parse_dump(str(path))
    assert info.value.problem == "permission denied"
    assert str(path) in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_parse_dump_special_file_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(DumpError, match="not a regular file"):
        parse_dump(str(fifo))  # opening a FIFO with no writer would block forever


# --- shapes of text --------------------------------------------------------------------------

CLEAN = HEADER + "First Title\n\n" + A1 + "\n\nSecond Title\n\n" + A2 + "\n"
CLEAN_PAIRS = [("First Title", A1), ("Second Title", A2)]


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_line_endings(newline: str) -> None:
    listing = parse(CLEAN.replace("\n", newline))
    assert pairs(listing) == CLEAN_PAIRS
    assert [p.line for p in listing.papers] == [11, 15]
    assert listing.listing_date == date(2026, 3, 14)
    assert listing.warnings == []


def test_bom() -> None:
    listing = parse(b"\xef\xbb\xbf" + CLEAN.encode())
    assert pairs(listing) == CLEAN_PAIRS
    assert listing.warnings == []


def test_invalid_utf8_is_replaced_and_reported() -> None:
    data = CLEAN.replace("Second Title", "Second Caf\udcff Title").encode(
        "utf-8", "surrogateescape"
    )
    data = data.replace(A1.encode(), b"We study \xc3\x28\xff one thing.")
    listing = parse(data)
    assert listing.papers[0].abstract == "We study \ufffd(\ufffd one thing."
    assert listing.papers[1].title == "Second Caf\ufffd Title"
    assert listing.warnings == [
        "d.txt:13: replaced 3 invalid UTF-8 byte(s) with U+FFFD (first on line 13)"
    ]


def test_wrapped_abstract_is_joined() -> None:
    listing = parse(HEADER + "Title\n\nWe study\n   one thing   \nand it works.\n\nNext\n\n" + A2)
    assert pairs(listing) == [("Title", "We study one thing and it works."), ("Next", A2)]


def test_wrapped_title_is_joined() -> None:
    listing = parse(HEADER + "A Rather Long Title\nContinued Here\n\n" + A1)
    assert pairs(listing) == [("A Rather Long Title Continued Here", A1)]


def test_title_with_no_abstract_in_the_middle() -> None:
    listing = parse(HEADER + "One\n\n" + A1 + "\n\nLonely Title\n\nThree\n\n" + A2)
    assert pairs(listing) == [("One", A1), ("Lonely Title", ""), ("Three", A2)]
    assert [p.position for p in listing.papers] == [0, 1, 2]
    assert listing.papers[1].links == ()
    assert listing.warnings == ["d.txt:15: title with no abstract: 'Lonely Title'"]


def test_title_with_no_abstract_at_the_end() -> None:
    """A file still being written: the last title has no abstract yet, so it is left
    for the whole file."""
    listing = parse(HEADER + "One\n\n" + A1 + "\n\nCut Off Here\n")
    assert pairs(listing) == [("One", A1)]
    assert listing.warnings == [
        "d.txt:15: skipped the last paper, which has no abstract yet "
        "(is the file still being written?): 'Cut Off Here'"
    ]


LONG = f"{A1} {A2} {A1} {A2}"  # over 300 characters: never mistaken for a title


def test_abstract_cut_mid_sentence_at_the_end() -> None:
    listing = parse(HEADER + "One\n\n" + A1 + "\n\nTwo\n\n" + LONG[:330])
    assert pairs(listing) == [("One", A1)]
    assert listing.warnings == [
        "d.txt:15: skipped the last paper, whose abstract stops mid-sentence "
        "(is the file still being written?): 'Two'"
    ]


def test_a_short_cut_abstract_read_as_a_title_drops_its_paper_too() -> None:
    listing = parse(HEADER + "One\n\n" + A1 + "\n\nTwo\n\n" + A1[:50])
    assert pairs(listing) == [("One", A1)]
    assert len(listing.warnings) == 2 and "'Two'" in listing.warnings[1]


@pytest.mark.parametrize(
    "end", [".", "!", "?", ".)", '."', " https://github.com/a/b", " www.x.org"]
)
def test_a_whole_last_abstract_is_kept(end: str) -> None:
    listing = parse(HEADER + "One\n\n" + A1 + "\n\nTwo\n\n" + LONG[:-1] + end)
    assert len(listing.papers) == 2
    assert listing.warnings == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hello world, this is not a dump", "no listing date"),
        (HEADER + "A\n\nB\n\nC\n", "no abstracts: 3 title(s)"),
        (HEADER + "A\n\nshort one.\n\nB\n\nshort two.\n\nC\n\n" + A1, "too short"),
    ],
)
def test_text_without_the_shape_of_a_listing(text: str, problem: str) -> None:
    assert problem in dump_error(text).problem


def test_several_titles_with_no_abstract() -> None:
    listing = parse(HEADER + "A\n\nB\n\nC\n\n" + A1 + "\n\nD\n\n" + A2 + "\n\nE\n\n" + A1)
    assert pairs(listing) == [("A", ""), ("B", ""), ("C", A1), ("D", A2), ("E", A1)]
    assert len(listing.warnings) == 2


def test_title_ending_with_a_period_before_an_abstract() -> None:
    listing = parse(HEADER + "Attention Is Not All You Need.\n\n" + A1)
    assert pairs(listing) == [("Attention Is Not All You Need.", A1)]


def test_short_abstract_without_period_is_not_mistaken_when_multiline() -> None:
    listing = parse(HEADER + "Title\n\nCode at\nhttps://github.com/x/y\n\nNext\n\n" + A1)
    assert pairs(listing) == [("Title", "Code at https://github.com/x/y"), ("Next", A1)]


def test_second_abstract_paragraph_is_joined() -> None:
    listing = parse(HEADER + "Title\n\n" + A1 + "\n\nMore detail follows here.\n\nNext\n\n" + A2)
    assert pairs(listing) == [("Title", A1 + " More detail follows here."), ("Next", A2)]
    assert listing.warnings == ["d.txt:15: joined a second paragraph to the abstract above"]


def test_paragraph_before_any_title_is_skipped() -> None:
    listing = parse(HEADER + "A stray sentence.\n\nTitle\n\n" + A1)
    assert pairs(listing) == [("Title", A1)]
    assert listing.warnings == ["d.txt:11: skipped a paragraph with no title: 'A stray sentence.'"]


def test_missing_header_keeps_the_date() -> None:
    listing = parse("Mar 14\n\nTitle\n\n" + A1)
    assert pairs(listing) == [("Title", A1)]
    assert listing.listing_date == date(2026, 3, 14)
    assert listing.papers[0].line == 3
    assert listing.warnings == []


def test_missing_header_and_date() -> None:
    err = dump_error("Title\n\n" + A1)
    assert err.problem.startswith("no listing date (such as 'Mar 14') before the first paper")
    assert err.line == 1


def test_missing_date_after_header() -> None:
    err = dump_error(HEADER.replace("Mar 14\n\n", "") + "Title\n\n" + A1)
    assert err.problem.startswith("no listing date")
    assert err.line == 9


def test_unknown_header_lines_are_skipped_with_a_warning() -> None:
    text = "new\n\nSign in to follow authors\n\nDaily Papers\nTrending\n\nMar 14\n\nTitle\n\n" + A1
    listing = parse(text)
    assert pairs(listing) == [("Title", A1)]
    assert listing.listing_date == date(2026, 3, 14)
    assert listing.warnings == [
        "d.txt:3: skipped an unexpected header line: 'Sign in to follow authors'",
        "d.txt:6: skipped an unexpected header line: 'Trending'",
    ]


def test_known_header_variants_are_silent() -> None:
    text = (
        "NEW\n\nGet trending papers in your email inbox\n\nSubscribe\n\nDaily  Papers\n\nMar 14\n\n"
    )
    listing = parse(text + "Title\n\n" + A1)
    assert listing.warnings == []
    assert pairs(listing) == [("Title", A1)]


def test_header_lines_without_blank_lines() -> None:
    listing = parse("new\nSubscribe\nMar 14\nTitle\n\n" + A1)
    assert pairs(listing) == [("Title", A1)]
    assert listing.papers[0].line == 4
    assert listing.listing_date == date(2026, 3, 14)


def test_trailing_whitespace_tabs_and_many_blank_lines() -> None:
    text = (
        HEADER + "\n\n \t\n\t First\tTitle \t\n \n\n\n\t\n" + "We\tstudy  one\u00a0thing.   \n\n\n"
    )
    listing = parse(text + "Next\n\n" + A1)
    assert pairs(listing) == [("First Title", "We study one thing."), ("Next", A1)]
    assert listing.papers[0].line == 14


def test_nul_and_control_bytes_are_removed() -> None:
    listing = parse(CLEAN.replace("First Title", "First\x00 Ti\x07tle"))
    assert pairs(listing) == CLEAN_PAIRS
    assert listing.warnings == ["d.txt:11: removed 2 control byte(s) (first on line 11)"]


def test_duplicate_titles_keep_the_first() -> None:
    text = (
        HEADER
        + "Mixture-of-Experts: A Survey\n\n"
        + A1
        + "\n\nOther\n\n"
        + A2
        + "\n\nmixture of experts a survey\n\nA different abstract.\n\nLast\n\n"
        + A1
    )
    listing = parse(text)
    assert pairs(listing) == [("Mixture-of-Experts: A Survey", A1), ("Other", A2), ("Last", A1)]
    assert [p.position for p in listing.papers] == [0, 1, 2]
    assert listing.warnings == [  # a different abstract under the same key: named, not silent
        "d.txt:19: 'mixture of experts a survey' has the key of 'Mixture-of-Experts: A Survey' "
        "(line 11) but another abstract; kept the first"
    ]


def test_a_many_papers_file() -> None:
    """Not a benchmark: a large listing parses completely and keeps its order."""
    body = "".join(f"Paper number {i}\n\nAbstract number {i}. {A1}\n\n" for i in range(20_000))
    listing = parse(HEADER + body)
    assert len(listing.papers) == 20_000
    assert listing.papers[-1].title == "Paper number 19999"
    assert listing.papers[-1].position == 19_999


# --- files with nothing usable ---------------------------------------------------------------


def test_empty_file() -> None:
    err = dump_error(b"")
    assert err.problem == "empty file"
    assert err.path == "d.txt"


@pytest.mark.parametrize("data", [b"\n\n  \r\n\t\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_blank_file(data: bytes) -> None:
    assert dump_error(data).problem == "empty file (only blank lines)"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x00" * 64, "looks binary (100% control bytes)"),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
            "looks binary (40% control bytes)",
        ),
        (b"ab\x00\x00" * 10, "looks binary (50% control bytes)"),
        (bytes(range(128, 256)) * 4, "looks binary (100% bytes not UTF-8)"),
        (b"\xff\xfeM\x00a\x00r\x00", "looks like UTF-16 text"),
    ],
)
def test_binary_file(data: bytes, problem: str) -> None:
    err = dump_error(data)
    assert err.problem == problem
    assert err.line is None


def test_header_without_papers() -> None:
    err = dump_error(HEADER)
    assert err.problem == "no papers found after the header"
    assert err.line == 9
    assert str(err).startswith("d.txt:9: no papers found after the header")


def test_only_untitled_paragraphs() -> None:
    err = dump_error(HEADER + "x" * 400 + "\n")
    assert err.problem == "no papers found after the header"
    assert err.line == 11


# --- the listing date ------------------------------------------------------------------------


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "mtime", "expected"),
    [
        ("Dec 31", at(2027, 1, 2), date(2026, 12, 31)),
        ("Mar 14", at(2026, 3, 14), date(2026, 3, 14)),
        ("Mar 14", at(2026, 3, 13), date(2025, 3, 14)),
        ("Feb 29", at(2027, 3, 1), date(2024, 2, 29)),
        ("Feb 29", at(2028, 2, 28), date(2024, 2, 29)),
        ("Feb 29", at(2028, 2, 29), date(2028, 2, 29)),
        ("Feb 29", at(2101, 3, 1), date(2096, 2, 29)),  # 2100 is not a leap year
        ("Feb 29", at(2104, 2, 28), date(2096, 2, 29)),  # eight years back
        ("March 14", MTIME, date(2026, 3, 14)),
        ("14 Mar", MTIME, date(2026, 3, 14)),
        ("14 March", MTIME, date(2026, 3, 14)),
        ("mar 14", MTIME, date(2026, 3, 14)),
        ("Mar. 14", MTIME, date(2026, 3, 14)),
        ("Mar 14th", MTIME, date(2026, 3, 14)),
        ("Sept 3", MTIME, date(2025, 9, 3)),
        ("Mar 14, 2023", MTIME, date(2023, 3, 14)),
    ],
)
def test_listing_date(line: str, mtime: datetime, expected: date) -> None:
    listing = parse(f"new\n\n{line}\n\nTitle\n\n{A1}", mtime=mtime)
    assert listing.listing_date == expected
    assert listing.warnings == []


def test_listing_date_uses_the_mtime_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    mtime = datetime(2027, 1, 1, 0, 30, tzinfo=plus_two)  # still Dec 31 in UTC
    assert parse(f"Jan 1\n\nTitle\n\n{A1}", mtime=mtime).listing_date == date(2027, 1, 1)


def test_naive_mtime_is_accepted() -> None:
    listing = parse(f"Dec 31\n\nTitle\n\n{A1}", mtime=datetime(2027, 1, 2))
    assert listing.listing_date == date(2026, 12, 31)


def test_impossible_listing_date() -> None:
    listing = parse(f"new\n\nFeb 30\n\nTitle\n\n{A1}")
    assert listing.listing_date is None
    assert pairs(listing) == [("Title", A1)]
    assert listing.warnings == ["d.txt:3: listing date is not a real day of the year"]


# --- paper keys ------------------------------------------------------------------------------


def test_paper_key_examples() -> None:
    key = "mixture of experts a survey"
    assert paper_key("Mixture-of-Experts: A Survey") == key
    assert paper_key("mixture of experts a survey") == key
    assert paper_key("MIXTURE‐OF‐EXPERTS — a  survey") == key
    assert paper_key("  «Mixture of Experts»\t(a survey)!  ") == key


def test_paper_key_unicode() -> None:
    assert paper_key("Ｍｏｅ ﬁne-tuning") == "moe fine tuning"  # NFKC: full width, ligature
    assert paper_key("Stra\u00dfe") == paper_key("STRASSE")  # casefold
    assert paper_key("Mix\u00adture") == "mixture"  # a soft hyphen is not a separator
    assert paper_key("Caf\u00e9") == paper_key("Cafe\u0301")


def test_paper_key_keeps_symbols_and_empties_only_on_punctuation() -> None:
    assert paper_key("C++ for LLMs") != paper_key("C for LLMs")
    assert paper_key("?!… — ()") == ""
    assert paper_key("42") == "42"


def test_paper_key_keeps_what_changes_meaning() -> None:
    c, sharp = "C Compilers for Deep Learning", "C# Compilers for Deep Learning"
    assert paper_key(c) != paper_key(sharp)
    assert paper_key(sharp) == "c# compilers for deep learning"
    assert paper_key("C♯ Compilers for Deep Learning") == paper_key(sharp)  # music sharp
    assert paper_key("Ｃ＃ Compilers for Deep Learning") == paper_key(sharp)  # full width
    assert paper_key("GPT-4 in 2 Steps") != paper_key("GPT-5 in 2 Steps")


@pytest.mark.parametrize(
    "invisible", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u034f", "\ufe0f"]
)
def test_paper_key_drops_invisible_characters(invisible: str) -> None:
    title = "Mixture of Experts: A Survey"
    assert paper_key(f"Mix{invisible}ture of Experts: A Survey") == paper_key(title)
    assert paper_key(f"Mixture{invisible} of Experts{invisible}: A Survey") == paper_key(title)


def test_one_paper_with_a_zero_width_space_is_one_paper() -> None:
    text = HEADER + "Mixture of Experts\n\n" + A1 + "\n\nMixture\u200b of Experts\n\n" + A1
    listing = parse(text)
    assert pairs(listing) == [("Mixture of Experts", A1)]
    assert listing.warnings == [
        # the zero-width space is shown escaped (repr)
        "d.txt:15: duplicate of the paper on line 11 skipped: 'Mixture\\u200b of Experts'"
    ]


def test_c_and_c_sharp_are_two_papers() -> None:
    text = (
        HEADER
        + "C Compilers for Deep Learning\n\n"
        + A1
        + "\n\nC# Compilers for Deep Learning\n\n"
        + A2
    )
    listing = parse(text)
    assert [p.title for p in listing.papers] == [
        "C Compilers for Deep Learning",
        "C# Compilers for Deep Learning",
    ]
    assert listing.warnings == []


# --- links -----------------------------------------------------------------------------------


def urls(text: str) -> list[str]:
    return [link.url for link in extract_links(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "at https://adamdad.github.io/vico/{https://adamdad.github.io/vico/}.",
            ["https://adamdad.github.io/vico/"],
        ),
        ("see https://github.com/a/b.", ["https://github.com/a/b"]),
        (
            "https://a.org/x, https://b.org/y; https://c.org/z: ok",
            ["https://a.org/x", "https://b.org/y", "https://c.org/z"],
        ),
        ("(code: https://github.com/stypoumic/BECLR).", ["https://github.com/stypoumic/BECLR"]),
        (
            "https://en.wikipedia.org/wiki/Mixture_(probability)",
            ["https://en.wikipedia.org/wiki/Mixture_(probability)"],
        ),
        (
            "(https://en.wikipedia.org/wiki/Mixture_(probability)).",
            ["https://en.wikipedia.org/wiki/Mixture_(probability)"],
        ),
        (r"code at \url{https://github.com/a/b}.", ["https://github.com/a/b"]),
        (r"\href{https://x.org/p}{here}", ["https://x.org/p"]),
        (
            "code~https://github.com/a/b and <https://x.org/p>.",
            ["https://github.com/a/b", "https://x.org/p"],
        ),
        ("{https://x.org/a}} and https://x.org/b}.", ["https://x.org/a", "https://x.org/b"]),
        ("https://x.org/a/ then https://x.org/a and HTTPS://X.ORG/a/", ["https://x.org/a/"]),
        ("http://x.org/q?a=1&b=2#frag.", ["http://x.org/q?a=1&b=2#frag"]),
        ("https://x.org/~user/page", ["https://x.org/~user/page"]),
        ("代码：https://github.com/a/b。", ["https://github.com/a/b"]),
        ("https:// nothing, https://. and ftp://x.org/a", []),
    ],
)
def test_extract_links(text: str, expected: list[str]) -> None:
    assert urls(text) == expected


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://github.com/a/b", "code"),
        ("https://gist.github.com/a/1", "code"),
        ("https://www.github.com/a/b", "code"),
        ("https://gitlab.com/a/b", "code"),
        ("https://bitbucket.org/a/b", "code"),
        ("https://codeberg.org/a/b", "code"),
        ("https://huggingface.co/datasets/a/b", "code"),
        ("https://sourceforge.net/projects/a", "code"),
        ("https://gitee.com/a/b", "code"),
        ("https://adamdad.github.io/vico/", "project"),
        ("https://github.com.example.org/a", "project"),
        ("https://notgithub.com/a", "project"),
        ("https://molmo.allenai.org", "project"),
    ],
)
def test_link_kind(url: str, kind: str) -> None:
    assert extract_links(f"see {url} now") == (Link(url, kind),)  # type: ignore[arg-type]


def test_link_label() -> None:
    assert Link("https://github.com/a", "code").label == "code"
    assert Link("https://a.github.io", "project").label == "project page"


# --- properties ------------------------------------------------------------------------------

PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Cf", "Co", "Zl", "Zp"))
KNOWN_HEADER = [
    "new",
    "Get trending papers in your email inbox!",
    "Subscribe",
    "Daily Papers",
    "byAK and the research community",
]


def check_listing(listing: Listing, name: str) -> None:
    assert [p.position for p in listing.papers] == list(range(len(listing.papers)))
    assert all(p.title and p.line >= 1 for p in listing.papers)
    assert all(w.startswith(f"{name}:") and WARNING_RE.match(w) for w in listing.warnings)


@FAST
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_raise_only_dump_error(data: bytes) -> None:
    try:
        listing = parse_bytes(data, name="f", mtime=MTIME)
    except DumpError as err:
        assert err.path == "f"
        return
    check_listing(listing, "f")


@FAST
@given(st.text(st.sampled_from("ab .:\n\r\t\x00") | st.characters(), max_size=2000))
def test_arbitrary_text_raises_only_dump_error(text: str) -> None:
    try:
        listing = parse_bytes(text.encode("utf-8", "surrogatepass"), name="f", mtime=MTIME)
    except DumpError:
        return
    check_listing(listing, "f")


def plain(text: str) -> str:
    return " ".join(text.split())


def not_header_like(text: str) -> bool:
    return dump_header.date_parts(text) is None and paper_key(text) not in dump_header.HEADER_KEYS


titles = (
    st.text(PRINTABLE, min_size=1, max_size=80)
    .map(plain)
    .filter(lambda t: t and not t.endswith(".") and not_header_like(t))
)
abstract_lines = st.text(PRINTABLE, min_size=1, max_size=60).filter(
    lambda s: s.strip() and not_header_like(s)
)
LEAD = A1[:-1]  # every abstract long enough to be one (parse.MIN_ABSTRACT_CHARS)
abstracts = st.lists(abstract_lines, min_size=1, max_size=4).map(
    lambda ls: "\n".join([LEAD, *ls]) + "."
)
blank_runs = st.lists(st.sampled_from(["", " ", "\t", " \t "]), min_size=1, max_size=3)


@st.composite
def listings(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str, int]], bool]:
    """A well-formed dump and the (title, abstract, title line) triples it must parse to."""
    header = draw(st.lists(st.sampled_from(KNOWN_HEADER), unique=True))
    with_date = True  # a file without a listing date is not a listing (see test_missing_*)
    papers = draw(
        st.lists(
            st.tuples(titles, abstracts),
            min_size=1,
            max_size=8,
            unique_by=lambda paper: paper_key(paper[0]) or paper[0],
        )
    )
    blocks = [*header, *(["Jun 5"] if with_date else [])]
    blocks += [text for paper in papers for text in paper]
    lines: list[str] = []
    title_lines: list[int] = []
    for index, block in enumerate(blocks):
        if index >= len(blocks) - 2 * len(papers) and (len(blocks) - index) % 2 == 0:
            title_lines.append(len(lines) + 1)
        trailing = draw(st.sampled_from(["", " ", "\t", "  "]))
        lines.extend(line + trailing for line in block.split("\n"))
        lines.extend(draw(blank_runs))
    expected = [(t, plain(a), n) for (t, a), n in zip(papers, title_lines, strict=True)]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return (bom + newline.join(lines)).encode("utf-8"), expected, with_date


@FAST
@given(listings())
def test_well_formed_listing_round_trips(
    case: tuple[bytes, list[tuple[str, str, int]], bool],
) -> None:
    data, expected, with_date = case
    listing = parse_bytes(data, name="g", mtime=MTIME)
    assert [(p.title, p.abstract, p.line) for p in listing.papers] == expected
    assert listing.listing_date == (date(2025, 6, 5) if with_date else None)
    punctuation = [w for w in listing.warnings if "title has no letters or digits" in w]
    assert len(punctuation) == sum(1 for title, _, _ in expected if not paper_key(title))
    assert [w for w in listing.warnings if w not in punctuation] == (
        [] if with_date else [f"g:{expected[0][2]}: no listing date found before the first paper"]
    )


words = st.lists(
    st.text(st.sampled_from("abcxyzABCXYZ0189éßüΣσλ漢字"), min_size=1, max_size=8),
    min_size=1,
    max_size=6,
)
separators = st.text(
    st.sampled_from(" \t\n-–—‐:;,.!?()[]{}«»\"'/\u00a0\u3000"), min_size=1, max_size=3
)


@FAST
@given(st.text())
def test_paper_key_is_idempotent(title: str) -> None:
    key = paper_key(title)
    assert paper_key(key) == key
    assert key == key.strip()
    assert "  " not in key


@FAST
@given(words, st.data())
def test_paper_key_ignores_case_whitespace_and_punctuation(
    parts: list[str], data: st.DataObject
) -> None:
    canonical = paper_key(" ".join(parts))
    mangled = data.draw(st.sampled_from(["", " ", "(", "— "]))
    for part in parts:
        mangled += data.draw(st.sampled_from([part, part.upper(), part.lower(), part.swapcase()]))
        mangled += data.draw(separators)
    assert paper_key(mangled) == canonical
    assert canonical == " ".join(part.casefold() for part in parts)


BAD_ENDINGS = (".", ",", ";", ":", "}")
url_like = st.builds(
    lambda scheme, body, tail: f"{scheme}{body}{tail}",
    st.sampled_from(["https://", "http://", "HTTPS://"]),
    st.text(st.sampled_from("ab/.-_~()#?=&%{}:;,") | PRINTABLE, max_size=40),
    st.text(st.sampled_from(".,;:)}]>'\" "), max_size=4),
)


@FAST
@given(st.lists(url_like | st.text(max_size=30), max_size=6).map(" ".join))
def test_extract_links_are_clean(text: str) -> None:
    links = extract_links(text)
    seen = set()
    for link in links:
        url = link.url
        assert re.match(r"https?://\w", url, re.IGNORECASE)
        assert not url.endswith(BAD_ENDINGS)
        assert not url.endswith(")") or url.count("(") >= url.count(")")
        assert not set(url) & set(" \t\n{}<>")
        assert link.kind in ("code", "project")
        assert url.lower().rstrip("/") not in seen
        seen.add(url.lower().rstrip("/"))


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            "Visit our website at~https://adamdad.github.io/vico/{https://adamdad.github.io/vico/}.",
            "Visit our website at https://adamdad.github.io/vico/.",
        ),
        ("by fine-tuning {\\it only} a projection", "by fine-tuning only a projection"),
        ("see \\url{https://x.org/a} and 50\\% faster", "see https://x.org/a and 50% faster"),
        ("plain text ~ stays", "plain text ~ stays"),
    ],
)
def test_tidy_text_for_reading(raw: str, shown: str) -> None:
    from digest.ingest.links import tidy_text

    assert tidy_text(raw) == shown
