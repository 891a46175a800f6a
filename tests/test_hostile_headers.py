"""Hostile text never changes a message's headers: a stored subscriber name written to
inject a Bcc, and (a property) any dump text or subscriber name, leave each message with
exactly the template's headers, To holding the subscriber alone, the HTML with the
template's markup and each token only in its own unsubscribe slots."""

from __future__ import annotations

import os
import re
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from digest.app import make_app, publishing, subscribing
from digest.mail.message import PLACEHOLDER, header_text
from digest.state.models import Subscriber
from tests.support.hostile import (
    ABSTRACT,
    INJECTED,
    OTHER,
    bodies,
    dump_text,
    hostile_settings,
    parsed,
    write_dump,
)


def test_a_stored_name_cannot_inject_a_header_over_smtp(tmp_path: Path, smtp_server) -> None:
    controller, recorder = smtp_server
    settings = hostile_settings(
        tmp_path, transport="smtp", smtp_host="127.0.0.1", smtp_port=controller.port
    )
    write_dump(settings.dumps_dir / "d.txt", dump_text([("A Paper", ABSTRACT)]))
    app = make_app(settings)
    book = subscribing.book(app)
    book.add("evil@example.net", name="Evil")
    book.add("zoe@example.org", name="Zoë Ångström, PhD")
    with app.session() as s:  # a row written before names were checked
        s.execute(
            update(Subscriber).where(Subscriber.address == "evil@example.net").values(name=INJECTED)
        )
        s.commit()
    assert publishing.send(app).delivery.sent == 2
    got = {tuple(rcpts): msg for rcpts, msg in recorder.messages}
    assert set(got) == {("evil@example.net",), ("zoe@example.org",)}
    for (rcpt,), msg in got.items():
        assert msg["Bcc"] is None and msg["Cc"] is None
        assert [a for _, a in getaddresses([str(msg["To"])])] == [rcpt]
        assert set(msg.keys()) == {
            "To", "Message-ID", "List-Unsubscribe", "Subject", "From", "Date", "List-Id",
            "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
        }  # fmt: skip
    assert msg_name(got[("zoe@example.org",)]) == "Zoë Ångström, PhD"
    assert msg_name(got[("evil@example.net",)]) == "Evil Bcc: injected@evil.example"


def msg_name(msg: EmailMessage) -> str:
    return str(msg["To"].addresses[0].display_name)


def _parsed_papers(title: str, abstract: str) -> list[tuple[str, str, tuple[object, ...]]]:
    """(title, abstract, links) of the papers the parser finds in this dump text."""
    from datetime import UTC, datetime

    from digest.ingest.links import tidy_text
    from digest.ingest.parse import parse_bytes

    listing = parse_bytes(
        dump_text([(title, abstract), ("Padding paper", OTHER)]).encode("utf-8", "surrogatepass"),
        name="p.txt",
        mtime=datetime(2026, 5, 1, tzinfo=UTC),
    )
    return [(p.title, tidy_text(p.abstract), p.links) for p in listing.papers]


def _letter_and_messages(
    papers: list[tuple[str, str, tuple[object, ...]]], people: list[tuple[str, str]]
) -> tuple[object, dict[str, tuple[bytes, str]], str]:
    """The e-mail of a digest of these papers, built for each (address, name) as
    delivery builds it: (letter, {address: (message bytes, token)}, base url)."""
    from datetime import UTC, datetime

    from digest.mail.message import Envelope, MessageTemplate
    from digest.mail.variants import Personaliser
    from digest.render.viewmodel import DigestView, PaperView, SectionView, subject_line

    base = "https://digest.example.org"
    views = []
    for n, (title, text, links) in enumerate(papers, start=1):
        url = f"{base}/archive/1.html#p-{n}"
        views.append(PaperView(f"k{n}", f"p-{n}", title, text, text, False, links, url))  # type: ignore[arg-type]
    # a section named after the first title, as discovered themes are
    sections = (SectionView(papers[0][0], "s", "s-s", tuple(views)),)
    view = DigestView(
        "Papers digest", 1, subject_line("Papers digest", 1, len(views), sections),
        datetime(2026, 5, 1, 8, tzinfo=UTC), sections, len(views), base,
        f"{base}/archive/1.html", f"{base}/feed.xml", f"{base}/",
    )  # fmt: skip
    personaliser = Personaliser(
        _RENDERER, f"{base}/unsubscribe/{PLACEHOLDER}", 10_000_000, lambda v: v.subject
    )
    letter = personaliser.letter(view)
    envelope = Envelope("Papers digest <digest@example.org>", "L <l.example.org>",
                        f"{base}/unsubscribe/{PLACEHOLDER}", "digest@example.org")  # fmt: skip
    template = MessageTemplate(letter, envelope, view.published_at)
    out = {}
    for i, (address, name) in enumerate(people):
        token = f"tok{i}x" + "A" * 40
        out[address] = (template.render(address, f"<m{i}@example.org>", token, name), token)
    return letter, out, base


