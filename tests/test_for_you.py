""" "For you": a reader's e-mail opens with their watched papers (each saying which
phrase matched), at most email.for_you_max, never repeated below; nobody else's e-mail
changes, no header changes, and the web copy is the same for everyone. Each reader's
letter is put together from pieces rendered once per issue (mail/assembly.py,
mail/personal_letters.py)."""

from __future__ import annotations

import email
import json
from dataclasses import replace
from email import policy
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from digest.app import make_app
from digest.mail import outbox
from digest.mail.delivery import mailing_of
from digest.mail.personal_letters import PersonalTemplate
from digest.state import readers
from digest.state.models import Delivery
from tests.support.readers import PAPERS, parts, publish
from tests.support.settings import make_settings


def for_you_block(html: str) -> str:
    start = html.index(">For you</h2>")
    ends = [html.find(mark, start + 20) for mark in ("toc-cell", "<h2")]
    return html[start : min(e for e in ends if e > 0)]


def test_for_you_opens_the_email_with_notes_capped_and_not_repeated(
    tmp_path: Path, database_url: str
) -> None:
    got = publish(
        tmp_path,
        database_url,
        {
            "ada@example.org": {"watch": "diffusion; router"},
            "grace@example.org": {},
        },
        for_you_max=2,
    )
    html, text = parts(got["ada@example.org"])
    block = for_you_block(html)
    # watched papers in issue order (experts first, then science), two at most; the third
    # watched paper (the image benchmark, last in the issue) stays in its section
    assert html.index(">For you</h2>") < html.index("In this issue")
    assert "Protein-Folding with Diffusion Models" in block and "matched: diffusion" in block
    assert "Sparse Mixture of Experts Routing at Scale" in block and "matched: router" in block
    assert block.index("Sparse Mixture") < block.index("Protein-Folding")
    assert "A Diffusion Benchmark for Images" not in block
    assert html.count("matched:") == 2
    assert html.count("Protein-Folding with Diffusion Models") == 1  # not repeated below
    assert html.count("Sparse Mixture of Experts Routing at Scale") == 1  # not repeated below
    assert html.count("A Diffusion Benchmark for Images") == 1  # in its section
    assert text.index("FOR YOU") < text.index("IN THIS ISSUE")
    assert "(matched: diffusion)" in text and text.count("Protein-Folding with Diffusion") == 1
    # Grace has no watch: no block; her letter is exactly her sections' letter
    assert "For you" not in parts(got["grace@example.org"])[0]
    assert got["ada@example.org"]["Subject"] == got["grace@example.org"]["Subject"]
    # the web copy is one for everyone
    web = (tmp_path / "state" / "public" / "archive" / "1.html").read_text()
    assert "For you" not in web and "matched:" not in web


def test_a_cap_of_zero_leaves_only_what_has_no_other_place(
    tmp_path: Path, database_url: str
) -> None:
    got = publish(
        tmp_path,
        database_url,
        {"alan@example.org": {"themes": "Music and audio", "watch": "diffusion; audio"}},
        for_you_max=0,
    )
    block = for_you_block(parts(got["alan@example.org"])[0])
    # watched outside his topic: shown in For you all the same; "audio" is in his section
    assert "Protein-Folding with Diffusion Models" in block
    assert "A Diffusion Benchmark for Images" in block
    assert "Music Generation" not in block


def template_of(tmp_path: Path) -> PersonalTemplate:
    """The all-sections variant of the small issue, as a worker makes it for a reader
    who watches or mutes."""
    publish(
        tmp_path,
        f"sqlite:///{tmp_path / 'state' / 'digest.db'}",
        {"ada@example.org": {"watch": "diffusion"}, "grace@example.org": {}},
    )
    s = make_settings(tmp_path, tmp_path / "dumps")
    app = make_app(replace(s, email=replace(s.email, recipients=[])))
    with app.session() as ses:
        [variant] = set(ses.scalars(select(Delivery.variant_id))) or {1}
        found = readers.pieces_of(ses, variant)
        letter, when = outbox.letters(ses, {variant})[variant]
    assert found is not None
    key, blob = found
    envelope = mailing_of(app.settings).envelope
    return PersonalTemplate(letter, envelope, when, None, json.loads(blob), key)


TOKEN = "t" * 43
OTHER = "o" * 43
phrase = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


