"""Golden files for what people read: the e-mail (headers, and the text and HTML parts
decoded), the web copy, the index and the three feeds, made from a small hand-made
dump (tests/golden/input/) with three configured themes and a hostile title, and
compared with the files committed under tests/golden/.

What changes from run to run is masked before the comparison: the Message-ID, the MIME
boundary, the subscriber's token, the per-installation secret and the temporary
folder. Dates are not masked: they come from a fixed clock and the dump's fixed mtime,
and a date that moved between two runs would be a bug (a rebuild must be
byte-identical). feed.json is stored re-indented, each multi-line string split into a
list of its lines, so that a change shows as a line in a diff.

After a deliberate change to a template, the view model or the feeds, run
`make golden` (pytest tests/test_golden.py --update-golden) and commit the diff.
"""

from __future__ import annotations

import difflib
import json
import mailbox
import os
import shutil
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from digest.app import App, make_app, publishing, subscribing
from digest.config import DigestSection, EmailSection, Settings, ThemeConfig
from digest.state.models import Subscriber

GOLDEN = Path(__file__).resolve().parent / "golden"
INPUT = GOLDEN / "input" / "2026-04-02.txt"
NOW = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)  # the publishing clock
SAVED = datetime(2026, 4, 2, 6, 0, tzinfo=UTC)  # the dump's mtime (its listing year)
THEMES = (
    ThemeConfig("Mixture of experts", ("mixture of experts", "moe", "router")),
    ThemeConfig("Music and audio", ("music", "audio", "speech", "singing")),
    ThemeConfig("Robotics", ("robot", "robotic", "manipulation", "grasping")),
)
OUTPUTS = (
    "email.headers.txt",
    "email.txt",
    "email.html",
    "archive-1.html",
    "index.html",
    "feed.xml",
    "atom.xml",
    "feed.json",
)


def updating(config: pytest.Config) -> bool:
    return bool(config.getoption("update_golden") or os.environ.get("DIGEST_UPDATE_GOLDEN"))


def publish(root: Path) -> App:
    """The golden input published once, to one subscriber, at NOW."""
    dumps = root / "dumps"
    dumps.mkdir(parents=True)
    dump = shutil.copy(INPUT, dumps / INPUT.name)
    os.utime(dump, (SAVED.timestamp(), SAVED.timestamp()))
    settings = Settings(
        digest=DigestSection(
            dumps_dir=str(dumps),
            state_dir=str(root / "state"),
            base_url="https://digest.example.org",
        ),
        email=EmailSection(recipients=[]),
        themes=THEMES,
        base_dir=root,
        source="test",
    )
    app = make_app(settings, clock=lambda: NOW)
    subscribing.book(app).add("reader@example.org", name="Ada Reader")
    report = publishing.send(app)
    assert report.issue == 1 and report.delivery.sent == 1
    return app


def the_message(app: App) -> EmailMessage:
    [raw] = [m.as_bytes() for m in mailbox.Maildir(app.settings.outbox_dir, create=False)]
    return message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def headers_and_structure(msg: EmailMessage) -> str:
    lines = [f"{name}: {' '.join(str(value).split())}" for name, value in msg.items()]
    lines += ["", "parts:"]
    for part in msg.walk():
        if not part.is_multipart():
            encoding = part["Content-Transfer-Encoding"]
            lines.append(f"  {part.get_content_type()}; {part.get_content_charset()}; {encoding}")
    return "\n".join(lines) + "\n"


def readable_json(text: str) -> str:
    def split(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: split(v) for k, v in value.items()}
        if isinstance(value, list):
            return [split(v) for v in value]
        if isinstance(value, str) and "\n" in value:
            return value.split("\n")
        return value

    return json.dumps(split(json.loads(text)), indent=2, ensure_ascii=False) + "\n"


def volatile(app: App, msg: EmailMessage, root: Path) -> dict[str, str]:
    """What differs from run to run, and the mark that replaces it."""
    with app.session() as s:
        tokens = list(s.scalars(select(Subscriber.token)))
    secret = app.web_secret()
    found = {str(msg["Message-ID"]).strip("<> "): "MESSAGE-ID"}
    found[str(msg.get_boundary())] = "BOUNDARY"
    found |= {token: "TOKEN" for token in tokens}
    found |= {secret.hex(): "SECRET"}
    found[str(root)] = "TMP"
    return found


def mask(text: str, marks: dict[str, str]) -> str:
    for value, mark in sorted(marks.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(value, f"<{mark}>")
    return text


def produce(root: Path) -> dict[str, str]:
    """Every golden output of a publish in `root`, masked."""
    app = publish(root)
    msg = the_message(app)
    public = app.settings.public_dir
    outputs = {
        "email.headers.txt": headers_and_structure(msg),
        "email.txt": msg.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
        "email.html": msg.get_body(("html",)).get_content(),  # type: ignore[union-attr]
        "archive-1.html": (public / "archive" / "1.html").read_text("utf-8"),
        "index.html": (public / "index.html").read_text("utf-8"),
        "feed.xml": (public / "feed.xml").read_text("utf-8"),
        "atom.xml": (public / "atom.xml").read_text("utf-8"),
        "feed.json": readable_json((public / "feed.json").read_text("utf-8")),
    }
    marks = volatile(app, msg, root)
    return {name: mask(text, marks) for name, text in outputs.items()}


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return produce(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("name", OUTPUTS)
def test_output_matches_its_golden_file(
    name: str, produced: dict[str, str], request: pytest.FixtureRequest
) -> None:
    actual = produced[name]
    # whatever the golden file says, dump text never becomes markup (email.txt shows
    # the hostile title as it is: it is plain text)
    if name != "email.txt":
        assert "<script>" not in actual and "<img src=x" not in actual, name
    path = GOLDEN / name
    if updating(request.config):
        path.write_text(actual, encoding="utf-8", newline="")
    assert path.is_file(), f"tests/golden/{name} is missing: run `make golden`"
    expected = path.read_bytes().decode("utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                f"tests/golden/{name} (committed)",
                f"{name} (produced now)",
            )
        )
        pytest.fail(
            f"{name} differs from tests/golden/{name}. If the change is meant, run "
            f"`make golden` and commit the new file.\n{diff}",
            pytrace=False,
        )


def test_every_golden_file_is_produced() -> None:
    kept = {p.name for p in GOLDEN.iterdir() if p.is_file()}
    assert kept == set(OUTPUTS), "a golden file nobody produces, or one not committed"


def test_masks_cover_what_changes_between_runs(tmp_path: Path, produced: dict[str, str]) -> None:
    """A second publish of the same input, in another folder, gives the same masked
    outputs; and the masks did hide something in the e-mail."""
    assert produce(tmp_path) == produced
    headers = produced["email.headers.txt"]
    assert "Message-ID: <<MESSAGE-ID>>" in headers and 'boundary="<BOUNDARY>"' in headers
    assert "/unsubscribe/<TOKEN>" in produced["email.txt"]
