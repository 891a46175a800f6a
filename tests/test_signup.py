"""Subscribing with consent, on the real server (uvicorn on a free port) with the real
Maildir transport: the form, the confirmation e-mail, its link, the welcome message, the
next digest; expired and reused links; the limits; cross-site posts refused."""

from __future__ import annotations

import logging
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from digest.app import App, make_app, publishing
from digest.config import SubscribeSection
from digest.state.models import Signup, Subscriber
from tests.support.dumps import write_dump
from tests.support.net import free_port
from tests.support.settings import make_settings
from tests.support.web import Served, serve

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class World:
    site: Served
    clock: Clock

    @property
    def app(self) -> App:
        return self.site.app

    def post(self, path: str, fields: dict[str, str | list[str]], **headers: str) -> tuple:
        origin = f"http://127.0.0.1:{self.site.port}"
        base = {**FORM, "Origin": origin, "Sec-Fetch-Site": "same-origin"}
        body = urlencode(fields, doseq=True)
        return self.site.get(path, {**base, **headers}, "POST", body)

    def subscribe(self, address: str, themes: list[str] | None = None, **headers: str) -> tuple:
        return self.post("/subscribe", {"email": address, "theme": themes or []}, **headers)

    def mail_to(self, address: str) -> list[EmailMessage]:
        box = mailbox.Maildir(self.app.settings.outbox_dir, create=False)
        msgs = [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]
        mine = [m for m in msgs if m["To"] == address]
        return sorted(mine, key=lambda m: m["Date"].datetime)

    def status(self, address: str) -> str | None:
        with self.app.session() as s:
            return s.scalar(select(Subscriber.status).where(Subscriber.key == address.lower()))


def confirm_link(msg: EmailMessage) -> str:
    text = msg.get_body(("plain",)).get_content()
    return re.search(r"http://\S+/subscribe/confirm/[A-Za-z0-9_-]+", text).group()


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


PAPERS = [
    ("Sparse Mixture of Experts Routing", "We route tokens to experts with a router. " * 4),
    ("Music Generation with Diffusion", "We generate music and audio from text. " * 4),
    ("A Study of Something Else", "We study a topic that is neither of the above. " * 4),
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, "")


def make_world(tmp_path: Path, database_url: str) -> Iterator[World]:
    port = free_port()
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    write_dump(dumps / "first.txt", PAPERS)
    settings = make_settings(tmp_path, dumps)
    settings = replace(
        settings,
        digest=replace(
            settings.digest, base_url=f"http://127.0.0.1:{port}", database_url=database_url
        ),
        subscribe=SubscribeSection(max_per_ip_hour=6),
    )
    clock = Clock(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))
    app = make_app(settings, clock=clock)
    publishing.send(app)  # issue 1: the areas exist
    for served in serve(app, port):
        yield World(served, clock)