def test_no_watch_mute_or_feedback_changes_a_header_or_another_readers_message(
    tmp_path: Path,
) -> None:
    template = template_of(tmp_path)
    plain = template.render("ada@example.org", "<a@x>", TOKEN, "Ada")
    theirs = {"watch": "protein folding", "mute": "experts"}
    other = template.render_for("grace@example.org", "<g@x>", OTHER, "Grace", **theirs)
    assert other != template.render("grace@example.org", "<g@x>", OTHER, "Grace")
    head = plain.partition(b"\r\n\r\n")[0]

    anchors = list(template.anchors)
    # what feedback feeds in: suggested papers with a note (a liked paper's title: dump
    # text, so anything) and the order of the reader's sections
    suggestion = st.tuples(st.sampled_from(anchors), phrase)

    @given(
        watch=st.lists(phrase, max_size=4),
        mute=st.lists(phrase, max_size=4),
        suggestions=st.lists(suggestion, max_size=6),
        order=st.permutations(anchors),
    )
    def check(
        watch: list[str], mute: list[str], suggestions: list[tuple[str, str]], order: list[str]
    ) -> None:
        w, m = ";".join(watch), ";".join(mute)
        mine = template.render_for(
            "ada@example.org", "<a@x>", TOKEN, "Ada",
            watch=w, mute=m, suggestions=suggestions, order=order,
        )  # fmt: skip
        assert mine.partition(b"\r\n\r\n")[0] == head  # every header as without them
        parsed = email.message_from_bytes(mine, policy=policy.default)
        assert parsed.get_body(("html",)) is not None and parsed.get_body(("plain",)) is not None
        assert TOKEN.encode() in mine and OTHER.encode() not in mine
        # the other reader's message never changes
        again = template.render_for("grace@example.org", "<g@x>", OTHER, "Grace", **theirs)
        assert again == other

    check()
    # and a real watch does change Ada's body (the property is not vacuous)
    watched = template.render_for(
        "ada@example.org", "<a@x>", TOKEN, "Ada", watch="diffusion", mute="benchmark"
    )
    assert watched != plain and b"For you" in watched
    assert watched.partition(b"\r\n\r\n")[0] == head
    assert PAPERS  # the issue is the small one of tests/support/readers.py


def test_the_pieces_are_the_letter_everyone_else_gets(tmp_path: Path) -> None:
    """Cut out of the same render: without their markers, the pieces are byte for byte
    the variant's letter, so a reader who watches sees their sections as everyone does."""
    from digest.mail.pieces import strip

    publish(
        tmp_path,
        f"sqlite:///{tmp_path / 'state' / 'digest.db'}",
        {"ada@example.org": {"mute": "nothing matches this"}, "grace@example.org": {}},
    )
    s = make_settings(tmp_path, tmp_path / "dumps")
    app = make_app(replace(s, email=replace(s.email, recipients=[])))
    with app.session() as ses:
        found = readers.pieces_of(ses, 1)
        letter, _ = outbox.letters(ses, {1})[1]
    assert found is not None
    key, blob = found
    pieces = json.loads(blob)
    marked = pieces["letters"][key]
    assert marked["html"] != letter.html and marked["text"] != letter.text
    assert strip(marked["html"], pieces["nonce"]) == letter.html
    assert strip(marked["text"], pieces["nonce"]) == letter.text


def test_feedback_picks_follow_the_watched_papers_within_the_cap() -> None:
    """The hook for feedback (issue 22, part 2): suggestions come after the watched
    papers, share the cap, and a muted paper is never suggested."""
    from digest.personal.phrases import Phrases
    from digest.personal.view import reader_view

    index = Phrases(PAPERS)
    anchors = tuple(f"p-{i}" for i in range(len(PAPERS)))
    mine = reader_view(
        index,
        anchors,
        anchors[:4],  # their sections show the first four papers
        "protein folding",
        "benchmark",
        3,
        suggestions=[
            ("p-1", "like: A"),
            ("p-2", "like: B"),
            ("p-5", "like: C"),
            ("p-0", "like: D"),
        ],
    )
    # p-1 is muted (benchmark), p-3 watched; then p-2 and p-5 fill the cap
    assert mine.for_you == (
        ("p-3", "matched: protein folding"),
        ("p-2", "like: B"),
        ("p-5", "like: C"),
    )
    assert mine.below == ("p-0",)  # p-1 muted; p-2 and p-3 are For you
    assert mine.changed


def test_a_feedback_note_is_text_in_the_letter(tmp_path: Path) -> None:
    template = template_of(tmp_path)
    hostile = 'like: <img src=x onerror="alert(1)"> & =?utf-8?q?x?='
    message = template.render_for(
        "ada@example.org", "<a@x>", TOKEN, "Ada", suggestions=[("p-6", hostile)]
    )
    parsed = email.message_from_bytes(message, policy=policy.default)
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; =?utf-8?q?x?=" in html
    assert "<img" not in html
    assert f"({hostile})" in text
    assert (
        message.partition(b"\r\n\r\n")[0]
        == template.render("ada@example.org", "<a@x>", TOKEN, "Ada").partition(b"\r\n\r\n")[0]
    )
