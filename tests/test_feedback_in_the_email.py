""" "More / less like this" in the next issue's e-mail: the papers a reader's marks say
they want open their letter (``like: <title>``) after their watched ones, a paper marked
"less" (or near one) never does, their sections follow their profile's order, and a
reader with no marks gets exactly the letter of their sections."""

from __future__ import annotations

import email
import re
import shutil
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import select

from digest.app import App, make_app, publishing, readers, subscribing
from digest.ingest.keys import paper_key
from digest.state.models import Subscriber
from digest.urls import feedback_key
from tests.support.dumps import write_dump
from tests.support.readers import FILLER, PAPERS, mails, parts
from tests.support.settings import make_settings
from tests.test_for_you import TOKEN, template_of

SECOND = [
    ("Diffusion Models for Protein Design", "Diffusion models design protein structures."),
    ("Routing Tokens to Experts Revisited", "A router sends tokens to mixture of experts."),
    ("Protein Structures from Sparse Data", "Protein structures predicted from few samples."),
    ("Speech Recognition on Small Devices", "We recognise speech with tiny audio models."),
]
SECOND = [(t, a + FILLER) for t, a in SECOND]
LIKED, DISLIKED = PAPERS[3][0], PAPERS[0][0]  # protein diffusion; mixture-of-experts routing


def issue(app: App, tmp_path: Path) -> dict[str, EmailMessage]:
    outbox = app.settings.outbox_dir
    shutil.rmtree(outbox, ignore_errors=True)
    report = publishing.send(app)
    assert report.delivery is not None, report.reason
    return {m["To"].addresses[0].addr_spec: m for m in mails(app.settings)}


def test_the_next_issue_follows_more_and_never_shows_less(
    tmp_path: Path, database_url: str
) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    write_dump(dumps / "a.txt", PAPERS)
    s = make_settings(tmp_path, dumps)
    s = replace(
        s,
        digest=replace(s.digest, database_url=database_url),
        email=replace(s.email, recipients=[], for_you_max=2),
    )
    app = make_app(s)
    for address in ("ada@example.org", "grace@example.org"):
        subscribing.book(app).add(address)
    issue(app, tmp_path)
    with app.session() as session:
        token = session.scalar(select(Subscriber.token).where(Subscriber.key == "ada@example.org"))
    desk = readers.desk(app)
    assert desk.mark(token, paper_key(LIKED), 1) == "done"
    assert desk.mark(token, paper_key(DISLIKED), -1) == "done"
    write_dump(dumps / "b.txt", SECOND, date="Mar 15")
    got = issue(app, tmp_path)

    html, text = parts(got["ada@example.org"])
    start = html.index(">For you</h2>")
    block = html[start : html.index("In this issue")]
    assert "Diffusion Models for Protein Design" in block
    assert f"like: {LIKED}" in block
    assert "Routing Tokens to Experts" not in block  # near the paper marked "less"
    assert html.count("Diffusion Models for Protein Design") == 1  # not repeated below
    assert text.index("FOR YOU") < text.index("IN THIS ISSUE")
    assert f"(like: {LIKED})" in text
    # Grace marked nothing: no block, and her letter is her sections' letter
    other, _ = parts(got["grace@example.org"])
    assert "For you" not in other and "like:" not in other
    assert got["ada@example.org"]["Subject"] == got["grace@example.org"]["Subject"]


def test_a_readers_sections_follow_their_order_and_no_order_changes_nothing(
    tmp_path: Path,
) -> None:
    template = template_of(tmp_path)
    first, second = PAPERS[0][0], PAPERS[1][0]  # the two papers of "Mixture of experts"
    plain = template.render_for("ada@example.org", "<a@x>", TOKEN, "Ada")
    assert plain == template.render("ada@example.org", "<a@x>", TOKEN, "Ada")
    order = list(reversed(template.anchors))
    mine = template.render_for("ada@example.org", "<a@x>", TOKEN, "Ada", order=order)
    parsed = email.message_from_bytes(mine, policy=policy.default)
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert html.index(second) < html.index(first)
    assert text.index(second) < text.index(first)
    assert html.count(first) == html.count(second) == 1
    assert mine.partition(b"\r\n\r\n")[0] == plain.partition(b"\r\n\r\n")[0]


def test_each_paper_has_the_readers_own_more_and_less_links(
    tmp_path: Path, database_url: str
) -> None:
    from tests.support.readers import publish

    got = publish(
        tmp_path, database_url, {"ada@example.org": {"watch": "diffusion"}, "bob@example.org": {}}
    )
    s = make_settings(tmp_path, tmp_path / "dumps")
    app = make_app(replace(s, digest=replace(s.digest, database_url=database_url)))
    with app.session() as session:
        owned = dict(session.execute(select(Subscriber.key, Subscriber.token)).all())
    for address, message in got.items():
        html, _ = parts(message)
        links = re.findall(r'href="([^"]*/feedback/[^"]*)"', html)
        assert len(links) == 2 * len(PAPERS)  # every paper, For you too: more and less
        for link in links:
            token, segment, mark = link.split("/feedback/")[1].split("/")
            assert token == owned[address] and mark in ("more", "less")
            target = readers.desk(app).target(token, feedback_key(unquote(segment)))
            assert target is not None and target.title in html


def test_the_links_leave_room_for_papers(tmp_path: Path, dumps_dir: Path) -> None:
    """The sample issue (176 papers) fitted under email.max_html_bytes with the links:
    52 papers without them; a sample that fits must not be cut to one a section."""
    s = make_settings(tmp_path, dumps_dir)
    app = make_app(replace(s, email=replace(s.email, recipients=[])))
    subscribing.book(app).add("ada@example.org")
    assert publishing.send(app).delivery is not None
    [message] = mails(app.settings)
    html, _ = parts(message)
    shown = html.count('class="paper-link"')
    assert html.count("/feedback/") == 2 * shown
    assert shown >= 30, shown
