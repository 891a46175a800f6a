"""The web server while another process writes: a publish, an ingest or an import holds
SQLite's write lock (BEGIN IMMEDIATE) for as long as it takes, and the pages that only
read — a feed, a confirmation link, the preferences page — answer all the same, while
the lock is still held."""

from __future__ import annotations

import mailbox
import re
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from digest.app import make_app, publishing
from digest.state.models import Subscriber
from tests.support.dumps import write_dump
from tests.support.net import free_port
from tests.support.settings import make_settings
from tests.support.waiting import HANG
from tests.support.web import Served, serve


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    abstract = "We generate music and audio from text with a diffusion model. " * 3
    write_dump(dumps / "first.txt", [("Music Generation with Diffusion", abstract)])
    settings = make_settings(tmp_path, dumps)
    settings = replace(
        settings, digest=replace(settings.digest, base_url=f"http://127.0.0.1:{port}")
    )
    app = make_app(settings)
    assert publishing.send(app).issue == 1  # the feeds exist, and the configured readers
    yield from serve(app, port)


def confirmation_path(site: Served, address: str) -> str:
    """Ask to subscribe through the form; the path of the link the e-mail carries."""
    body = urlencode({"email": address})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"}
    assert site.get("/subscribe", headers, "POST", body)[0] == 200
    box = mailbox.Maildir(site.app.settings.outbox_dir, create=False)
    [mail] = [m for m in box if m["To"] == address]
    text = message_from_bytes(mail.as_bytes(), policy=policy.default).get_body(("plain",))
    return re.search(r"/subscribe/confirm/[A-Za-z0-9_-]+", text.get_content()).group()


def test_reading_pages_answer_while_another_process_holds_the_write_lock(site: Served) -> None:
    confirm = confirmation_path(site, "new@example.org")
    with site.app.session() as s:
        token = s.scalar(select(Subscriber.token).where(Subscriber.key == "ada@example.org"))
    assert site.get(f"/preferences/{token}")[0] == 200  # the form key exists by now
    database = site.app.database.engine.url.database
    holder = sqlite3.connect(database, isolation_level=None, timeout=HANG)
    holder.execute("BEGIN IMMEDIATE")  # returns once the write lock is held
    try:
        paths = [confirm, "/subscribe/confirm/" + "A" * 43, f"/preferences/{token}", "/feed.xml"]
        with ThreadPoolExecutor(len(paths)) as pool:
            answers = list(pool.map(site.get, paths))
        assert holder.in_transaction  # every answer came while the lock was still held
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 404, 200, 200], statuses
    assert b"Confirm your subscription" in answers[0][2]
    assert b"new@example.org" in answers[0][2]
    assert b'name="csrf"' in answers[2][2]
    assert answers[3][2].startswith(b"<?xml")
