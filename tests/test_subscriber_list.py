"""The subscriber list: validation and folding, CSV import/export, unsubscribe, the
configured recipients, per-subscriber variants, and the size of the e-mail."""

from __future__ import annotations

import io
import mailbox
import string
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text, update

from digest.addresses import TOKEN_RE, new_token
from digest.app import App, delivering, make_app, publishing, subscribing
from digest.config import Settings
from digest.mail.message import encoded_size
from digest.mail.subscribers import SubscriberError, normalize, parse_themes
from digest.program import main
from digest.render.renderer import Renderer
from digest.state import db
from digest.state.models import Delivery, DigestVariant, Subscriber
from tests.support.dumps import write_dump


def tokens(app: App) -> dict[str, str]:
    with app.session() as s:
        return {a: t for a, t in s.execute(select(Subscriber.address, Subscriber.token))}


def outbox(settings: Settings) -> list:
    box = mailbox.Maildir(settings.outbox_dir, create=False)
    return [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]


def test_addresses_are_validated_and_folded() -> None:
    assert normalize("  Ada.Lovelace@EXAMPLE.Org ") == "Ada.Lovelace@example.org"
    for bad in ("", "ada", "ada@", "a b@example.org", "ada@example..org"):
        with pytest.raises(SubscriberError):
            normalize(bad)
    assert parse_themes(" Mixture of experts ;music-and-audio;; Music and audio") == (
        "mixture-of-experts",
        "music-and-audio",
    )


def test_add_folds_duplicates_and_keeps_unsubscribed(settings: Settings) -> None:
    book = subscribing.book(make_app(settings))
    assert book.add(" Ada@Example.ORG ", name="Ada") == "added"
    assert book.add("ada@example.org") == "unchanged"
    assert book.add("ADA@example.org", themes="Music and audio") == "updated"
    [ada] = book.list()
    assert (ada.address, ada.name, ada.themes) == ("Ada@example.org", "Ada", ("music-and-audio",))
    with pytest.raises(SubscriberError, match="not a valid address"):
        book.add("not-an-address")
    book.add("ada@example.org", status="unsubscribed")
    assert book.add("ada@example.org", status="active") == "kept"
    assert book.list()[0].status == "unsubscribed"
    assert book.add("ada@example.org", resubscribe=True) == "updated"
    assert book.list("active")[0].address == "Ada@example.org"
    assert book.remove("ADA@EXAMPLE.ORG") and not book.remove("ada@example.org")


CSV = """\
email,name,themes,status
 Alan@Example.ORG ,Alan Turing,Mixture of experts,
not-an-address,Nobody,,
alan@example.org,Duplicate,Music and audio,
kate@example.org,Kate,music-and-audio;Mixture of experts,
bob@example.org,,,unsubscribed
zed@example.org,,,maybe
"""


def test_import_reports_bad_rows_by_line_and_keeps_the_good(settings: Settings) -> None:
    book = subscribing.book(make_app(settings))
    report = book.import_csv(io.StringIO(CSV))
    assert report.errors == [
        (3, "'not-an-address' is not a valid address: An email address must have an @-sign."),
        (7, "status 'maybe' is not one of active, unsubscribed, bounced"),
    ]
    assert report.notes == [(4, "same address as line 2; this row ignored")]
    assert (report.added, report.updated, report.unchanged) == (3, 0, 0)
    got = {s.address: (s.name, s.themes, s.status) for s in book.list()}
    assert got == {
        "Alan@example.org": ("Alan Turing", ("mixture-of-experts",), "active"),
        "kate@example.org": ("Kate", ("music-and-audio", "mixture-of-experts"), "active"),
        "bob@example.org": ("", (), "unsubscribed"),
    }
    # importing the unsubscribed address again as active does not bring it back
    again = book.import_csv(io.StringIO("email,status\nbob@example.org,active\n"))
    assert again.notes == [(2, "bob@example.org unsubscribed; not reactivated")]
    assert book.list("unsubscribed")[0].address == "bob@example.org"
    with pytest.raises(SubscriberError, match="line 1: the header must name an 'email'"):
        book.import_csv(io.StringIO("address,name\nx@example.org,X\n"))


def test_export_imports_back_unchanged(settings: Settings, tmp_path: Path) -> None:
    book = subscribing.book(make_app(settings))
    book.import_csv(io.StringIO(CSV))
    first = io.StringIO()
    assert book.export_csv(first) == 3
    assert first.getvalue().splitlines()[0] == "email,name,themes,status,watch,mute,more,less"
    elsewhere = replace(settings.digest, database_url="", state_dir=str(tmp_path / "other"))
    other = make_app(replace(settings, digest=elsewhere))
    other_book = subscribing.book(other)
    assert not other_book.list()
    report = other_book.import_csv(io.StringIO(first.getvalue()))
    assert (report.added, report.errors) == (3, [])
    second = io.StringIO()
    other_book.export_csv(second)
    assert second.getvalue() == first.getvalue()


