"""Readers who watch and mute: a small issue whose papers the phrases are about, published
to some readers through the Maildir outbox, and their messages read back."""

from __future__ import annotations

import mailbox
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from digest.app import make_app, publishing, subscribing
from digest.config import Settings
from tests.support.dumps import write_dump
from tests.support.settings import make_settings

FILLER = " The method is simple, the code is public, and the results hold across many settings."
PAPERS = [
    ("Sparse Mixture of Experts Routing at Scale", "We route tokens to experts with a router."),
    ("Experts Benchmark: Evaluating MoE Routers", "A benchmark of mixture of experts routers."),
    ("Music Generation with Audio Tokens", "We generate music from audio tokens."),
    ("Protein-Folding with Diffusion Models", "Diffusion models predict protein structures."),
    ("A Diffusion Benchmark for Images", "We benchmark image diffusion samplers."),
    ("Graph Networks for Chemistry", "Message passing for molecules, no generative model."),
]
PAPERS = [(t, a + FILLER) for t, a in PAPERS]


def publish(
    tmp_path: Path,
    database_url: str,
    people: dict[str, dict[str, str]],
    *,
    more: dict[str, dict[str, str]] | None = None,
    **email: object,
) -> dict[str, EmailMessage]:
    """PAPERS published to ``people`` (each receives a letter) and ``more`` (who receive
    none); their messages by address."""
    dumps = tmp_path / "dumps"
    dumps.mkdir(exist_ok=True)
    write_dump(dumps / "a.txt", PAPERS)
    s = make_settings(tmp_path, dumps)
    s = replace(
        s,
        digest=replace(s.digest, database_url=database_url),
        email=replace(s.email, recipients=[], **email),
    )  # type: ignore[arg-type]
    app = make_app(s)
    book = subscribing.book(app)
    for address, kw in {**people, **(more or {})}.items():
        book.add(address, **kw)
    report = publishing.send(app)
    assert report.delivery is not None, report.reason
    assert report.delivery.sent == len(people), report.delivery
    return {m["To"].addresses[0].addr_spec: m for m in mails(s)}


def mails(settings: Settings) -> list[EmailMessage]:
    box = mailbox.Maildir(settings.outbox_dir, create=False)
    return [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]  # type: ignore[misc]


def parts(m: EmailMessage) -> tuple[str, str]:
    html = m.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return html, " ".join(text.split())


def shows(m: EmailMessage, title: str) -> bool:
    html, text = parts(m)
    found = [title in html, title in text]
    assert found[0] == found[1], (title, found)  # both parts agree
    return found[0]