def _structure(html: str) -> list[tuple[str, tuple[str, ...]]]:
    from lxml import html as lxml_html

    root = lxml_html.document_fromstring(html)
    return [(str(el.tag), tuple(sorted(el.attrib))) for el in root.iter()]


try:
    from digest.render.renderer import Renderer as _Renderer

    _RENDERER = _Renderer()
except Exception:  # pragma: no cover - the import errors show in every test anyway
    raise

HOSTILE_BITS = [
    PLACEHOLDER,
    "<script>alert(1)</script>",
    "</a><img src=x onerror=alert(1)>",
    '"><b>bold</b>',
    "\r\nBcc: injected@evil.example\r\n",
    "\nTo: other@evil.example",
    "=?utf-8?q?Bcc=3A_x=40evil=2Eexample?=",
    "{{ 7 * 7 }}{% raw %}",
    "\u202eevil\u2066",
    "\u2028\u2029\x85\x0b\x0c\x00\x1b[2J",
    "&amp;&lt;&#x3c;",
    "https://evil.example/?t=",
]
_hostile_text = st.lists(
    st.sampled_from(HOSTILE_BITS) | st.text(max_size=20), min_size=1, max_size=6
).map("".join)
_names = st.lists(st.sampled_from(HOSTILE_BITS) | st.text(max_size=15), max_size=4).map("".join)
_local = st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,15}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)


@settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "25")),  # more: HOSTILE_EXAMPLES=500
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    title=_hostile_text,
    abstract=_hostile_text,
    people=st.lists(st.tuples(_local, _names), min_size=2, max_size=3, unique_by=lambda p: p[0]),
)
def test_property_no_input_changes_a_header_adds_markup_or_reaches_a_token(
    title: str, abstract: str, people: list[tuple[str, str]]
) -> None:
    from digest.errors import DumpError

    people = [(f"{local}@example.org", name) for local, name in people]
    try:
        papers = _parsed_papers(title, abstract + " " + ABSTRACT)  # long enough
    except DumpError:
        assume(False)  # the title was not a title (blank, or a header line)
        return
    letter, messages, base = _letter_and_messages(papers, people)
    # the same digest with plain text in place of the dump's (same papers, same links)
    plain = [
        (f"Title {i}", "Abstract text. " * 9 if text else "", links)
        for i, (_, text, links) in enumerate(papers)
    ]
    _, baseline, _ = _letter_and_messages(plain, people)
    tokens = {address: token for address, (_, token) in messages.items()}
    for address, (raw, token) in messages.items():
        msg = parsed(raw)
        # headers: exactly the template's, To is the subscriber's address alone
        assert list(msg.keys()) == list(parsed(baseline[address][0]).keys())
        assert [a.addr_spec for a in msg["To"].addresses] == [address]
        subject = header_text(letter.subject)  # type: ignore[attr-defined]
        # the same text; spaces between encoded words may be folded away (RFC 2047 6.2)
        assert "".join(str(msg["Subject"]).split()) == "".join(subject.split())
        # markup: the HTML has the elements and attributes of the template, no others
        html, text = bodies(msg)
        assert _structure(html) == _structure(bodies(parsed(baseline[address][0]))[0])
        # tokens: only this subscriber's, only in the template's unsubscribe slots
        for body in (html, text):
            for other in set(tokens.values()) - {token}:
                assert other not in body
            starts = [m.start() for m in re.finditer(re.escape(token), body)]
            slots = (f"{base}/unsubscribe/", f"{base}/preferences/", f"{base}/feedback/")
            assert starts and all(body[:i].endswith(slots) for i in starts)
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert head.count(token.encode()) == 2  # List-Unsubscribe: the mailto and the link