def test_unsubscribe_is_immediate_idempotent_and_skips_pending(settings: Settings) -> None:
    app = make_app(settings)
    publishing.publish(app)  # deliveries stay pending
    token = tokens(app)["grace@example.org"]
    book = subscribing.book(app)
    assert book.unsubscribe("x" * 43) is None
    assert book.unsubscribe("not a token; drop table") is None
    first = book.unsubscribe(token)
    assert first is not None and (first.address, first.already) == ("grace@example.org", False)
    second = book.unsubscribe(token)
    assert second is not None and second.already
    with app.session() as s:
        rows = {a: st for a, st in s.execute(select(Delivery.address, Delivery.status))}
    assert rows == {"ada@example.org": "pending", "grace@example.org": "skipped"}
    assert delivering.deliver_pending(make_app(settings)).sent == 1
    assert [m["To"] for m in outbox(settings)] == ["ada@example.org"]


def test_configured_recipients_never_come_back_after_unsubscribing(settings: Settings) -> None:
    app = make_app(settings)
    publishing.send(app)
    subscribing.book(app).unsubscribe(tokens(app)["ada@example.org"])
    assert subscribing.recipients(app) == ["grace@example.org"]
    write_dump(
        settings.dumps_dir / "new.txt",
        [
            (
                "A fresh paper",
                "With an abstract long enough to be one, which means a hundred characters or more. "
                * 2,
            )
        ],
    )
    report = publishing.send(make_app(settings))
    assert report.issue == 2 and report.delivery.sent == 1
    assert sorted(m["To"] for m in outbox(settings)) == [
        "ada@example.org",
        "grace@example.org",
        "grace@example.org",
    ]
    assert subscribing.book(make_app(settings)).list("unsubscribed")[0].address == "ada@example.org"


