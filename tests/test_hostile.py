"""Issue 11: input from outside (dumps, file names, subscriber names and addresses, CSV
files, SMTP servers) tried as an attacker or an unlucky operator would. Each test names
the item of the issue it covers."""

from __future__ import annotations

import io
import mailbox
import os
import re
import time
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

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


# --- item 2: names never reach a header unencoded ----------------------------------------------

INJECTED = "Evil\r\nBcc: injected@evil.example"


@pytest.mark.parametrize("name", [INJECTED, "Evil\nBcc: x@evil.example", "Evil\x00One", "A\x1bB"])
def test_item2_cli_refuses_a_name_with_line_breaks_or_control_characters(
    tmp_path: Path, name: str
) -> None:
    config = project(tmp_path)
    code, output = cli("-c", str(config), "subscribers", "add", "evil@example.net", "--name", name)
    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "name" in lines[0] and "control" in lines[0], output
    code, output = cli("-c", str(config), "subscribers", "list")
    assert "evil@example.net" not in output


def test_item2_csv_row_with_an_injected_name_is_rejected(tmp_path: Path) -> None:
    settings = hostile_settings(tmp_path)
    book = make_app(settings).subscribers()
    text = 'email,name\nok@example.org,Ok\nevil@example.net,"Evil\r\nBcc: x@evil.example"\n'
    report = book.import_csv(io.StringIO(text, newline=""))
    assert report.added == 1
    assert len(report.errors) == 1
    line, problem = report.errors[0]
    assert line == 4 and "name" in problem
    assert [s.address for s in book.list()] == ["ok@example.org"]


def test_item2_a_stored_name_cannot_inject_a_header_over_smtp(tmp_path: Path, smtp_server) -> None:
    controller, recorder = smtp_server
    settings = hostile_settings(
        tmp_path, transport="smtp", smtp_host="127.0.0.1", smtp_port=controller.port
    )
    write_dump(settings.dumps_dir / "d.txt", dump_text([("A Paper", ABSTRACT)]))
    app = make_app(settings)
    book = app.subscribers()
    book.add("evil@example.net", name="Evil")
    book.add("zoe@example.org", name="Zoë Ångström, PhD")
    with app.session() as s:  # a row written before names were checked
        s.execute(
            update(Subscriber).where(Subscriber.address == "evil@example.net").values(name=INJECTED)
        )
        s.commit()
    assert app.send().delivery.sent == 2
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
