"""Issue 11: input from outside (dumps, file names, subscriber names and addresses, CSV
files, SMTP servers) tried as an attacker or an unlucky operator would. Each test names
the item of the issue it covers."""

from __future__ import annotations

import mailbox
import os
import re
import time
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from digest.app import App, make_app
from digest.cli.main import main
from digest.config import Settings
from digest.mail.message import PLACEHOLDER
from digest.state.models import Subscriber

from .conftest import make_settings

HEADER = "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nMar 14\n\n"
ABSTRACT = (
    "We study a careful question about learning systems and report what we found across "
    "several public benchmarks, with the code and the data released for others to check."
)
OTHER = (
    "Large models forget what they learned before when they are tuned again; we measure "
    "how much they forget and propose a cheap way to keep most of it across many tasks."
)
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def dump_text(papers: list[tuple[str, str]], header: str = HEADER) -> str:
    return header + "\n\n".join(f"{t}\n\n{a}" for t, a in papers) + "\n"


def write_dump(path: Path, text: str | bytes, age: float = 3600.0) -> Path:
    """A dump file last modified ``age`` seconds ago (settled, unless age is small)."""
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def hostile_settings(tmp_path: Path, **email: object) -> Settings:
    dumps = tmp_path / "dumps"
    dumps.mkdir(exist_ok=True)
    s = make_settings(tmp_path, dumps)
    return replace(s, email=replace(s.email, recipients=[], **email))  # type: ignore[arg-type]


def tokens(app: App) -> dict[str, str]:
    with app.session() as s:
        return {a: t for a, t in s.execute(select(Subscriber.address, Subscriber.token))}


def outbox_raw(settings: Settings) -> list[bytes]:
    return [m.as_bytes() for m in mailbox.Maildir(settings.outbox_dir, create=False)]


def parsed(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def bodies(msg: EmailMessage) -> tuple[str, str]:
    html, text = msg.get_body(("html",)), msg.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def project(tmp_path: Path, extra: str = "") -> Path:
    """A digest.toml with a dumps folder and a state folder; returns the config path."""
    (tmp_path / "dumps").mkdir(exist_ok=True)
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "{tmp_path / "dumps"}"\nstate_dir = "{tmp_path / "state"}"\n'
        + extra
    )
    return config


# --- item 1: a dump cannot reach a subscriber's token ------------------------------------------


def test_item1_placeholder_in_a_dump_never_receives_a_token(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    stolen = f"Read it at https://evil.example/steal?t={PLACEHOLDER} today. " + ABSTRACT
    write_dump(
        settings.dumps_dir / "d.txt",
        dump_text([("Stealing Tokens From Readers", stolen), ("An Honest Paper", OTHER)]),
    )
    app = make_app(settings)
    book = app.subscribers()
    book.add("eve@example.org")
    book.add("bob@example.org", name="Bob")
    assert app.send().delivery.sent == 2
    owned = tokens(app)
    base = f"{settings.base_url}/unsubscribe/"
    messages = [parsed(raw) for raw in outbox_raw(settings)]
    assert sorted(parseaddr(str(m["To"]))[1] for m in messages) == sorted(owned)
    for msg in messages:
        token = owned[parseaddr(str(msg["To"]))[1]]
        for body in bodies(msg):
            assert "https://evil.example/steal?t=" in body  # the dump's text is shown...
            assert f"steal?t={token}" not in body  # ...but never with a token in it
            starts = [m.start() for m in re.finditer(re.escape(token), body)]
            assert starts, "the template's own unsubscribe link carries the token"
            assert all(body[:i].endswith(base) for i in starts)
            for other in set(owned.values()) - {token}:
                assert other not in body