def test_variants_are_rendered_once_per_selection_not_per_subscriber(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = Renderer.email_html

    def counting(self: Renderer, view: object, **kw: object) -> str:
        calls.append(kw.get("unsubscribe_url"))
        return original(self, view, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Renderer, "email_html", counting)
    app = make_app(settings)
    book = subscribing.book(app)
    for i in range(40):
        themes = ["", "Mixture of experts", "Music and audio;Mixture of experts"][i % 3]
        book.add(f"reader{i}@example.org", themes=themes)
    publishing.send(app)
    with app.session() as s:
        variants = s.scalar(select(func.count()).select_from(DigestVariant))
        sent = s.scalar(select(func.count()).where(Delivery.status == "sent"))
    assert variants == 3 and sent == 42
    personalised = [c for c in calls if c]
    assert len(personalised) <= 3 * 4  # a few fitting renders per variant, none per reader
    assert len(outbox(settings)) == 42


def test_the_big_sample_digest_fits_under_the_clipping_size(settings: Settings) -> None:
    app = make_app(settings)
    report = publishing.send(app)
    assert report.prepared is not None and report.prepared.view.paper_count == 176
    assert len(report.prepared.html.encode()) > 200_000  # the full e-mail, as rendered
    for msg in outbox(settings):
        html_part = msg.get_body(("html",))
        html = html_part.get_content()
        assert encoded_size(html) <= settings.email.max_html_bytes
        assert "the web copy has all of them" in html
        assert "http://localhost:8000/archive/1.html" in html
        # the papers it keeps keep a short abstract; each cut section links to the rest.
        # 34 of them since every paper carries its reader's "More like this · Less" links
        # (≈ 450 encoded bytes a paper; 52 without them, 10 before the size fit learned
        # not to cut below one paper a section when a sample already fits)
        assert html.count('class="abstract"') >= 30
        assert "more papers in Mixture of experts on the web" in html
        assert "http://localhost:8000/archive/1.html#s-mixture-of-experts" in html
        text = msg.get_body(("plain",)).get_content()
        assert "the web copy has all of them" not in text  # a text part lists every paper
        assert "http://localhost:8000/unsubscribe/" in text
        assert "http://localhost:8000/unsubscribe/" in html
    web = (settings.public_dir / "archive" / "1.html").read_text()
    assert web.count('<article class="paper" id="p-') == 176  # the web copy keeps every paper


def test_cli_subscribers_and_unsubscribe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    (tmp_path / "dumps").mkdir()
    # the CSV names a configured theme: an unknown topic would reject its row
    (tmp_path / "digest.toml").write_text(
        '[[themes]]\nname = "Music and audio"\nkeywords = ["music"]\n'
    )
    (tmp_path / "in.csv").write_text(CSV)

    def run(*args: str) -> object:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    imported = run("subscribers", "import", "in.csv")
    assert imported.exit_code == 1
    assert "line 3: 'not-an-address' is not a valid address" in imported.output
    assert "3 added, 0 updated, 0 unchanged" in imported.output
    assert "2 row(s) rejected" in imported.output
    themes = "Mixture of experts;music"  # an area's name, another area's slug
    assert run("subscribers", "add", "new@example.org", "--themes", themes).exit_code == 0
    listed = run("subscribers", "list", "--status", "active").output
    assert "new@example.org\tactive\tmixture-of-experts;music" in listed
    assert "bob@example.org" not in listed
    refused = CliRunner().invoke(main, ["subscribers", "add", "x@example.org", "--themes", "x"])
    assert refused.exit_code == 1 and "unknown topic 'x'" in refused.output
    typo = CliRunner().invoke(
        main, ["subscribers", "add", "x@example.org", "--themes", "Mixture of expert"]
    )
    assert "did you mean 'Mixture of experts'?" in typo.output
    assert run("subscribers", "export", "--out", "out.csv").exit_code == 0
    assert (
        (tmp_path / "out.csv")
        .read_text()
        .startswith("email,name,themes,status,watch,mute,more,less\n")
    )
    app = make_app(Settings(base_dir=tmp_path))
    token = tokens(app)["kate@example.org"]
    done = run("unsubscribe", token)
    assert done.exit_code == 0 and "kate@example.org: unsubscribed" in done.output
    assert "already" in run("unsubscribe", token).output
    bad = run("unsubscribe", "nope" * 11)
    assert bad.exit_code == 1 and "nope" not in bad.output  # tokens are never echoed
    assert run("subscribers", "remove", "kate@example.org", "who@example.org").exit_code == 1
    assert "kate@example.org" not in run("subscribers", "list").output


def test_migration_adopts_deliveries_made_before_subscribers(
    tmp_path: Path, database_url: str
) -> None:
    """A state from before migration 0003, with a delivery still pending: after the
    upgrade its address is a subscriber and the delivery still goes out."""
    from alembic import command

    engine = db.make_engine(database_url)
    command.upgrade(db.alembic_config(engine), "0002")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO digests (id, issue, subject, html, text, web_html, paper_count,"
                " themes, status, published_at) VALUES (1, 1, 'Old issue', '<p>old</p>',"
                " 'old', '<p>old</p>', 0, '[]', 'published', '2026-01-01 08:00:00')"
            )
        )
        for i, (addr, status) in enumerate([("Old@Example.org", "pending"), ("b@x.org", "sent")]):
            conn.execute(
                text(
                    "INSERT INTO deliveries (digest_id, address, status, attempts, message_id,"
                    " created_at) VALUES (1, :a, :s, 0, :m, '2026-01-01 08:00:00')"
                ),
                {"a": addr, "s": status, "m": f"<{i}@x>"},
            )
    engine.dispose()
    settings = Settings(base_dir=tmp_path)
    app = make_app(replace(settings, digest=replace(settings.digest, database_url=database_url)))
    assert {s.address for s in subscribing.book(app).list()} == {"Old@Example.org", "b@x.org"}
    report = delivering.deliver_pending(app)
    assert report.sent == 1
    [msg] = outbox(app.settings)
    assert msg["Subject"] == "Old issue" and msg["Message-ID"] == "<0@x>"


def test_tokens_never_begin_with_a_dash() -> None:
    """token_urlsafe draws "-" first once in 64 tokens, and `digest unsubscribe -xyz…`
    then reads the token as options (seen in a CI run): new tokens never do. Without
    the rule, 5,000 draws all free of it would happen with odds of 1 in 10^34."""
    drawn = [new_token() for _ in range(5000)]
    assert not [t for t in drawn if t.startswith("-")]
    assert len(set(drawn)) == 5000 and {len(t) for t in drawn} == {43}
    assert all(TOKEN_RE.fullmatch(t) for t in drawn)
    # every one of the 64 URL-safe characters turns up (256 random bits in each)
    assert set("".join(drawn)) == set(string.ascii_letters + string.digits + "-_")


def test_cli_unsubscribe_takes_an_older_token_that_begins_with_a_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token made before the rule: `--` before it, as the command's help says."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    (tmp_path / "digest.toml").write_text("")
    app = make_app(Settings(base_dir=tmp_path))
    subscribing.book(app).add("dash@example.org")
    token = "-h" + tokens(app)["dash@example.org"][2:]
    with app.session() as s:
        s.execute(update(Subscriber).values(token=token))
        s.commit()
    done = CliRunner().invoke(main, ["unsubscribe", "--", token])
    assert done.exit_code == 0, done.output
    assert "dash@example.org: unsubscribed" in done.output
    assert "digest unsubscribe -- TOKEN" in CliRunner().invoke(main, ["unsubscribe", "-h"]).output