def test_subscribe_confirm_welcome_and_the_next_digest(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, headers, body = world.site.get("/subscribe")
    assert status == 200 and b'name="email"' in body and b'value="mixture-of-experts"' in body
    status, _, body = world.subscribe("New.Reader@Example.org", ["mixture-of-experts"])
    assert status == 200 and b"Check your inbox" in body
    assert world.status("new.reader@example.org") is None  # nothing until confirmed
    [confirmation] = world.mail_to("New.Reader@example.org")
    assert "Confirm your subscription" in confirmation["Subject"]
    link = confirm_link(confirmation)
    token = link.rsplit("/", 1)[1]
    assert link in confirmation.get_body(("html",)).get_content()
    # the token is stored only as its hash
    with world.app.session() as s:
        stored = s.scalars(select(Signup.token_hash)).all()
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64
    # opening the link asks; a mail scanner fetching it activates nobody
    status, headers, body = world.site.get(path_of(link))
    assert status == 200 and b"Confirm your subscription" in body
    assert headers["cache-control"] == "no-store"
    assert world.status("new.reader@example.org") is None
    status, _, body = world.post(path_of(link), {})
    assert status == 200 and b"You are subscribed" in body
    assert world.status("new.reader@example.org") == "active"
    # the welcome message, with preferences and unsubscribe links that work
    mail = world.mail_to("New.Reader@example.org")
    [welcome] = [m for m in mail if m["Subject"] == "Welcome to Papers digest"]
    text = welcome.get_body(("plain",)).get_content()
    prefs = re.search(r"Preferences: (\S+)", text).group(1)
    unsub = re.search(r"Unsubscribe: (\S+)", text).group(1)
    assert "Mixture of experts" in text
    assert world.site.get(path_of(prefs))[0] == 200
    assert b"Unsubscribe?" in world.site.get(path_of(unsub))[2]
    # confirming twice is harmless
    status, _, body = world.post(path_of(link), {})
    assert status == 200 and b"Already confirmed" in body
    assert len(world.mail_to("New.Reader@example.org")) == 2  # no second welcome
    # the next digest reaches them, with only their area
    write_dump(
        world.app.settings.dumps_dir / "next.txt",
        [("A Mixture of Experts Router Paper", "We route tokens to experts. " * 5)],
    )
    world.clock.advance(days=1)
    report = publishing.send(world.app)
    assert report.issue == 2 and "New.Reader@example.org" in report.recipients
    digest = world.mail_to("New.Reader@example.org")[-1]
    assert "A Mixture of Experts Router Paper" in digest.get_body(("plain",)).get_content()
    # no token ever reached the log
    assert token not in caplog.text and prefs.rsplit("/", 1)[1] not in caplog.text


def test_the_limits_and_expiry_hold_on_every_database(tmp_path: Path, database_url: str) -> None:
    """The time comparisons behind the limits, on SQLite and PostgreSQL alike."""
    for world in make_world(tmp_path, database_url):
        world.subscribe("both@example.org")
        world.clock.advance(minutes=59)
        world.subscribe("both@example.org")
        assert len(world.mail_to("both@example.org")) == 1
        world.clock.advance(minutes=2)
        world.subscribe("both@example.org")
        first, second = (path_of(confirm_link(m)) for m in world.mail_to("both@example.org"))
        world.clock.advance(hours=47)
        assert world.post(first, {})[0] == 410  # 48 h and a minute after it was sent
        assert world.post(second, {})[0] == 200 and world.status("both@example.org") == "active"


def test_expired_and_unknown_links(world: World) -> None:
    world.subscribe("late@example.org")
    link = path_of(confirm_link(world.mail_to("late@example.org")[0]))
    world.clock.advance(hours=world.app.settings.subscribe.confirm_hours + 1)
    status, _, body = world.site.get(link)
    assert status == 410 and b"expired" in body
    assert world.post(link, {})[0] == 410
    assert world.status("late@example.org") is None
    for bad in ("/subscribe/confirm/" + "A" * 43, "/subscribe/confirm/x"):
        assert world.site.get(bad)[0] == 404 and world.post(bad, {})[0] == 404
    # a new request sends a new link, which works; the old one still does not
    world.subscribe("late@example.org")
    fresh = path_of(confirm_link(world.mail_to("late@example.org")[-1]))
    assert fresh != link and world.post(fresh, {})[0] == 200
    assert world.status("late@example.org") == "active"
    assert world.post(link, {})[0] == 410


def test_a_pending_address_is_re_sent_at_most_once_an_hour_and_three_times_a_day(
    world: World,
) -> None:
    for _ in range(3):
        status, _, body = world.subscribe("bombed@example.org")
        assert status == 200 and b"Check your inbox" in body  # the page never tells
    assert len(world.mail_to("bombed@example.org")) == 1
    world.clock.advance(minutes=61)
    world.subscribe("bombed@example.org")
    assert len(world.mail_to("bombed@example.org")) == 2
    world.clock.advance(minutes=61)
    world.subscribe("bombed@example.org")
    world.clock.advance(minutes=61)
    world.subscribe("bombed@example.org")
    assert len(world.mail_to("bombed@example.org")) == 3  # max_per_address_day
    world.clock.advance(hours=24)
    world.subscribe("bombed@example.org")
    assert len(world.mail_to("bombed@example.org")) == 4
    # both links still out work until one is used; then the others stop
    links = [path_of(confirm_link(m)) for m in world.mail_to("bombed@example.org")]
    assert world.post(links[-1], {})[0] == 200
    assert world.post(links[-2], {})[0] == 410


def test_one_client_cannot_mail_bomb_many_addresses(world: World) -> None:
    limit = world.app.settings.subscribe.max_per_ip_hour
    for i in range(limit):
        assert world.subscribe(f"victim{i}@example.org")[0] == 200
    status, _, body = world.subscribe("one-more@example.org")
    assert status == 429 and b"Too many requests" in body
    assert world.mail_to("one-more@example.org") == []
    world.clock.advance(minutes=61)
    assert world.subscribe("one-more@example.org")[0] == 200
    assert len(world.mail_to("one-more@example.org")) == 1


def test_cross_site_posts_are_refused(world: World) -> None:
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert world.subscribe("target@example.org", **evil)[0] == 403
    assert world.subscribe("target@example.org", **{"Sec-Fetch-Site": "same-site"})[0] == 403
    no_fetch_meta = world.site.get(
        "/subscribe", {**FORM, "Origin": "https://evil.example"}, "POST", "email=t%40example.org"
    )
    assert no_fetch_meta[0] == 403
    assert world.mail_to("target@example.org") == [] and world.mail_to("t@example.org") == []
    world.subscribe("target@example.org")
    link = path_of(confirm_link(world.mail_to("target@example.org")[0]))
    assert world.post(link, {}, **evil)[0] == 403
    assert world.status("target@example.org") is None


def test_a_post_from_an_opaque_origin_is_refused(world: World) -> None:
    """``Origin: null`` is what a sandboxed frame or a data: page sends: not this site."""
    opaque = world.site.get(
        "/subscribe", {**FORM, "Origin": "null"}, "POST", "email=target%40example.org"
    )
    assert opaque[0] == 403
    assert world.mail_to("target@example.org") == []
    world.subscribe("target@example.org")
    link = path_of(confirm_link(world.mail_to("target@example.org")[0]))
    headers = {**FORM, "Origin": "null"}
    assert world.site.get(link, headers, "POST", "")[0] == 403
    assert world.status("target@example.org") is None


def test_bad_addresses_are_shown_back_with_the_reason(world: World) -> None:
    status, _, body = world.subscribe('<script>x</script>"@')
    assert status == 400 and b"is not a valid address" in body
    assert b"<script>x" not in body and b"&lt;script&gt;x" in body
    status, _, body = world.subscribe("a@b.example\r\nBcc: evil@example.org")
    assert status == 400
    box = mailbox.Maildir(world.app.settings.outbox_dir, create=False)
    assert all("evil@example.org" not in str(m) for m in box)


def test_an_unsubscribed_address_comes_back_only_through_confirmation(world: World) -> None:
    with world.app.session() as s:
        token = s.scalar(select(Subscriber.token).where(Subscriber.key == "ada@example.org"))
    world.site.get(f"/unsubscribe/{token}", FORM, "POST", "List-Unsubscribe=One-Click")
    assert world.status("ada@example.org") == "unsubscribed"
    world.subscribe("ada@example.org")
    assert world.status("ada@example.org") == "unsubscribed"  # asking is not consenting
    publishing.send(world.app)  # configured recipients never bring her back either
    assert world.status("ada@example.org") == "unsubscribed"
    confirmation = [m for m in world.mail_to("ada@example.org") if "Confirm" in m["Subject"]]
    assert world.post(path_of(confirm_link(confirmation[0])), {})[0] == 200
    assert world.status("ada@example.org") == "active"


def test_every_digest_footer_has_preferences_beside_unsubscribe(world: World) -> None:
    msg = world.mail_to("grace@example.org")[0]
    token = re.search(r"/unsubscribe/([A-Za-z0-9_-]+)>", str(msg["List-Unsubscribe"])).group(1)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    for part in (html, text):
        prefs = part.index(f"/preferences/{token}")
        unsub = part.index(f"/unsubscribe/{token}")
        assert 0 < unsub - prefs < 400  # side by side in the footer
    assert world.site.get(f"/preferences/{token}")[0] == 200


def test_the_form_is_on_the_index_and_every_issue_page(world: World) -> None:
    for path in ("/", "/archive/1.html"):
        page = world.site.get(path)[2].decode()
        action = f'action="http://127.0.0.1:{world.site.port}/subscribe"'
        assert f'<form class="subscribe" method="post" {action}>' in page, path
        assert 'name="email" type="email"' in page


def test_subscribe_limits_are_checked_at_load(tmp_path: Path) -> None:
    from digest.config import load_settings
    from digest.errors import ConfigError

    config = tmp_path / "digest.toml"
    config.write_text("[subscribe]\nconfirm_hours = 0\n")
    out_of_range = r"is out of range: expected more than 0"
    with pytest.raises(ConfigError, match=r"subscribe\.confirm_hours = 0\.0 " + out_of_range):
        load_settings(config, environ={})
    with pytest.raises(ConfigError, match=r"MAX_PER_IP_HOUR = -1 " + out_of_range):
        load_settings(None, environ={"DIGEST_SUBSCRIBE_MAX_PER_IP_HOUR": "-1"})
    config.write_text("[subscribe]\nconfirm_hours = 2\nmax_per_address_day = 5\n")
    loaded = load_settings(config, environ={}).subscribe
    assert (loaded.confirm_hours, loaded.max_per_address_day, loaded.resend_minutes) == (2, 5, 60)
