"""Hostile input: dump texts and projects made to be attacked, and the ways a test reads
what came out (the outbox, a message's bodies, a command's output)."""

from __future__ import annotations

import mailbox
import os
import time
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from digest.app import App
from digest.config import Settings, load_settings
from digest.program import main
from digest.state.models import Subscriber
from tests.support.settings import make_settings

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


INJECTED = "Evil\r\nBcc: injected@evil.example"


def settings_of(config: Path) -> Settings:
    return load_settings(str(config))
