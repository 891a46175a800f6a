"""The subscribe form's limits under concurrent posts, on the real server and the real
Maildir transport, on SQLite and PostgreSQL: exactly the limit's worth of confirmation
e-mails go out, one per address per resend window, and no post is answered 503."""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

from digest.app import make_app
from digest.config import SubscribeSection
from tests.support.dumps import write_dump
from tests.support.net import free_port
from tests.support.settings import make_settings
from tests.support.web import Served, serve

POSTS = 200
CLIENTS = 16  # concurrent connections (bounded: the machine has 2 cores)
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"}


def served(tmp_path: Path, database_url: str, limits: SubscribeSection) -> Iterator[Served]:
    port = free_port()
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    abstract = "We generate music and audio from text with a diffusion model. " * 3
    write_dump(dumps / "first.txt", [("Music Generation with Diffusion", abstract)])
    settings = make_settings(tmp_path, dumps)
    settings = replace(
        settings,
        digest=replace(
            settings.digest, base_url=f"http://127.0.0.1:{port}", database_url=database_url
        ),
        subscribe=limits,
    )
    app = make_app(settings)
    app.web_secret()  # the state exists before the rush
    yield from serve(app, port)


def post_all(site: Served, addresses: list[str]) -> Counter[int]:
    def post(address: str) -> int:
        body = urlencode({"email": address})
        return site.get("/subscribe", FORM, "POST", body)[0]

    with ThreadPoolExecutor(CLIENTS) as pool:
        return Counter(pool.map(post, addresses))


def confirmations(site: Served) -> Counter[str]:
    box = mailbox.Maildir(site.app.settings.outbox_dir, create=True)
    return Counter(str(m["To"]) for m in box)


def test_one_client_gets_exactly_its_hourly_limit_of_confirmations(
    tmp_path: Path, database_url: str
) -> None:
    for site in served(tmp_path, database_url, SubscribeSection(max_per_ip_hour=10)):
        statuses = post_all(site, [f"reader{i}@example.org" for i in range(POSTS)])
        assert statuses == {200: 10, 429: POSTS - 10}, statuses
        sent = confirmations(site)
        assert sum(sent.values()) == 10 and set(sent.values()) == {1}


def test_one_address_gets_one_confirmation_per_resend_window(
    tmp_path: Path, database_url: str
) -> None:
    limits = SubscribeSection(max_per_ip_hour=1000, max_per_address_day=1000)
    for site in served(tmp_path, database_url, limits):
        addresses = [f"reader{i % 5}@example.org" for i in range(POSTS)]
        statuses = post_all(site, addresses)
        assert statuses == {200: POSTS}, statuses  # the page never tells who was throttled
        assert confirmations(site) == {f"reader{i}@example.org": 1 for i in range(5)}
